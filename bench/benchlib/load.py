"""Driving the servers: wrk for throughput, pgbench for the database alone, timed loops for pages,
and a streamed download for memory."""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchlib.servers import memory_of, reset_peak
from benchlib.tools import LUA_DIR, run

MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int  # connect, read, write errors and timeouts
    status_errors: int  # HTTP status >= 400, as wrk counts them
    count_2xx: int  # counted by scenarios that define response()
    count_409: int
    count_other: int
    starved: int
    cpu_ms_per_request: float = float("nan")  # the server worker's CPU time, set by the caller

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def non_2xx(self) -> int:
        counted = self.count_409 + self.count_other
        return max(counted, self.status_errors)


def lua_script(workdir: Path, scenario: str) -> Path:
    """The scenario's Lua file with the shared reporting part in front of it."""
    path = workdir / f"{scenario}.lua"
    if not path.exists():
        common = (LUA_DIR / "report.lua").read_text()
        own = (LUA_DIR / f"{scenario}.lua").read_text() if scenario != "report" else ""
        path.write_text(common + "\n" + own)
    return path


def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    *,
    threads: int,
    connections: int,
    seconds: float,
    script_args: list[str] | None = None,
) -> WrkResult:
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "10s"]
    command += ["-s", str(script), url]
    if script_args:
        command += ["--", *script_args]
    result = run(command, timeout=seconds + 60, check=False)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith(MARKER)), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({result.returncode}): {result.stderr.strip()[-800:]}"
            f"{result.stdout.strip()[-800:]}"
        )
    data: dict[str, Any] = json.loads(line[len(MARKER) :])
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        socket_errors=sum(
            int(data[key]) for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
        ),
        status_errors=int(data["status_errors"]),
        count_2xx=int(data["count_2xx"]),
        count_409=int(data["count_409"]),
        count_other=int(data["count_other"]),
        starved=int(data["count_starved"]),
    )


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    transactions: int
    failed: int
    p50_ms: float
    p99_ms: float


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_pgbench(
    pgbench: str,
    dsn_parts: tuple[str, int, str],
    database: str,
    script: Path,
    *,
    clients: int,
    threads: int,
    seconds: float,
    variables: dict[str, str],
    workdir: Path,
) -> PgbenchResult:
    host, port, user = dsn_parts
    log_prefix = workdir / f"pgbench_{script.stem}"
    for old in workdir.glob(f"{log_prefix.name}*"):
        old.unlink()
    command = [pgbench, "-h", host, "-p", str(port), "-U", user, "-n", "-M", "prepared"]
    command += ["-c", str(clients), "-j", str(threads), "-T", str(round(seconds))]
    command += ["-f", str(script), "-l", f"--log-prefix={log_prefix}"]
    for name, value in variables.items():
        command += ["-D", f"{name}={value}"]
    command.append(database)
    result = run(command, timeout=seconds + 120, check=False)
    if result.returncode not in (0, 2):  # 2: some transactions failed; reported below
        raise RuntimeError(f"pgbench failed: {result.stderr.strip()[-800:]}")
    tps = processed = failed = 0.0
    for line in result.stdout.splitlines():
        if line.startswith("tps = "):
            tps = float(line.split()[2])
        elif line.startswith("number of transactions actually processed"):
            processed = float(line.split(":")[1].split("/")[0])
        elif line.startswith("number of failed transactions"):
            failed = float(line.split(":")[1].split()[0])
    latencies: list[float] = []
    for log in workdir.glob(f"{log_prefix.name}*"):
        for row in log.read_text().splitlines():
            fields = row.split()
            if len(fields) >= 3 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000)
    return PgbenchResult(
        tps=tps,
        transactions=int(processed),
        failed=int(failed),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
    )


@dataclass
class PageTiming:
    """Sequential requests to one URL (one connection): how long a page takes."""

    status: int
    samples_ms: list[float] = field(default_factory=list)
    items: int | None = None
    note: str = ""
    cpu_ms: float | None = None  # the server worker's CPU per timed request

    @property
    def available(self) -> bool:
        return self.status == 200 and bool(self.samples_ms)

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.samples_ms) if self.samples_ms else float("nan")

    @property
    def p90_ms(self) -> float:
        return percentile(self.samples_ms, 90)


def _items_in(answer: httpx.Response) -> int | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return len(body["items"])
    return None


def time_pages(
    client: httpx.Client,
    urls: list[str],
    *,
    count: int,
    budget_s: float,
    headers: dict[str, str] | None = None,
    cpu_seconds: Callable[[], float] | None = None,
) -> list[PageTiming]:
    """Sequential requests on one connection, alternating between `urls` so that both sides of
    a ratio see the same moments of a noisy machine.

    Untimed warm-up rounds first (at least 5 and 1 s, at most 50): the first executions of a
    statement are slower (SQLAlchemy's statement cache, asyncpg's prepared statements,
    PostgreSQL's plan choice), and a ratio must compare warm with warm. Then up to `count`
    timed requests per URL within `budget_s` per URL (at least one each). With `cpu_seconds`
    (the server's CPU clock), each timing also says how much of a request was the server's own
    CPU, the rest being the database and the client.

    Every request carries a query parameter of its own (`_bench=N`, which the service ignores),
    so that the service's per-worker answer cache cannot answer it: these are the times to
    compute a page, which is what grows with history if anything does.
    """
    timings: list[PageTiming] = []
    fresh = itertools.count()

    def uncached(url: str) -> str:
        return f"{url}{'&' if '?' in url else '?'}_bench={next(fresh)}"

    for url in urls:
        try:
            first = client.get(url, headers=headers)
        except httpx.TimeoutException:
            timings.append(PageTiming(status=0, note="timed out"))
            continue
        if first.status_code != 200:
            timings.append(PageTiming(status=first.status_code, note=first.text[:200]))
        else:
            timings.append(PageTiming(status=200, items=_items_in(first)))
    live = [i for i, timing in enumerate(timings) if timing.status == 200]
    warm_until = time.monotonic() + 1.0
    for number in range(50):
        if number >= 5 and time.monotonic() > warm_until:
            break
        for i in live:
            client.get(uncached(urls[i]), headers=headers)
    cpu_ms = dict.fromkeys(live, 0.0)
    deadline = time.monotonic() + budget_s * len(live)
    for number in range(count):
        if number and time.monotonic() > deadline:
            break
        for i in list(live):
            cpu_before = cpu_seconds() if cpu_seconds else 0.0
            started = time.perf_counter()
            answer = client.get(uncached(urls[i]), headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if cpu_seconds:
                cpu_ms[i] += 1000 * (cpu_seconds() - cpu_before)
            if answer.status_code != 200:
                timings[i].status = answer.status_code
                timings[i].note = f"HTTP {answer.status_code} during timing"
                live.remove(i)
                continue
            timings[i].samples_ms.append(elapsed)
    for i, total in cpu_ms.items():
        if cpu_seconds and timings[i].samples_ms:
            timings[i].cpu_ms = total / len(timings[i].samples_ms)
    return timings


@dataclass(frozen=True)
class ExportResult:
    status: int
    lines: int = 0
    megabytes: float = 0.0
    seconds: float = 0.0
    complete: bool = False
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    note: str = ""
    last_line: str = ""  # the last non-empty line read, for checking where the download ended

    @property
    def available(self) -> bool:
        return self.status == 200

    @property
    def growth_mb(self) -> float:
        return self.rss_peak_mb - self.rss_before_mb


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every 20 ms, in case VmHWM cannot be reset."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.02):
            try:
                self.peak = max(self.peak, memory_of(self.pid).rss_mb)
            except (OSError, KeyError):
                return


def stream_export(
    url: str, pid: int, *, budget_s: float, headers: dict[str, str] | None = None
) -> ExportResult:
    """Read a streamed download to the end (or `budget_s`), watching the worker's memory.

    It asks for the bytes as they are (Accept-Encoding: identity), as curl and psql get them:
    the service gzips what a client accepts gzipped, and counting lines needs the text."""
    headers = {"Accept-Encoding": "identity", **(headers or {})}
    before = memory_of(pid).rss_mb
    peak_was_reset = reset_peak(pid)
    sampler = RssSampler(pid)
    lines = size = 0
    tail = b""
    started = time.monotonic()
    complete = False
    sampler.start()
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(60.0)) as client,
            client.stream("GET", url, headers=headers) as answer,
        ):
            if answer.status_code != 200:
                answer.read()
                return ExportResult(status=answer.status_code, note=answer.text[:200])
            for chunk in answer.iter_bytes():
                lines += chunk.count(b"\n")
                size += len(chunk)
                tail = (tail + chunk)[-16384:]
                if time.monotonic() - started > budget_s:
                    break
            else:
                complete = True
    except httpx.HTTPError as exc:
        return ExportResult(status=0, note=f"{type(exc).__name__}: {exc}")
    finally:
        sampler.stopping.set()
        sampler.join(timeout=5)
    seconds = time.monotonic() - started
    peak = max(sampler.peak, memory_of(pid).peak_mb if peak_was_reset else 0.0)
    return ExportResult(
        status=200,
        lines=lines,
        megabytes=size / 1e6,
        seconds=seconds,
        complete=complete,
        rss_before_mb=before,
        rss_peak_mb=peak,
        note="" if peak_was_reset else "VmHWM could not be reset; RSS sampled every 20 ms",
        last_line=tail.decode(errors="replace").strip().rpartition("\n")[2].strip(),
    )


def started_in_background(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - fixed command built by the harness, no shell
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
