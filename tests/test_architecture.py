"""The import contracts in pyproject.toml hold, and they would catch the breaches they exist
for: a pure rule importing a framework, a lower domain importing a higher one's code."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parent.parent


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
        ],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(
        REPO / "service", tmp_path / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(module: Path, line: str) -> None:
    """`line` right after the module's docstring."""
    text = module.read_text()
    end = text.index('"""', 3) + 3
    module.write_text(f"{text[:end]}\n{line}  # noqa: F401\n{text[end:]}")


@pytest.mark.live  # lint-imports runs as a process of its own
def test_the_contracts_hold(tmp_path: Path) -> None:
    done = lint_imports(copy_of_the_package(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.live
@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("rules/workflow.py", "import sqlalchemy", "Pure rules import no framework"),
        ("audit/feed.py", "import service.programs.service", "Layers:"),
        ("caching.py", "import service.programs.service", "Infrastructure imports no domain"),
        ("stats/router.py", "import service.programs.router", "Routers import no other router"),
    ],
)
def test_a_breach_is_caught(tmp_path: Path, module: str, line: str, broken: str) -> None:
    tree = copy_of_the_package(tmp_path)
    add_import(tree / "service" / module, line)
    done = lint_imports(tree)
    assert done.returncode != 0
    verdict = next(line for line in done.stdout.splitlines() if line.startswith(broken))
    assert "BROKEN" in verdict, done.stdout


def test_no_package_imports_itself_through_another() -> None:
    """Package-level: no cycle between the packages and modules right under service/."""
    graph = grimp.build_graph("service")
    top = {".".join(module.split(".")[:2]) for module in graph.modules} - {"service"}
    cycles = [
        (first, second)
        for first in sorted(top)
        for second in sorted(top)
        if first < second
        and graph.chain_exists(importer=first, imported=second, as_packages=True)
        and graph.chain_exists(importer=second, imported=first, as_packages=True)
    ]
    assert cycles == []
