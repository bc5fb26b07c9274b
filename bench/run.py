#!/usr/bin/env python3
"""Benchmark the service against the anchor app, side by side on fresh databases.

    python bench/run.py                  # full run: 5 rounds x 10 s per measurement
    python bench/run.py --quick          # smoke run, under 3 minutes
    python bench/run.py --write-results  # also prepend the results to bench/RESULTS.md

Run it with the interpreter the project is installed in (pip install -e '.[test]'). See
bench/README.md for what is measured, the goals and every flag.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

# benchlib is importable through the path set above, from any working directory.
from benchlib import phases
from benchlib.database import Postgres
from benchlib.report import Results, prepend_results
from benchlib.servers import free_port, memory_of, start_anchor, start_service
from benchlib.stream_client import raise_file_limit
from benchlib.tools import (
    BENCH_DIR,
    DEFAULT_ANCHOR_DIR,
    SetupError,
    check_python_modules,
    describe_machine,
    find_pgbench,
    find_py_spy,
    find_wrk,
    load_average,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the service against the anchor app (see bench/README.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--rounds", type=int, default=5, help="alternated service/anchor rounds per request type")
    add("--duration", type=float, default=10, help="seconds per wrk run")
    add("--warmup", type=float, default=2, help="seconds of unrecorded load before the rounds")
    add("--threads", type=int, default=2, help="wrk threads (and pgbench threads)")
    add("--connections", type=int, default=32, help="wrk connections (and pgbench clients)")
    add("--programmes", type=int, default=200, help="programmes the transition load toggles")
    add("--bulk-programmes", type=int, default=100, help="programmes carrying the bulk history")
    add("--events", type=int, default=1_000_000, help="events in the database for (d), (e), (f)")
    add("--small-events", type=int, default=10_000, help="events for the small timeline in (e)")
    add("--page-requests", type=int, default=30, help="timed requests per page measurement")
    add("--page-budget", type=float, default=10, help="seconds at most per page measurement")
    add("--export-budget", type=float, default=300, help="seconds at most per full download")
    add("--copy-runs", type=int, default=3, help="psql \\copy runs (h): the median is the base")
    add("--streams", type=int, default=2000, help="live streams opened on the worker (j)")
    add("--stream-window", type=float, default=10, help="seconds per transactions/s window (j)")
    add("--stream-transitions", type=int, default=20, help="transitions made with streams open")
    add(
        "--only",
        type=_phase_list,
        default=[],
        help=f"run only the setup and these measurements (comma-separated: {', '.join(PHASES)})",
    )
    add("--quick", action="store_true", help="smoke run: 1 round of 3 s, shorter page timings")
    add("--profile", action="store_true", help="also run py-spy on the worker under load")
    add("--profile-seconds", type=float, default=10, help="seconds per py-spy recording")
    add("--profile-dir", type=Path, default=BENCH_DIR / "profiles", help="py-spy raw output")
    add("--write-results", action="store_true", help="prepend the results to --results")
    add("--results", type=Path, default=BENCH_DIR / "RESULTS.md", help="the results file")
    add("--anchor-dir", type=Path, default=DEFAULT_ANCHOR_DIR, help="where anchor_app.py is")
    add("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL (loopback)")
    add("--no-install", action="store_true", help="never apt-get/pip install a missing tool")
    add("--keep-workdir", action="store_true", help="keep the logs and scripts afterwards")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3, 1
        args.page_requests, args.page_budget = 10, 3
        args.export_budget = min(args.export_budget, 30)
        args.stream_window = min(args.stream_window, 5)
        args.profile_seconds = min(args.profile_seconds, 5)
    host = args.pg.split("@")[-1].split(":")[0].split("/")[0]
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--pg must point at a server on loopback (127.0.0.1)")
    if args.rounds < 1 or args.duration < 1 or args.connections < args.threads:
        parser.error("need --rounds >= 1, --duration >= 1 and --connections >= --threads")
    if args.programmes < 2 * args.connections:
        parser.error("--programmes must be at least twice --connections (idle programmes)")
    if args.stream_transitions > args.programmes or args.streams < 1 or args.copy_runs < 1:
        parser.error("need --stream-transitions <= --programmes, --streams >= 1, --copy-runs >= 1")
    return args


PHASES = ("reads", "transitions", "exports", "fanout")


def _phase_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PHASES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown phase(s) {unknown}; choose from {PHASES}")
    return names


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def settings_line(args: argparse.Namespace) -> str:
    mode = "quick run" if args.quick else "run"
    return (
        f"{mode}: {args.rounds} round(s) × {args.duration:g} s per measurement, "
        f"wrk -t{args.threads} -c{args.connections}, {args.events:,} events, "
        f"{args.streams:,} streams" + (f"; only {', '.join(args.only)}" if args.only else "")
    )


def run_benchmark(args: argparse.Namespace) -> Results:
    check_python_modules()
    wrk = find_wrk(install=not args.no_install)
    pgbench = find_pgbench()
    # 2,000 streams and their client need as many sockets; the servers and the client inherit.
    soft, _hard = raise_file_limit()
    if soft < 2 * args.streams + 500:
        raise SetupError(
            f"open files are limited to {soft} (ulimit -Hn); {args.streams:,} streams need "
            f"about {2 * args.streams + 500}: raise the hard limit or give fewer --streams"
        )
    py_spy = find_py_spy(install=not args.no_install) if args.profile else None
    anchor_dir = args.anchor_dir.resolve()
    if not (anchor_dir / "anchor_app.py").is_file():
        raise SetupError(f"no anchor_app.py in {anchor_dir} (give --anchor-dir)")
    pg = Postgres(args.pg.rstrip("/"))
    try:
        postgres_version = pg.version()
    except Exception as exc:  # asyncpg, DNS, refused: all mean the same here
        raise SetupError(f"cannot reach PostgreSQL at {args.pg}: {exc}") from exc
    results = Results(
        machine=describe_machine(wrk), postgres=postgres_version, settings=settings_line(args)
    )
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:5.0f}s] {message}", flush=True)

    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="roadmap-bench-"))
        outcome = {"ok": False}

        def remove_workdir() -> None:
            if outcome["ok"] and not args.keep_workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                print(f"bench: logs and scripts kept in {workdir}", file=sys.stderr)

        cleanup.callback(remove_workdir)
        suffix = os.getpid()
        service_db, anchor_db = f"roadmap_bench_{suffix}", f"anchor_bench_{suffix}"
        for database in (service_db, anchor_db):
            pg.create_database(database)
            cleanup.callback(_drop_quietly, pg, database)
        say(f"databases {service_db} and {anchor_db} created; starting both servers")
        service = start_service(pg.dsn(service_db), free_port(), workdir)
        cleanup.callback(service.stop)
        anchor = start_anchor(pg.dsn(anchor_db), free_port(), anchor_dir, workdir)
        cleanup.callback(anchor.stop)
        service.wait_ready("/readyz")
        anchor.wait_ready("/hello")
        results.memory.startup_peak_mb = memory_of(service.pid).peak_mb
        say(f"service pid {service.pid} at {service.url}, anchor pid {anchor.pid} at {anchor.url}")

        run = phases.Run(
            args=args,
            pg=pg,
            service_db=service_db,
            anchor_db=anchor_db,
            service=service,
            anchor=anchor,
            wrk=wrk,
            pgbench=pgbench,
            py_spy=py_spy,
            workdir=workdir,
            results=results,
            say=say,
        )
        phases.run_all(run)
        for server in (service, anchor):
            if not server.alive():
                raise RuntimeError(f"{server.name} died during the run:\n{server.log_tail()}")
        outcome["ok"] = True
        results.notes.append(f"load average at the end of the run: {load_average()}")
        say("done; stopping the servers and dropping the databases")
    return results


def _drop_quietly(pg: Postgres, database: str) -> None:
    try:
        pg.drop_database(database)
    except Exception as exc:  # cleanup goes on; say what is left behind
        print(f"bench: could not drop database {database}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        results = run_benchmark(args)
    except SetupError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped, databases dropped", file=sys.stderr)
        return 130
    entry = results.markdown()
    out("\n" + entry)
    if args.write_results:
        prepend_results(args.results, entry)
        out(f"bench: results prepended to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
