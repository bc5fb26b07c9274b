"""py-spy while a load runs, and a summary of where the worker's CPU time went."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchlib.load import started_in_background

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# First match wins: the library a frame's file belongs to.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("sqlalchemy/", "SQLAlchemy"),
    ("pydantic_core/", "pydantic"),
    ("pydantic/", "pydantic"),
    ("asyncpg/", "asyncpg"),
    ("fastapi/", "FastAPI"),
    ("starlette/", "Starlette"),
    ("uvicorn/", "uvicorn"),
    ("httptools/", "uvicorn"),
    ("uvloop/", "uvloop"),
    ("service/", "service code"),
    ("anchor_app", "anchor code"),
    ("asyncio/", "asyncio"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("alembic/", "alembic"),
)


def category_of(file: str) -> str:
    for needle, name in CATEGORIES:
        if needle in file:
            return name
    return "other (stdlib, C)"


def start_recording(py_spy: str, pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Sample `pid` at 200 Hz for `seconds`, as collapsed stacks (py-spy's raw format)."""
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(round(seconds))]
    command += ["--rate", "200", "--format", "raw", "--output", str(output)]
    return started_in_background(command)


def finish_recording(process: subprocess.Popen[bytes], timeout: float) -> str:
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate(timeout=10)
    return stderr.decode(errors="replace").strip()


Stack = list[str]  # a sample's frames, outermost first, as "function (file)"


def _having(*needles: str) -> Callable[[Stack], bool]:
    return lambda stack: any(needle in frame for frame in stack for needle in needles)


# Frames that mean a statement is being executed rather than built.
_EXECUTING = _having(
    "sqlalchemy/engine/",
    "sqlalchemy/orm/context.py",
    "Session.execute",
    "Session.scalar",
    "Session.flush",
    "Session.commit",
    "Session.get",
)


def _building_sql(stack: Stack) -> bool:
    return _having("sqlalchemy/sql/")(stack) and not _EXECUTING(stack)


# What a request spends its time on: a sample counts for each operation whose test its stack
# passes (they overlap: executing SQL includes the cache keys and asyncpg below it).
OPERATIONS: tuple[tuple[str, Callable[[Stack], bool]], ...] = (
    (
        "outside the application (uvicorn's HTTP, the event loop, asyncpg callbacks)",
        lambda stack: not _having("fastapi/applications.py")(stack),
    ),
    ("building SQL statements (select(), join(), where() …)", _building_sql),
    ("executing SQL through SQLAlchemy (all below it)", _EXECUTING),
    ("SQL cache keys and compilation", _having("sql/cache_key.py", "sql/compiler.py")),
    ("ORM: rows into objects", _having("sqlalchemy/orm/loading.py")),
    ("ORM: unit of work", _having("orm/unitofwork.py", "orm/persistence.py")),
    ("SQLAlchemy's greenlet bridge (greenlet_spawn and below)", _having("greenlet_spawn")),
    ("asyncpg (all)", _having("asyncpg/")),
    ("BEGIN/COMMIT/ROLLBACK (asyncpg transaction.py)", _having("asyncpg/transaction.py")),
    ("opening and closing sessions", _having("AsyncSession.close", "AsyncSession.__init__")),
    ("FastAPI dependencies (with the queries they run)", _having("solve_dependencies")),
    ("pydantic (building and serialising models)", _having("pydantic/", "pydantic_core/")),
    ("logging", _having("logging/")),
    ("event hash and timestamps (service.audit.chain)", _having("service/audit/chain.py")),
)

# Frames every sample has (the process, the server, the middleware stack): not informative.
_PLUMBING = (
    "asyncio/",
    "uvicorn/",
    "starlette/",
    "fastapi/applications.py",
    "fastapi/routing.py",
    "service/cli.py",
    "service/__main__.py",
    "roadmap)",
    "fastapi/middleware",
    "fastapi/telemetry",
    "fastapi/_body_limit.py",
    "service/limits.py",
    "service/logs.py",
    "service/metrics.py",
)


@dataclass(frozen=True)
class Hotspot:
    name: str
    percent: float


@dataclass(frozen=True)
class ProfileSummary:
    label: str
    samples: int
    by_library: list[Hotspot]  # self time: the library of the innermost Python frame
    operations: list[Hotspot]  # share of samples with the operation anywhere on the stack
    service_functions: list[Hotspot]  # the service's own functions, inclusive
    self_time: list[Hotspot]  # innermost Python frames

    def markdown(self) -> list[str]:
        def fmt(spots: list[Hotspot]) -> str:
            return "; ".join(f"{spot.name} {spot.percent:.0f}%" for spot in spots)

        return [
            f"**{self.label}** ({self.samples} samples of the worker, 200 Hz, while it was busy)",
            "",
            f"- self time by library: {fmt(self.by_library)}",
            f"- operations (inclusive): {fmt(self.operations)}",
            f"- the service's own functions (inclusive): {fmt(self.service_functions)}",
            f"- innermost frames (self): {fmt(self.self_time)}",
            "",
        ]


def _parse(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["function"], match["file"]


def summarise(label: str, raw: Path, *, top: int = 10) -> ProfileSummary:
    stacks: Counter[tuple[tuple[str, str], ...]] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, weight = line.rpartition(" ")
        if not stack or not weight.isdigit():
            continue
        frames = tuple(_parse(frame) for frame in stack.split(";"))
        stacks[frames] += int(weight)
    total = sum(stacks.values())
    if total == 0:
        return ProfileSummary(label, 0, [], [], [], [])
    library: Counter[str] = Counter()
    operations: Counter[str] = Counter()
    service: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    for frames, count in stacks.items():
        function, file = frames[-1]
        library[category_of(file)] += count
        innermost[f"{function} ({file})"] += count
        texts = [f"{function} ({file})" for function, file in frames]
        for name, test in OPERATIONS:
            if test(texts):
                operations[name] += count
        for name in set(texts):
            if "service/" in name and not any(skip in name for skip in _PLUMBING):
                service[name] += count

    def spots(counter: Counter[str], limit: int = top) -> list[Hotspot]:
        return [Hotspot(name, 100 * count / total) for name, count in counter.most_common(limit)]

    return ProfileSummary(
        label=label,
        samples=total,
        by_library=spots(library),
        operations=spots(operations, len(OPERATIONS)),
        service_functions=spots(service),
        self_time=spots(innermost),
    )
