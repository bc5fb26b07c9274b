"""Finding the tools the harness needs, and describing the machine it runs on."""

from __future__ import annotations

import glob
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO_ROOT / "bench"
LUA_DIR = BENCH_DIR / "lua"
# shared/ lies beside the repository, wherever it was cloned.
DEFAULT_ANCHOR_DIR = REPO_ROOT.parent / "shared" / "anchors"

# What the service and the anchor need in this interpreter (the project's own dependencies).
REQUIRED_MODULES = ("fastapi", "uvicorn", "sqlalchemy", "alembic", "asyncpg", "httpx")


class SetupError(Exception):
    """A prerequisite is missing or broken; the message says what to do about it."""


def run(
    command: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    check: bool = True,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded by `timeout`) and capture its output."""
    return subprocess.run(  # noqa: S603 - fixed commands built by the harness, no shell
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=check,
        cwd=cwd,
    )


def check_python_modules() -> None:
    """The service's and the anchor's imports; installs orjson (the anchor's) if it is absent."""
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise SetupError(
            f"{sys.executable} lacks {', '.join(missing)}: install the project into this "
            f"interpreter first (pip install -e '.[test]' in {REPO_ROOT})"
        )
    if importlib.util.find_spec("orjson") is None:
        print("bench: the anchor needs orjson; installing it into this interpreter")
        result = run(
            [sys.executable, "-m", "pip", "install", "-q", "orjson"], timeout=300, check=False
        )
        if result.returncode != 0:
            raise SetupError(f"could not install orjson: {sys.executable} -m pip install orjson")


def find_wrk(*, install: bool) -> str:
    """wrk's path; as root with apt-get, installs Debian's package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt_get = shutil.which("apt-get")
    if not install or apt_get is None or os.geteuid() != 0:
        raise SetupError("wrk is not installed: apt-get update && apt-get install -y wrk")
    print("bench: wrk is missing; installing Debian's package (apt-get update, install wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run([apt_get, "update", "-qq"], timeout=600, env=env, check=False)
    result = run([apt_get, "install", "-y", "-qq", "wrk"], timeout=600, env=env, check=False)
    found = shutil.which("wrk")
    if result.returncode != 0 or not found:
        raise SetupError(f"apt-get install wrk failed: {result.stderr.strip()[-500:]}")
    return found


def find_pgbench() -> str | None:
    return find_postgres_tool("pgbench")


def find_postgres_tool(name: str) -> str | None:
    """A PostgreSQL client program (pgbench, psql) on the PATH or in Debian's versioned bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def find_py_spy(*, install: bool) -> str:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found:
        return found
    if not install:
        raise SetupError(f"py-spy is not installed: {sys.executable} -m pip install py-spy")
    print("bench: --profile needs py-spy; installing it into this interpreter")
    result = run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], timeout=600, check=False)
    if result.returncode != 0 or not beside.exists():
        raise SetupError(f"could not install py-spy: {sys.executable} -m pip install py-spy")
    return str(beside)


def tool_version(command: list[str]) -> str:
    try:
        result = run(command, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


@dataclass(frozen=True)
class Machine:
    when: str
    cpus: int
    cpu_model: str
    memory: str
    python: str
    wrk: str
    commit: str
    load_average: str

    def describe(self, postgres_version: str) -> list[str]:
        return [
            f"- machine: {self.cpus} CPUs (`nproc`), {self.cpu_model}; memory (`free -h`): "
            f"{self.memory}",
            f"- software: {postgres_version}; Python {self.python}; {self.wrk}",
            f"- code: {self.commit}; load average before the run: {self.load_average}",
        ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    free = shutil.which("free")
    if free is None:
        return "unknown"
    result = run([free, "-h"], timeout=10, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("Mem:"):
            fields = line.split()
            return f"{fields[1]} total, {fields[-1]} available"
    return "unknown"


def _commit() -> str:
    git = shutil.which("git")
    if git is None:
        return "unknown commit"
    # Read-only plumbing only: rev-parse and diff-index never write the index.
    head = run([git, "rev-parse", "--short", "HEAD"], timeout=10, check=False, cwd=REPO_ROOT)
    if head.returncode != 0:
        return "unknown commit"
    dirty = run(
        [git, "diff-index", "--quiet", "HEAD", "--"], timeout=30, check=False, cwd=REPO_ROOT
    )
    suffix = " with uncommitted changes" if dirty.returncode == 1 else ""
    return f"commit {head.stdout.strip()}{suffix}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the machine was besides the run."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def describe_machine(wrk: str) -> Machine:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wrk_version = tool_version([wrk, "--version"]).split("Copyright")[0].strip()
    return Machine(
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=cpus or 0,
        cpu_model=_cpu_model(),
        memory=_memory(),
        python=platform.python_version(),
        wrk=wrk_version,
        commit=_commit(),
        load_average=load_average(),
    )
