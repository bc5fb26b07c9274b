"""py-spy while a load runs, and a summary of where the worker's CPU time went."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
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


@dataclass(frozen=True)
class Hotspot:
    name: str
    percent: float


@dataclass(frozen=True)
class ProfileSummary:
    label: str
    samples: int
    by_library: list[Hotspot]  # self time: the library of the innermost Python frame
    inclusive: list[Hotspot]  # functions on the stack, excluding the ever-present ones
    self_time: list[Hotspot]  # innermost Python frames

    def markdown(self) -> list[str]:
        def fmt(spots: list[Hotspot]) -> str:
            return "; ".join(f"{spot.name} {spot.percent:.0f}%" for spot in spots)

        return [
            f"**{self.label}** ({self.samples} samples of the worker while busy)",
            "",
            f"- self time by library: {fmt(self.by_library)}",
            f"- on the stack (inclusive): {fmt(self.inclusive)}",
            f"- innermost frames (self): {fmt(self.self_time)}",
            "",
        ]


def _parse(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["function"], match["file"]


def summarise(label: str, raw: Path, *, top: int = 12) -> ProfileSummary:
    stacks: Counter[tuple[tuple[str, str], ...]] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(_parse(frame) for frame in stack.split(";"))
        stacks[frames] += int(count)
    total = sum(stacks.values())
    if total == 0:
        return ProfileSummary(label, 0, [], [], [])
    library: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    for frames, count in stacks.items():
        function, file = frames[-1]
        library[category_of(file)] += count
        innermost[f"{function} ({file})"] += count
        for name in {f"{function} ({file})" for function, file in frames}:
            inclusive[name] += count

    def spots(counter: Counter[str], *, skip_everpresent: bool = False) -> list[Hotspot]:
        result = []
        for name, count in counter.most_common():
            share = 100 * count / total
            if skip_everpresent and share > 90:  # the event loop, main(), run()
                continue
            result.append(Hotspot(name, share))
            if len(result) == top:
                break
        return result

    return ProfileSummary(
        label=label,
        samples=total,
        by_library=spots(library),
        inclusive=spots(inclusive, skip_everpresent=True),
        self_time=spots(innermost),
    )
