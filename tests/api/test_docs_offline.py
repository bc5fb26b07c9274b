"""/docs and /redoc render on a machine that reaches no other host: the pages load Swagger UI
and ReDoc from the service itself, checked in a real headless Chromium against a real server.

Chromium's own --dump-dom is enough (no WebDriver): with a virtual time budget it prints the
DOM once the page's scripts, and the fetch of /openapi.json they start, have settled."""

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import LiveServer, start_server

pytestmark = pytest.mark.live  # a real server and a headless Chromium

CHROMIUM = shutil.which("chromium")  # Debian's package; .ci/run installs it


@pytest.fixture(scope="module")
def server(live_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(live_database, tmp_path_factory.mktemp("docs") / "server.log", workers=1)
    yield live
    live.stop()


def rendered_dom(url: str, profile: Path) -> str:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    dumped = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            # No other host: names resolve to nothing, and any address but the loopback
            # (which Chromium never proxies) goes to a proxy that is not there.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    return dumped.stdout


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_page_names_no_other_host(server: LiveServer, page: str) -> None:
    html = httpx.get(server.base_url + page).text
    assert not re.findall(r"(?:https?:)?//[\w.-]+", html), html
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert httpx.get(server.base_url + asset).status_code == 200, asset


@pytest.mark.parametrize(
    ("page", "operation_anchor"),
    [("/docs", "operations-programs-list_programs"), ("/redoc", "operation/list_programs")],
)
def test_the_docs_page_renders_the_operations_offline(
    server: LiveServer, tmp_path: Path, page: str, operation_anchor: str
) -> None:
    dom = rendered_dom(server.base_url + page, tmp_path / "profile")
    assert "List Programs" in dom, dom[-2000:]
    assert operation_anchor in dom
    assert "Transition Program" in dom
