"""Starting, watching and stopping the service and the anchor, one worker process each."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from benchlib.tools import REPO_ROOT, SetupError, run

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec: if the harness dies without cleaning up, the server follows."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The harness's environment without any service setting, plus `extra`."""
    dropped = {"DATABASE_URL", "PORT", "WEB_CONCURRENCY", "ANCHOR_DSN"}
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith("ROADMAP_")
    }
    env.update(extra)
    return env


@dataclass
class Server:
    name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    _log: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), SIGKILL if it takes over 15 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def wait_ready(self, path: str, *, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise SetupError(
                    f"{self.name} exited with status {self.process.returncode} while starting; "
                    f"its log ({self.log_path}) ends:\n{self.log_tail()}"
                )
            try:
                answer = httpx.get(self.url + path, timeout=2.0)
                if answer.status_code == 200:
                    return
                last = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.25)
        raise SetupError(
            f"{self.name} was not ready at {self.url}{path} after {timeout:.0f} s ({last}); "
            f"its log ends:\n{self.log_tail()}"
        )


def _start(name: str, command: list[str], env: dict[str, str], port: int, workdir: Path) -> Server:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(  # noqa: S603 - fixed command built by the harness, no shell
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the harness, which then stops it in order
        preexec_fn=die_with_parent,  # the harness starts no threads
    )
    return Server(name=name, port=port, log_path=log_path, process=process, _log=log)


def start_service(dsn: str, port: int, workdir: Path) -> Server:
    """`roadmap serve` (as `python -m service serve`): migrates and seeds, then one worker."""
    command = [sys.executable, "-m", "service", "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return _start("service", command, clean_env(DATABASE_URL=dsn), port, workdir)


def start_anchor(dsn: str, port: int, anchor_dir: Path, workdir: Path) -> Server:
    command = [sys.executable, "-m", "uvicorn", "anchor_app:app", "--app-dir", str(anchor_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return _start("anchor", command, clean_env(ANCHOR_DSN=dsn), port, workdir)


def create_api_key(dsn: str, name: str) -> str:
    """`roadmap keys create --name NAME --role editor`; the secret is its last line of output."""
    command = [sys.executable, "-m", "service", "keys", "create", "--name", name]
    command += ["--role", "editor"]
    result = run(command, timeout=60, env=clean_env(DATABASE_URL=dsn), check=False, cwd=REPO_ROOT)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise SetupError(f"roadmap keys create failed: {result.stderr.strip()}")
    return lines[-1].strip()


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    peak_mb: float


def memory_of(pid: int) -> Memory:
    """VmRSS and VmHWM (the peak resident set since start or the last reset) of a process."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return Memory(rss_mb=values["VmRSS"], peak_mb=values["VmHWM"])


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, all its threads: nanoseconds from the scheduler
    (/proc/PID/task/*/schedstat), or clock ticks (/proc/PID/stat) where that is missing."""
    try:
        return (
            sum(
                int(stat.read_text().split()[0])
                for stat in Path(f"/proc/{pid}/task").glob("*/schedstat")
            )
            / 1e9
        )
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs; needs privileges)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True
