"""The `roadmap` command, run as a user runs it: a process of its own. Tests take it as the
`cli` fixture (tests/conftest.py), which marks them `live`."""

import os
import subprocess
import sys
from typing import Protocol


class Cli(Protocol):
    def __call__(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]: ...


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
