"""The run, phase by phase, on one service worker and one anchor worker.

Order matters: the reads run while the service holds only its 28 seeded programmes (so the list
is the anchor's 28 rows); then the transition and bulk programmes are created, the history grows
to the small size for the small timeline, the transitions and pgbench run, and only then is the
history grown to its full size for the page, timeline and export measurements.
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from benchlib import feeds, pgbench_scripts
from benchlib.database import (
    BENCH_PREFIX,
    BULK_PREFIX,
    Postgres,
    count_events,
    feed_position_from_end,
    key_id_of,
    load_events,
    longest_history,
    secret_hash_of,
)
from benchlib.load import (
    ExportResult,
    PageTiming,
    WrkResult,
    lua_script,
    run_pgbench,
    run_wrk,
    stream_export,
    time_pages,
)
from benchlib.profiling import finish_recording, start_recording, summarise
from benchlib.report import Comparison, Load, Results, Scaling
from benchlib.servers import Server, cpu_seconds, create_api_key, memory_of
from benchlib.tools import find_postgres_tool
from service.pagination import encode_cursor

API = "/api/v1"
TIMELINE = f"{API}/stats/timeline?start=2021-01-01&end=2024-12-31&interval=quarter"
EXPORT = f"{API}/export/events.ndjson"
EXPORT_CSV = f"{API}/export/events.csv"
FOLLOW_LIMIT = 1000  # issue 17's page size for a consumer catching up
ANCHOR_ROWS = 28
# Issue 16: a busy page's clients against one worker get no 5xx and no timeouts.
LOAD_CONNECTIONS = 64


@dataclass
class Run:
    args: argparse.Namespace
    pg: Postgres
    service_db: str
    anchor_db: str
    service: Server
    anchor: Server
    wrk: str
    pgbench: str | None
    py_spy: str | None
    workdir: Path
    results: Results
    say: Callable[[str], None]
    key: str = ""
    peak_before_reset_mb: float = 0.0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def wrk_run(
        self,
        server: Server,
        path: str,
        scenario: str,
        script_args: list[str],
        seconds: float,
        *,
        connections: int | None = None,
    ) -> WrkResult:
        """One wrk run; the result carries the worker's CPU milliseconds per request."""
        cpu_before = cpu_seconds(server.pid)
        connections = connections or self.args.connections
        result = run_wrk(
            self.wrk,
            server.url + path,
            lua_script(self.workdir, scenario),
            threads=min(self.args.threads, connections),
            connections=connections,
            seconds=seconds,
            script_args=script_args,
        )
        cpu = cpu_seconds(server.pid) - cpu_before
        return replace(result, cpu_ms_per_request=1000 * cpu / max(result.requests, 1))


@dataclass(frozen=True)
class Side:
    """How one server is driven for one comparison."""

    path: str
    scenario: str
    script_args: Callable[[], list[str]]


def alternate(run: Run, comparison: Comparison, service: Side, anchor: Side) -> None:
    """Warm both up, then S, A, S, A … for the configured rounds."""
    args = run.args
    for server, side in ((run.service, service), (run.anchor, anchor)):
        run.wrk_run(server, side.path, side.scenario, side.script_args(), args.warmup)
    for number in range(1, args.rounds + 1):
        s = run.wrk_run(
            run.service, service.path, service.scenario, service.script_args(), args.duration
        )
        a = run.wrk_run(
            run.anchor, anchor.path, anchor.scenario, anchor.script_args(), args.duration
        )
        comparison.service.append(s)
        comparison.anchor.append(a)
        run.say(
            f"({comparison.key}) round {number}/{args.rounds}: service {s.rps:,.0f} req/s "
            f"(p99 {s.p99_ms:.1f} ms, non-2xx {s.non_2xx}), anchor {a.rps:,.0f} req/s "
            f"(p99 {a.p99_ms:.1f} ms, non-2xx {a.non_2xx})"
        )


def profile_while(
    run: Run, name: str, label: str, side: Side, *, connections: int | None = None
) -> None:
    """py-spy on the service worker while wrk drives `side` (not counted in the results)."""
    if run.py_spy is None:
        return
    seconds = run.args.profile_seconds
    run.args.profile_dir.mkdir(parents=True, exist_ok=True)
    output = run.args.profile_dir / f"{name}.txt"
    recorder = start_recording(run.py_spy, run.service.pid, seconds, output)
    run.wrk_run(
        run.service,
        side.path,
        side.scenario,
        side.script_args(),
        seconds + 2,
        connections=connections,
    )
    message = finish_recording(recorder, timeout=seconds + 60)
    if not output.exists():
        run.say(f"py-spy wrote nothing for {label}: {message[-300:]}")
        return
    summary = summarise(label, output)
    run.results.profiles.append(summary)
    run.say(f"profiled {label}: {summary.samples} samples in {output}")


def reads(run: Run) -> None:
    answer = httpx.get(f"{run.service.url}{API}/programs?limit=100", timeout=30)
    answer.raise_for_status()
    codes = [item["code"] for item in answer.json()["items"]]
    anchor_rows = httpx.get(f"{run.anchor.url}/programs_raw", timeout=30).json()["items"]
    if len(codes) != ANCHOR_ROWS or len(anchor_rows) != ANCHOR_ROWS:
        run.results.notes.append(
            f"the service lists {len(codes)} programmes and the anchor {len(anchor_rows)}; "
            f"both should have {ANCHOR_ROWS}"
        )
    listing = Comparison(
        "a", "list of 28 programmes", f"GET {API}/programs?limit=100", "GET /programs_raw", 1.0
    )
    one = Comparison(
        "b",
        "one programme (rotating over 28)",
        f"GET {API}/programs/{{code}}",
        "GET /program_raw/{id}",
        1.0,
    )
    run.results.comparisons += [listing, one]
    list_service = Side(f"{API}/programs?limit=100", "report", list)
    list_anchor = Side("/programs_raw", "report", list)
    one_service = Side(
        f"{API}/programs/{codes[0]}", "rotate", lambda: [f"{API}/programs/{c}" for c in codes]
    )
    one_anchor = Side(
        "/program_raw/1", "rotate", lambda: [f"/program_raw/{i}" for i in range(1, 29)]
    )
    alternate(run, listing, list_service, list_anchor)
    alternate(run, one, one_service, one_anchor)
    for comparison, side in ((listing, list_service), (one, one_service)):
        result = run.wrk_run(
            run.service,
            side.path,
            side.scenario,
            side.script_args(),
            run.args.duration,
            connections=LOAD_CONNECTIONS,
        )
        run.results.loads.append(
            Load(comparison.key, comparison.service_request, LOAD_CONNECTIONS, result)
        )
        run.say(
            f"({comparison.key}) at {LOAD_CONNECTIONS} connections: {result.rps:,.0f} req/s, "
            f"p99 {result.p99_ms:.1f} ms, non-2xx {result.non_2xx}, "
            f"socket errors {result.socket_errors}"
        )
    profile_while(run, "a_list", "(a) list of programmes", list_service)
    profile_while(run, "b_one", "(b) one programme", one_service)


def create_programmes(run: Run) -> None:
    run.key = create_api_key(run.pg.dsn(run.service_db), "bench")
    wanted = [(f"{BENCH_PREFIX}{i:04d}", f"Bench {i}") for i in range(1, run.args.programmes + 1)]
    wanted += [
        (f"{BULK_PREFIX}{i:04d}", f"Bulk history {i}")
        for i in range(1, run.args.bulk_programmes + 1)
    ]
    with httpx.Client(base_url=run.service.url, headers=run.auth, timeout=30) as client:
        for code, title in wanted:
            answer = client.post(f"{API}/programs", json={"code": code, "title": title})
            if answer.status_code != 201:
                raise RuntimeError(f"creating {code}: HTTP {answer.status_code} {answer.text}")
    run.say(f"created {len(wanted)} programmes through the API")


def grow_history(run: Run, total: int) -> None:
    report = load_events(run.pg, run.service_db, target_total=total, progress=run.say)
    run.say(f"history: {report.total:,} events ({report.added:,} loaded in {report.seconds:.0f} s)")


def time_paths(run: Run, *paths: str) -> list[PageTiming]:
    """Sequential requests on one connection, alternating between `paths`; with the key only
    if a path needs one."""
    pid = run.service.pid
    timings: list[PageTiming] = []
    with httpx.Client(base_url=run.service.url, timeout=120) as client:
        for headers in (None, run.auth):
            timings = time_pages(
                client,
                list(paths),
                count=run.args.page_requests,
                budget_s=run.args.page_budget,
                headers=headers,
                cpu_seconds=lambda: cpu_seconds(pid),
            )
            if not any(timing.status in (401, 403) for timing in timings):
                break
    return timings


def write_states(run: Run) -> Path:
    """The bench programmes' current statuses, for the wrk script (one 'code status' a line)."""
    states: list[tuple[str, str]] = []
    after: str | None = None
    with httpx.Client(base_url=run.service.url, timeout=30) as client:
        for _ in range(1000):
            params = {"limit": "500", **({"cursor": after} if after else {})}
            page = client.get(f"{API}/programs", params=params).json()
            states += [
                (item["code"], item["status"])
                for item in page["items"]
                if item["code"].startswith(BENCH_PREFIX)
            ]
            after = page.get("next_cursor")
            if not after:
                break
    path = run.workdir / "states.txt"
    path.write_text("".join(f"{code} {status}\n" for code, status in sorted(states)))
    return path


def transitions(run: Run) -> None:
    comparison = Comparison(
        "c",
        "one transition",
        f"POST {API}/programs/{{code}}/transitions",
        "POST /transition_raw/{id}",
        0.8,
        counts_responses=True,
    )
    run.results.comparisons.append(comparison)
    threads = str(run.args.threads)
    service = Side(
        f"{API}/programs",
        "service_transition",
        lambda: [run.key, str(write_states(run)), threads],
    )
    anchor = Side(
        "/transition_raw/1",
        "anchor_transition",
        lambda: [str(i) for i in range(1, ANCHOR_ROWS + 1)],
    )
    alternate(run, comparison, service, anchor)
    run.results.notes.append(
        f"(c) the anchor's transitions rotate over its {ANCHOR_ROWS} rows from "
        f"{run.args.connections} connections, so some wait for another's row lock; the "
        f"service's are spread over {run.args.programmes} programmes, none shared between "
        "connections. This favours the service."
    )
    profile_while(run, "c_transition", "(c) transitions", service)


def database_limit(run: Run) -> None:
    if run.pgbench is None:
        run.results.pgbench.append(("pgbench", "pgbench not found"))
        return
    host_port = run.pg.base.split("@")[-1]
    host, _, port = host_port.partition(":")
    user = run.pg.base.split("//")[1].split("@")[0]
    parts = (host, int(port or 5432), user)
    clients, threads = run.args.connections, run.args.threads
    scripts = [
        (
            "service's statements (key lookup taking the lock; read; event insert with the "
            "programme's update; commit)",
            pgbench_scripts.service_transition(),
            run.service_db,
            {
                "clients": str(clients),
                "per": str(run.args.programmes // clients),
                "keyid": key_id_of(run.pg, run.service_db, "bench"),
                "secrethash": secret_hash_of(run.pg, run.service_db, "bench"),
            },
        ),
        (
            "anchor's statements (lock, update, insert; commit)",
            pgbench_scripts.anchor_transition(),
            run.anchor_db,
            {},
        ),
    ]
    for label, text, database, variables in scripts:
        script = run.workdir / f"{'service' if 'service' in label else 'anchor'}_tx.sql"
        script.write_text(text)
        result = run_pgbench(
            run.pgbench,
            parts,
            database,
            script,
            clients=clients,
            threads=threads,
            seconds=run.args.duration,
            variables={**variables, "newhash": secrets.token_hex(32)},
            workdir=run.workdir,
        )
        run.results.pgbench.append((label, result))
        run.say(f"pgbench {label}: {result.tps:,.0f} tps, p99 {result.p99_ms:.1f} ms")


def large_history(run: Run, small_timeline: PageTiming) -> None:
    """(d) pages at the end of a large history against the start, (e) the timeline."""
    args = run.args
    grow_history(run, args.events)
    events = count_events(run.pg, run.service_db)
    txid, event_id = feed_position_from_end(run.pg, run.service_db, 150)
    feed_start, feed_end = time_paths(
        run,
        f"{API}/events?limit=100&after={encode_cursor(0, 0)}",
        f"{API}/events?limit=100&after={encode_cursor(txid, event_id)}",
    )
    feed = Scaling(
        "d",
        f"feed page `GET {API}/events?limit=100&after=…` ({events:,} events)",
        "from the start",
        "150 events before the end",
        1.3,
        small=feed_start,
        large=feed_end,
    )
    code, newest = longest_history(run.pg, run.service_db)
    history_start, history_end = time_paths(
        run,
        f"{API}/programs/{code}/history?limit=100",
        f"{API}/programs/{code}/history?limit=100&cursor={encode_cursor(newest - 150)}",
    )
    history = Scaling(
        "d",
        f"history page `GET {API}/programs/{{code}}/history?limit=100` ({newest:,} events)",
        "first page",
        "page 150 before the newest",
        1.3,
        small=history_start,
        large=history_end,
    )
    timeline = Scaling(
        "e",
        "quarterly timeline 2021–2024 `GET /api/v1/stats/timeline`",
        f"{args.small_events:,} events",
        f"{events:,} events",
        2.0,
        small=small_timeline,
        large=time_paths(run, TIMELINE)[0],
    )
    run.results.scaling += [feed, history, timeline]
    if timeline.available:
        profile_while(
            run,
            "e_timeline",
            f"(e) timeline over {events:,} events, one connection",
            Side(TIMELINE, "report", list),
            connections=1,
        )
    run.say(
        f"(d) feed {feed.ratio:.2f}, history {history.ratio:.2f}; (e) timeline {timeline.row()}"
    )


def download(run: Run, path: str) -> ExportResult:
    """A whole export, read to its end (or the budget), with the key only if it needs one."""
    url, pid, budget = run.service.url + path, run.service.pid, run.args.export_budget
    result = stream_export(url, pid, budget_s=budget)
    if result.status in (401, 403):
        result = stream_export(url, pid, budget_s=budget, headers=run.auth)
    return result


def exports(run: Run) -> None:
    """(f) the NDJSON export's memory; (h) both event exports against psql's COPY of the same
    rows; (i) following the feed from the start with pages of 1,000."""
    args, figures = run.args, run.results.feeds
    events = count_events(run.pg, run.service_db)
    rows = int(run.pg.fetchval(run.service_db, feeds.EXPORT_ROWS_SQL))
    end_txid, end_id = feed_position_from_end(run.pg, run.service_db, 0)
    end_cursor = encode_cursor(end_txid, end_id)
    run.results.memory.events_in_db = events
    run.peak_before_reset_mb = max(run.peak_before_reset_mb, memory_of(run.service.pid).peak_mb)
    figures.copy = feeds.time_psql_copy(
        find_postgres_tool("psql"),
        run.pg.dsn(run.service_db),
        rows=rows,
        runs=args.copy_runs,
        timeout=max(args.export_budget, 60),
    )
    run.say(f"(h) psql \\copy of {rows:,} rows: {figures.copy.median_s:.1f} s {figures.copy.note}")
    export = download(run, EXPORT)
    run.results.memory.export = export
    figures.ndjson = feeds.ExportCheck("events.ndjson", export, rows, end_cursor)
    run.say(
        f"(f, h) NDJSON export: HTTP {export.status}, {export.lines:,} lines in "
        f"{export.seconds:.1f} s, +{export.growth_mb:.0f} MB"
    )
    csv = download(run, EXPORT_CSV)
    figures.csv = feeds.ExportCheck("events.csv", csv, rows, end_cursor, header_lines=1)
    run.say(
        f"(h) CSV export: HTTP {csv.status}, {csv.lines:,} lines in {csv.seconds:.1f} s, "
        f"+{csv.growth_mb:.0f} MB"
    )
    follow = feeds.follow_feed(
        run.service.url,
        limit=FOLLOW_LIMIT,
        expected=rows,
        budget_s=args.export_budget,
        start_cursor=encode_cursor(0, 0),
    )
    figures.follow = follow
    run.say(
        f"(i) following the feed, limit={FOLLOW_LIMIT}: HTTP {follow.status}, "
        f"{follow.events:,} events in {follow.seconds:.1f} s {follow.note[:120]}"
    )
    if follow.status == 422:
        # Not the goal's page size: how fast the feed can be followed today, for context.
        largest = feeds.largest_feed_limit(run.service.url, below=FOLLOW_LIMIT)
        if largest:
            figures.follow_fallback = feeds.follow_feed(
                run.service.url,
                limit=largest,
                expected=rows,
                budget_s=min(args.export_budget, 60),
                start_cursor=encode_cursor(0, 0),
            )
            run.say(
                f"(i) context, limit={largest}: "
                f"{figures.follow_fallback.events_per_s:,.0f} events/s"
            )


def record_memory(run: Run) -> None:
    """The worker's memory after the run's ordinary work, before the fan-out's 2,000 streams
    (which have a goal of their own) can raise its peak."""
    memory = run.results.memory
    memory.final_peak_mb = max(memory_of(run.service.pid).peak_mb, run.peak_before_reset_mb)
    memory.final_rss_mb = memory_of(run.service.pid).rss_mb
    memory.anchor_peak_mb = memory_of(run.anchor.pid).peak_mb


def fan_out(run: Run) -> None:
    """(j) many live streams on the worker: the database's load, delivery, memory, closing."""
    args = run.args
    codes = [f"{BENCH_PREFIX}{i:04d}" for i in range(1, args.stream_transitions + 1)]
    result = feeds.fan_out(
        pg=run.pg,
        database=run.service_db,
        base_url=run.service.url,
        port=run.service.port,
        pid=run.service.pid,
        auth=run.auth,
        codes=codes,
        streams=args.streams,
        window_s=args.stream_window,
        spacing_s=0.5,
        workdir=run.workdir,
        say=run.say,
    )
    run.results.feeds.fanout = result
    run.say(
        f"(j) {result.transitions} transitions to {result.streams_open:,} streams: p99 "
        f"{result.p99_ms:.0f} ms, {result.streams_complete:,} streams got every event; "
        f"streams closed: {result.closed} {result.note}"
    )


def run_all(run: Run) -> None:
    """Every phase in order; with --only, the setup and the named measurements alone."""
    only = set(run.args.only)
    everything = not only
    run.results.notes.append(
        "both servers run one uvicorn worker with their defaults (uvloop, httptools, access "
        "log at info, to a file); the service's database pool is left at its default "
        "(ROADMAP_DB_POOL_SIZE unset), the anchor's asyncpg pool holds up to 16 connections"
    )
    if only:
        run.results.notes.append(f"partial run: --only {','.join(sorted(only))}")
    if everything or "reads" in only:
        reads(run)
    create_programmes(run)
    grow_history(run, run.args.small_events)
    if everything:
        small_timeline = time_paths(run, TIMELINE)[0]
        run.say(f"(e) timeline over {run.args.small_events:,} events: HTTP {small_timeline.status}")
    if everything or "transitions" in only:
        transitions(run)
    if everything:
        database_limit(run)
        large_history(run, small_timeline)
    if everything or "exports" in only:
        if not everything:
            grow_history(run, run.args.events)
        exports(run)
    record_memory(run)
    if everything or "fanout" in only:
        fan_out(run)
