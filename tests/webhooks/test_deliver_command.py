"""`roadmap deliver`: delivery as a process of its own, beside servers that do not dispatch;
and the metrics an operator watches it by."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from tests.support.builders import API, bearer
from tests.support.receiver import Receiver
from tests.support.servers import start_server

pytestmark = pytest.mark.live  # a real server and a real `roadmap deliver`

NOT_DISPATCHING = {"ROADMAP_WEBHOOK_DISPATCH": "false", "ROADMAP_WEBHOOK_ALLOW_PRIVATE": "true"}


def start_deliverer(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "service", "deliver"],
        env={**os.environ, "DATABASE_URL": database_url, **NOT_DISPATCHING},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def lag_reaches(admin: httpx.AsyncClient, webhook: int, events: int) -> None:
    """The lag metric shows `events` within a few seconds (the cursor moves just after the
    receiver answers)."""
    line = f'roadmap_webhook_lag_events{{webhook="{webhook}"}} {events:.1f}'
    deadline = time.monotonic() + 10
    while line not in (metrics := (await admin.get("/metrics")).text):
        assert time.monotonic() < deadline, metrics[-500:]
        await asyncio.sleep(0.1)


async def test_roadmap_deliver_delivers_for_servers_that_do_not(
    live_database: str, api_tokens: Mapping[str, str], tmp_path: Path
) -> None:
    server = start_server(
        live_database, tmp_path / "server.log", workers=2, extra_env=NOT_DISPATCHING
    )
    deliverer: subprocess.Popen[bytes] | None = None
    try:
        with Receiver() as receiver:
            async with httpx.AsyncClient(
                base_url=server.base_url, timeout=30, headers=bearer(api_tokens["admin"])
            ) as admin:
                hook = await admin.post(f"{API}/webhooks", json={"url": receiver.url()})
                assert hook.status_code == 201, hook.text
                created = await admin.post(
                    f"{API}/programs",
                    json={
                        "code": "delivered_apart",
                        "title": "Apart",
                        "roadmap": "union-state-2021-2023",
                    },
                )
                assert created.status_code == 201, created.text
                webhook = hook.json()["id"]
                await lag_reaches(admin, webhook, 1)
                # The servers do not dispatch: nothing arrives until `roadmap deliver` runs.
                assert receiver.received == []

                deliverer = start_deliverer(live_database, tmp_path / "deliver.log")
                arrived = receiver.wait_for(lambda got: len(got) >= 1, timeout=30)
                assert arrived[0].webhook_id == f"evt_{created.json()['event']['id']}"
                assert arrived[0].verify(hook.json()["secret"])["program"] == "delivered_apart"

                await lag_reaches(admin, webhook, 0)
        deliverer.send_signal(signal.SIGTERM)
        assert deliverer.wait(timeout=30) == 0
        log = (tmp_path / "deliver.log").read_text()
        assert "delivering webhooks as" in log
        assert "Traceback" not in log
    finally:
        if deliverer is not None and deliverer.poll() is None:
            deliverer.kill()
        assert server.stop() == 0
