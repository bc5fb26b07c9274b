"""Issue 17's measurements (Performance III): the exports against the database's own COPY (h),
following the whole feed page by page (i), and 2,000 live streams on one worker (j).

The results are plain dataclasses; report.py renders them beside their goals.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from benchlib.database import Postgres
from benchlib.load import ExportResult, RssSampler, percentile
from benchlib.servers import cpu_seconds, die_with_parent, memory_of

API = "/api/v1"
STREAM_CLIENT = Path(__file__).resolve().parent / "stream_client.py"

# The rows and columns of GET /export/events.csv and .ndjson (service/downloads/router.py
# EVENT_COLUMNS, read by audit.feed.read_feed over audit.service.events_with_codes): events
# with their programme's code, the decision they were attributed to afterwards if any, in feed
# order, each with its feed cursor (base64url of "[txid,id]" without padding, as
# service.pagination.encode_cursor makes it). The export also keeps to the feed's settled
# horizon; nothing is being written while this runs, so every event is settled.
EXPORT_SQL = re.sub(
    r"\s+",
    " ",
    """
SELECT e.id, p.code AS program, e.seq, e.kind, e.from_status, e.to_status, e.effective_date,
       e.recorded_at, e.actor, e.on_behalf_of, e.note, e.source_url, e.sources, e.changes,
       coalesce(e.decision, a.decision) AS decision,
       (e.decision IS NULL AND a.decision IS NOT NULL) AS decision_attributed,
       e.prev_hash, e.hash,
       rtrim(translate(encode(convert_to(format('[%s,%s]', e.txid, e.id), 'UTF8'), 'base64'),
                       '+/', '-_'), '=') AS cursor
FROM events AS e
JOIN programs AS p ON p.id = e.program_id
LEFT JOIN decision_attributions AS a ON a.event_id = e.id
ORDER BY e.txid, e.id
""",
).strip()
COPY_COMMAND = f"\\copy ({EXPORT_SQL}) TO STDOUT WITH CSV"
EXPORT_ROWS_SQL = (
    "SELECT count(*) FROM events AS e JOIN programs AS p ON p.id = e.program_id "
    "LEFT JOIN decision_attributions AS a ON a.event_id = e.id"
)


# ---------------------------------------------------------------------------------------------
# (h) psql's \copy of the export's query


@dataclass(frozen=True)
class CopyTiming:
    """`psql -c "\\copy (…) TO STDOUT WITH CSV" > /dev/null`, run a few times."""

    seconds: list[float] = field(default_factory=list)
    rows: int = 0
    note: str = ""

    @property
    def available(self) -> bool:
        return bool(self.seconds)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


def time_psql_copy(
    psql: str | None, dsn: str, *, rows: int, runs: int, timeout: float
) -> CopyTiming:
    if psql is None:
        return CopyTiming(rows=rows, note="psql not found (apt-get install -y postgresql-client)")
    command = [psql, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", COPY_COMMAND]
    # JIT off, as in the service's own sessions (service/db.py): PostgreSQL would otherwise
    # spend a share of this run compiling the query, and the floor would look slower than it is.
    environment = {**os.environ, "PGOPTIONS": "-c jit=off"}
    seconds: list[float] = []
    for _ in range(runs):
        started = time.monotonic()
        try:
            done = subprocess.run(  # noqa: S603 - fixed command built by the harness, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
                check=False,
                env=environment,
            )
        except subprocess.TimeoutExpired:
            return CopyTiming(seconds, rows, f"psql took over {timeout:.0f} s")
        if done.returncode != 0:
            return CopyTiming(seconds, rows, f"psql failed: {done.stderr.decode()[-300:]}")
        seconds.append(time.monotonic() - started)
    return CopyTiming(seconds, rows)


@dataclass(frozen=True)
class ExportCheck:
    """One full download of an export, with what it should have held."""

    name: str  # events.ndjson, events.csv
    result: ExportResult
    expected_rows: int
    end_cursor: str
    header_lines: int = 0

    @property
    def rows_read(self) -> int:
        return max(self.result.lines - self.header_lines, 0)

    @property
    def ends_at_the_end(self) -> bool:
        """The last line read carries the feed's last cursor (the export's last column)."""
        return bool(self.end_cursor) and self.result.last_line.rstrip('"}').endswith(
            self.end_cursor
        )

    @property
    def complete(self) -> bool:
        """Read to its end, with every row (a CSV row can span lines: at least that many) and
        the last event last."""
        enough = (
            self.rows_read == self.expected_rows
            if self.header_lines == 0
            else self.rows_read >= self.expected_rows
        )
        return self.result.complete and enough and self.ends_at_the_end

    @property
    def seconds_for_all(self) -> float:
        """The download's time, or, if it was cut at the budget, its time at the rate it had."""
        if not self.result.available or self.result.seconds <= 0:
            return float("nan")
        if self.complete:
            return self.result.seconds
        if self.rows_read == 0:
            return float("inf")
        return self.result.seconds * self.expected_rows / self.rows_read

    @property
    def projected(self) -> bool:
        return self.result.available and not self.complete

    @property
    def events_per_s(self) -> float:
        seconds = self.result.seconds
        return self.rows_read / seconds if seconds > 0 else float("nan")


# ---------------------------------------------------------------------------------------------
# (i) following the feed


@dataclass(frozen=True)
class FollowResult:
    """GET /events?limit=L&after=… page after page from the start, one connection."""

    limit: int
    status: int
    events: int = 0
    pages: int = 0
    seconds: float = 0.0
    expected: int = 0
    reached_end: bool = False
    note: str = ""
    page_p50_ms: float = float("nan")
    page_p99_ms: float = float("nan")

    @property
    def available(self) -> bool:
        return self.status == 200 and self.pages > 0

    @property
    def complete(self) -> bool:
        return self.reached_end and self.events == self.expected

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def seconds_for_all(self) -> float:
        if self.complete:
            return self.seconds
        rate = self.events_per_s
        return self.expected / rate if rate and not math.isnan(rate) else float("nan")


def follow_feed(
    base_url: str,
    *,
    limit: int,
    expected: int,
    budget_s: float,
    start_cursor: str,
    headers: dict[str, str] | None = None,
) -> FollowResult:
    """Read the feed from `start_cursor` to its end, as a consumer catching up would: the next
    page's `after` is the previous page's next_cursor; a short page is the end."""
    pages = events = 0
    page_ms: list[float] = []
    after = start_cursor
    started = time.monotonic()
    reached_end = False
    status = 200
    note = ""
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        while time.monotonic() - started < budget_s:
            asked = time.perf_counter()
            try:
                answer = client.get(f"{API}/events", params={"limit": str(limit), "after": after})
            except httpx.HTTPError as exc:
                status, note = 0, f"{type(exc).__name__}: {exc}"
                break
            if answer.status_code != 200:
                status = answer.status_code
                note = answer.text[:300]
                break
            body: dict[str, Any] = answer.json()
            page_ms.append((time.perf_counter() - asked) * 1000)
            items = body.get("items") or []
            pages += 1
            events += len(items)
            after = str(body.get("next_cursor") or after)
            if len(items) < limit:
                reached_end = True
                break
    seconds = time.monotonic() - started
    if status != 200 and pages == 0:
        return FollowResult(limit=limit, status=status, expected=expected, note=note)
    if status != 200:
        note = f"HTTP {status} after {pages} pages: {note}"
    elif not reached_end:
        note = f"STOPPED at the time budget ({budget_s:g} s)"
    return FollowResult(
        limit=limit,
        status=200,
        events=events,
        pages=pages,
        seconds=seconds,
        expected=expected,
        reached_end=reached_end,
        note=note,
        page_p50_ms=statistics.median(page_ms) if page_ms else float("nan"),
        page_p99_ms=percentile(page_ms, 99),
    )


def largest_feed_limit(base_url: str, *, below: int) -> int | None:
    """The largest of a few usual page sizes under `below` that GET /events accepts."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for limit in (500, 250, 200, 100, 50):
            if limit < below and client.get(f"{API}/events", params={"limit": limit}).is_success:
                return limit
    return None


# ---------------------------------------------------------------------------------------------
# (j) fan-out: many live streams on one worker


@dataclass
class FanOutResult:
    streams_wanted: int
    window_s: float
    streams_open: int = 0
    open_seconds: float = float("nan")
    open_failures: int = 0
    open_errors: list[str] = field(default_factory=list)
    rate_idle: float = float("nan")  # the service database's transactions/s, no stream open
    rate_one: float = float("nan")
    rate_many: float = float("nan")
    cpu_idle_pct: float = float("nan")  # the worker's CPU, % of one core, in those windows
    cpu_one_pct: float = float("nan")
    cpu_many_pct: float = float("nan")
    rss_before_mb: float = float("nan")
    rss_open_mb: float = float("nan")
    rss_peak_mb: float = float("nan")
    transitions: int = 0  # made (2xx)
    transition_failures: list[str] = field(default_factory=list)
    spacing_s: float = 0.5
    latencies_ms: list[float] = field(default_factory=list)
    missing: int = 0  # (stream, event) deliveries that never came
    duplicates: int = 0
    streams_complete: int = 0  # open streams that got every event, once each
    streams_ended_early: int = 0
    fds_before: int = 0
    fds_open: int = 0
    fds_after: int = 0
    closed_in_s: float = float("nan")
    note: str = ""

    @property
    def available(self) -> bool:
        return self.streams_open > 0

    @property
    def rate_ratio(self) -> float:
        if math.isnan(self.rate_one) or self.rate_one <= 0:
            return float("nan")
        return self.rate_many / self.rate_one

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def closed(self) -> bool:
        return self.fds_after <= self.fds_before + 5


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def transaction_count(pg: Postgres, database: str) -> int:
    """Transactions committed or rolled back in `database` so far (read from the `postgres`
    database, so that reading it is not counted)."""
    return int(
        pg.fetchval(
            "postgres",
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
            database,
        )
    )


def transaction_rate(
    pg: Postgres, database: str, pid: int, window_s: float, *, settle_s: float = 1.5
) -> tuple[float, float]:
    """The database's transactions per second over `window_s`, and the worker's CPU (% of a
    core) meanwhile. A busy backend reports its counts at most once a second, an idle one up
    to 10 s late (PostgreSQL's PGSTAT_IDLE_INTERVAL), so `settle_s` of waiting comes first."""
    time.sleep(settle_s)
    before, cpu_before, started = (
        transaction_count(pg, database),
        cpu_seconds(pid),
        time.monotonic(),
    )
    time.sleep(window_s)
    after, cpu_after, ended = transaction_count(pg, database), cpu_seconds(pid), time.monotonic()
    return (after - before) / (ended - started), 100 * (cpu_after - cpu_before) / (ended - started)


class StreamClient:
    """stream_client.py in a process of its own, driven over its stdin and stdout."""

    def __init__(self, port: int, workdir: Path, *, max_seconds: float) -> None:
        self.out = workdir / "streams.json"
        self.log_path = workdir / "stream_client.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        command = [sys.executable, str(STREAM_CLIENT), "--port", str(port)]
        command += ["--out", str(self.out), "--max-seconds", str(round(max_seconds))]
        self.process = subprocess.Popen(  # noqa: S603 - fixed command built by the harness
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            preexec_fn=die_with_parent,  # the harness's reader thread starts after the fork
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put("")

    def command(self, text: str, *, timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(
                f"the stream client did not answer {text!r} in {timeout:.0f} s"
            ) from None
        if not line:
            raise RuntimeError(f"the stream client exited: {self.log_tail()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:]
        except OSError:
            return ""

    def stop(self, *, timeout: float = 30) -> dict[str, Any] | None:
        """Close every stream; the arrivals as the client wrote them (None if it could not)."""
        try:
            if self.process.poll() is None and self.process.stdin is not None:
                self.process.stdin.write("stop\n")
                self.process.stdin.flush()
                self.process.stdin.close()
            self.process.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=10)
        finally:
            self._log.close()
        try:
            arrivals: dict[str, Any] = json.loads(self.out.read_text())
        except (OSError, ValueError):
            return None
        return arrivals


@dataclass(frozen=True)
class Posted:
    event_id: int
    answered_at: float  # time.monotonic() when the POST's answer had been read


def make_transitions(
    base_url: str,
    auth: dict[str, str],
    codes: list[str],
    *,
    spacing_s: float,
    failures: list[str],
) -> list[Posted]:
    """One legal transition of each programme in `codes` (draft ⇄ coordinated, read first),
    `spacing_s` apart."""
    posted: list[Posted] = []
    with httpx.Client(base_url=base_url, headers=auth, timeout=30) as client:
        targets = {}
        for code in codes:
            status = client.get(f"{API}/programs/{code}").json().get("status")
            targets[code] = "draft" if status == "coordinated" else "coordinated"
        start = time.monotonic()
        for number, code in enumerate(codes):
            time.sleep(max(0.0, start + number * spacing_s - time.monotonic()))
            answer = client.post(
                f"{API}/programs/{code}/transitions",
                json={"to_status": targets[code], "source_url": "https://example.org/bench"},
            )
            answered_at = time.monotonic()
            if answer.status_code != 201:
                failures.append(f"{code}: HTTP {answer.status_code} {answer.text[:120]}")
                continue
            posted.append(Posted(int(answer.json()["event"]["id"]), answered_at))
    return posted


def tally_deliveries(
    result: FanOutResult, posted: list[Posted], streams: list[dict[str, Any]]
) -> None:
    sent = {post.event_id: post.answered_at for post in posted}
    for stream in streams:
        if not stream.get("opened"):
            continue
        if stream.get("ended"):
            result.streams_ended_early += 1
        seen: dict[int, float] = {}
        for event_id, arrived in stream.get("arrivals", []):
            if event_id in seen:
                result.duplicates += 1
                continue
            seen[int(event_id)] = float(arrived)
        got = 0
        for event_id, answered_at in sent.items():
            if event_id in seen:
                got += 1
                result.latencies_ms.append(1000 * (seen[event_id] - answered_at))
            else:
                result.missing += 1
        if got == len(sent) and len(stream.get("arrivals", [])) == len(seen):
            result.streams_complete += 1


def fan_out(
    *,
    pg: Postgres,
    database: str,
    base_url: str,
    port: int,
    pid: int,
    auth: dict[str, str],
    codes: list[str],
    streams: int,
    window_s: float,
    spacing_s: float,
    workdir: Path,
    say: Callable[[str], None],
) -> FanOutResult:
    """0, 1 and `streams` open streams: the database's transaction rate; then transitions with
    all of them open: each event's delay on each stream; then every stream closed."""
    result = FanOutResult(streams_wanted=streams, window_s=window_s, spacing_s=spacing_s)
    result.fds_before = open_files(pid)
    result.rss_before_mb = memory_of(pid).rss_mb
    # The counts of the work before this phase reach pg_stat_database up to 10 s late.
    result.rate_idle, result.cpu_idle_pct = transaction_rate(
        pg, database, pid, window_s, settle_s=11
    )
    say(f"(j) no stream open: {result.rate_idle:.1f} transactions/s")
    budget = 4 * window_s + 200 + len(codes) * spacing_s  # the client's own time limit
    client = StreamClient(port, workdir, max_seconds=budget)
    posted: list[Posted] = []
    arrivals: dict[str, Any] | None = None
    try:
        first = client.command("open 1", timeout=40)
        if first.get("open") != 1:
            result.note = f"could not open a stream: {first.get('errors')}"
            return result
        result.rate_one, result.cpu_one_pct = transaction_rate(pg, database, pid, window_s)
        say(f"(j) 1 stream open: {result.rate_one:.1f} transactions/s")
        many = client.command(f"open {streams}", timeout=150)
        result.streams_open = int(many["open"])
        result.open_seconds = float(many["seconds"])
        result.open_failures = int(many["failed"])
        result.open_errors = [str(error) for error in many.get("errors", [])]
        result.fds_open = open_files(pid)
        result.rss_open_mb = memory_of(pid).rss_mb
        say(
            f"(j) {result.streams_open:,} streams open in {result.open_seconds:.1f} s "
            f"({result.open_failures} failed); worker RSS {result.rss_open_mb:.0f} MB"
        )
        sampler = RssSampler(pid)
        sampler.start()
        try:
            result.rate_many, result.cpu_many_pct = transaction_rate(pg, database, pid, window_s)
            say(f"(j) {result.streams_open:,} streams open: {result.rate_many:.1f} transactions/s")
            open_now = int(client.command("count", timeout=30)["open"])
            posted = make_transitions(
                base_url, auth, codes, spacing_s=spacing_s, failures=result.transition_failures
            )
            result.transitions = len(posted)
            wanted = open_now * len(posted)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if int(client.command("count", timeout=30)["events"]) >= wanted:
                    break
                time.sleep(0.25)
        finally:
            sampler.stopping.set()
            sampler.join(timeout=5)
        result.rss_peak_mb = max(sampler.peak, result.rss_open_mb)
    finally:
        closing = time.monotonic()
        arrivals = client.stop()
        for _ in range(60):  # the worker notices the closed connections; 15 s at most
            result.fds_after = open_files(pid)
            if result.fds_after <= result.fds_before + 5:
                break
            time.sleep(0.25)
        result.closed_in_s = time.monotonic() - closing
    if arrivals is None:
        result.note = f"the stream client wrote no arrivals: {client.log_tail()}"
        return result
    tally_deliveries(result, posted, arrivals["streams"])
    return result
