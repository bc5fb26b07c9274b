"""Webhooks delivered by real servers (`serve --workers 4`, every worker a dispatcher) to a real
receiver on 127.0.0.1, on whichever database the suite runs on: what the issue's Done-when
asks for.

- Events of concurrent writers arrive each once after de-duplicating by webhook-id, in feed
  order, each signature verified by the `standardwebhooks` library; a filter by programme gets
  that programme's events only, all of them.
- A receiver answering 503 for a stretch while the service is SIGKILLed (mid-delivery, its
  lease held) and restarted: every event still arrives afterwards, and the failed attempts are
  in the delivery log.
- Without ROADMAP_WEBHOOK_ALLOW_PRIVATE a subscription to http://127.0.0.1 is a 422 problem.
"""

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.rules.workflow import Status
from tests.support.builders import API, bearer, feed_after, path_to
from tests.support.receiver import Received, Receiver
from tests.support.servers import LiveServer, start_server

pytestmark = pytest.mark.live  # real `serve --workers 4` processes and a receiver

PROBLEM = "application/problem+json"
DISPATCHING = {
    "ROADMAP_WEBHOOK_DISPATCH": "true",
    "ROADMAP_WEBHOOK_ALLOW_PRIVATE": "true",
    "ROADMAP_WEBHOOK_RETRY_MAX_SECONDS": "2",
}
STEPS = [status.value for status in path_to(Status.COMPLETED)]  # 5 transitions
WRITERS = 8
PROGRAMMES_PER_WRITER = 5
OUTAGE_SECONDS = 20.0  # the issue says a minute; a third of it keeps CI short
LEASE_SECONDS = 30.0  # service.webhooks.dispatch.LEASE


class Service:
    """The server under test, which a test may SIGKILL and start again on the same database."""

    def __init__(self, database_url: str, logs: Path) -> None:
        self.database_url = database_url
        self.log = logs / "server.log"
        self.server: LiveServer = start_server(
            database_url, self.log, workers=4, extra_env=DISPATCHING
        )

    def kill_and_restart(self) -> None:
        self.server.stop(signal.SIGKILL)
        self.server = start_server(self.database_url, self.log, workers=4, extra_env=DISPATCHING)


@pytest.fixture(scope="module")
def service(live_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(live_database, tmp_path_factory.mktemp("webhook-logs"))
    yield running
    assert running.server.stop() == 0, "the server did not stop cleanly on SIGTERM"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


class Api:
    """Clients of the current server: an editor's and an admin's."""

    def __init__(self, base_url: str, tokens: Mapping[str, str]) -> None:
        self.editor = httpx.AsyncClient(
            base_url=base_url, timeout=60, headers=bearer(tokens["editor"])
        )
        self.admin = httpx.AsyncClient(
            base_url=base_url, timeout=60, headers=bearer(tokens["admin"])
        )

    async def close(self) -> None:
        await self.editor.aclose()
        await self.admin.aclose()


Connect = Callable[[], Api]


@pytest.fixture
async def connect(service: Service, api_tokens: Mapping[str, str]) -> AsyncIterator[Connect]:
    """Opens clients to whichever server runs now (a restart changes its port)."""
    opened: list[Api] = []

    def make() -> Api:
        api = Api(service.server.base_url, api_tokens)
        opened.append(api)
        return api

    yield make
    for api in opened:
        await api.close()


async def write(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> httpx.Response:
    """A POST, again after a 503 (a busy database answers so, with Retry-After)."""
    for _ in range(10):
        response = await http.post(url, json=body)
        if response.status_code != 503:
            return response
        await asyncio.sleep(min(float(response.headers.get("retry-after", 1)), 2))
    return response


async def create_programmes(http: httpx.AsyncClient, codes: list[str]) -> None:
    async def one(code: str) -> None:
        response = await write(http, f"{API}/programs", {"code": code, "title": code})
        assert response.status_code == 201, response.text

    for start in range(0, len(codes), WRITERS):
        await asyncio.gather(*(one(code) for code in codes[start : start + WRITERS]))


async def walk(http: httpx.AsyncClient, codes: list[str], steps: list[str]) -> int:
    """One writer taking its programmes through `steps`, a step of each in turn; how many
    transitions it made (201s)."""
    made = 0
    for status in steps:
        for code in codes:
            response = await write(
                http, f"{API}/programs/{code}/transitions", {"to_status": status}
            )
            assert response.status_code in (201, 409, 412), response.text
            made += response.status_code == 201
    return made


async def concurrently(http: httpx.AsyncClient, codes: list[str], steps: list[str]) -> int:
    """WRITERS writers at once, each with its share of the programmes; transitions made."""
    shares = [codes[n::WRITERS] for n in range(WRITERS)]
    return sum(await asyncio.gather(*(walk(http, share, steps) for share in shares if share)))


async def subscribe(admin: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    response = await admin.post(f"{API}/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def delivery_log(admin: httpx.AsyncClient, webhook_id: int) -> list[dict[str, Any]]:
    """Every entry of the subscription's delivery log, oldest first."""
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        response = await admin.get(f"{API}/webhooks/{webhook_id}/deliveries", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        entries += page["items"]
        if page["next_cursor"] is None:
            return entries[::-1]
        params["cursor"] = page["next_cursor"]


def message_ids(events: list[dict[str, Any]]) -> list[str]:
    return [f"evt_{event['id']}" for event in events]


def first_arrivals(received: list[Received]) -> list[Received]:
    """The requests the receiver accepted (2xx), each webhook-id once: the first time."""
    seen: set[str] = set()
    firsts: list[Received] = []
    for request in received:
        if 200 <= request.status < 300 and request.webhook_id not in seen:
            seen.add(request.webhook_id)
            firsts.append(request)
    return firsts


def has_all(path: str, wanted: list[str]) -> Callable[[list[Received]], bool]:
    """A receiver condition: every webhook-id of `wanted` accepted at `path`."""

    def holds(received: list[Received]) -> bool:
        accepted = {r.webhook_id for r in received if r.path == path and r.status == 200}
        return accepted.issuperset(wanted)

    return holds


def assert_delivered_in_feed_order(
    received: list[Received], events: list[dict[str, Any]], secret: str
) -> None:
    """Every event, each once after de-duplicating by webhook-id, in feed order, signed, and
    as the feed shows it."""
    firsts = first_arrivals(received)
    assert [r.webhook_id for r in firsts] == message_ids(events)
    for request, event in zip(firsts, events, strict=True):
        assert request.verify(secret) == event
    for request in received:  # duplicates are the same message, signed as well
        request.verify(secret)


async def delete(admin: httpx.AsyncClient, webhook_id: int) -> None:
    response = await admin.delete(f"{API}/webhooks/{webhook_id}")
    assert response.status_code == 204, response.text


async def test_without_the_setting_a_private_target_is_refused_with_a_problem(
    live_database: str, api_tokens: Mapping[str, str], tmp_path: Path
) -> None:
    # Runs first, before the module's dispatching server: a server of the defaults.
    server = start_server(
        live_database,
        tmp_path / "server.log",
        workers=1,
        extra_env={"ROADMAP_WEBHOOK_ALLOW_PRIVATE": "false"},
    )
    try:
        async with httpx.AsyncClient(
            base_url=server.base_url, timeout=30, headers=bearer(api_tokens["admin"])
        ) as admin:
            for url, says in [
                ("http://127.0.0.1:8080/hook", "a webhook URL must be https"),
                ("https://127.0.0.1/hook", "127.0.0.1 is not a public address"),
                ("https://[::ffff:10.0.0.1]/hook", "10.0.0.1 is not a public address"),
            ]:
                response = await admin.post(f"{API}/webhooks", json={"url": url})
                assert response.status_code == 422, (url, response.text)
                assert response.headers["content-type"] == PROBLEM
                problem = response.json()
                assert problem["status"] == 422
                assert problem["type"].endswith("invalid-input"), problem
                assert says in problem["detail"], problem
                assert [e["loc"] for e in problem["errors"]] == [["body", "url"]]
            listed = await admin.get(f"{API}/webhooks")
            assert listed.status_code == 200, listed.text
            assert not [h for h in listed.json()["items"] if "127.0.0.1" in h["url"]]
    finally:
        assert server.stop() == 0


async def test_events_of_concurrent_writers_arrive_once_in_feed_order_and_signed(
    connect: Connect, receiver: Receiver
) -> None:
    api: Api = connect()
    codes = [f"wh-live-{n:02d}" for n in range(WRITERS * PROGRAMMES_PER_WRITER)]
    await create_programmes(api.editor, codes)
    everything = await subscribe(api.admin, receiver.url("/all"))
    one = await subscribe(api.admin, receiver.url("/one"), programs=[codes[7]])
    assert one["cursor"] == everything["cursor"]  # nothing was written between them

    made = await concurrently(api.editor, codes, STEPS)
    assert made == len(codes) * len(STEPS) == 200
    events = await feed_after(api.editor, everything["cursor"])
    assert len(events) == made
    assert {event["program"] for event in events} == set(codes)
    assert all(event["kind"] == "status_changed" for event in events)
    theirs = [event for event in events if event["program"] == codes[7]]
    assert [event["to_status"] for event in theirs] == STEPS

    await asyncio.to_thread(receiver.wait_for, has_all("/all", message_ids(events)), 120)
    await asyncio.to_thread(receiver.wait_for, has_all("/one", message_ids(theirs)), 30)
    assert_delivered_in_feed_order(receiver.to("/all"), events, everything["secret"])
    assert_delivered_in_feed_order(receiver.to("/one"), theirs, one["secret"])
    # Nothing failed and nothing stalled: four dispatchers, and still no event sent twice.
    assert [r.webhook_id for r in receiver.to("/all")] == message_ids(events)
    assert [r.webhook_id for r in receiver.to("/one")] == message_ids(theirs)

    for hook in (everything, one):
        state = (await api.admin.get(f"{API}/webhooks/{hook['id']}")).json()
        assert (state["state"], state["failures"], state["last_error"]) == ("active", 0, None)
        await delete(api.admin, hook["id"])


async def test_every_event_arrives_after_an_outage_and_a_sigkill_of_the_service(
    service: Service, connect: Connect, receiver: Receiver
) -> None:
    api: Api = connect()
    receiver.answer(503)
    outage_began = time.monotonic()
    hook = await subscribe(api.admin, receiver.url("/hook"))
    codes = [f"wh-crash-{n:02d}" for n in range(WRITERS)]
    await create_programmes(api.editor, codes)
    made = await concurrently(api.editor, codes, STEPS[:2])
    await asyncio.to_thread(receiver.wait_for, lambda got: len(got) >= 2)

    # SIGKILL while a delivery is in flight: the receiver sits on a request, the lease is held.
    receiver.slow(5)
    seen = len(receiver.received)
    await asyncio.to_thread(receiver.wait_for, lambda got: len(got) > seen)
    killed_at = time.monotonic()
    service.kill_and_restart()
    receiver.slow(0)
    restarted_at = time.monotonic()
    api = connect()
    made += await concurrently(api.editor, codes, STEPS[2:])
    assert made == len(codes) * len(STEPS)

    # Still failing: once the dead lease has run out, the new server retries, and fails too.
    def retried_after_restart(got: list[Received]) -> bool:
        return sum(r.arrived > restarted_at for r in got) >= 2

    await asyncio.to_thread(receiver.wait_for, retried_after_restart, LEASE_SECONDS + 30)
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_began)))
    receiver.answer(200)

    events = await feed_after(api.editor, hook["cursor"])
    assert len(events) == len(codes) * (1 + len(STEPS))  # created + the transitions
    await asyncio.to_thread(receiver.wait_for, has_all("/hook", message_ids(events)), 90)
    received = receiver.to("/hook")
    assert_delivered_in_feed_order(received, events, hook["secret"])
    # While it failed, only the first event was tried, again and again, by both servers.
    failed = [r for r in received if r.status == 503]
    first = f"evt_{events[0]['id']}"
    assert {r.webhook_id for r in failed} == {first}
    assert failed[-1].order < min(r.order for r in received if r.status == 200)
    assert any(r.arrived < killed_at for r in failed)
    assert any(r.arrived > restarted_at for r in failed)
    # No gap anywhere: every accepted request is either the next event or one already sent.
    accepted = [r.webhook_id for r in received if r.status == 200]
    position = {message: n for n, message in enumerate(message_ids(events))}
    reached = -1
    for message in accepted:
        assert position[message] <= reached + 1, f"{message} arrived before the one before it"
        reached = max(reached, position[message])

    # The delivery log shows the failed attempts (not the one cut off by the SIGKILL), counted
    # on across the restart, then every event delivered.
    log = await delivery_log(api.admin, hook["id"])
    failures = [entry for entry in log if not entry["delivered"]]
    assert len(failures) >= 3
    assert all(entry["status_code"] == 503 for entry in failures)
    assert all(entry["error"] == "HTTP 503" for entry in failures)
    assert {entry["message_id"] for entry in failures} == {first}
    assert [entry["attempt"] for entry in failures] == list(range(1, len(failures) + 1))
    assert len(failures) <= len(failed) - 1  # the request in flight at the SIGKILL: no entry
    delivered = [entry["message_id"] for entry in log if entry["delivered"]]
    assert set(delivered) == set(message_ids(events))
    assert all(entry["status_code"] == 200 for entry in log if entry["delivered"])
    state = (await api.admin.get(f"{API}/webhooks/{hook['id']}")).json()
    assert (state["state"], state["failures"], state["last_error"]) == ("active", 0, None)
    await delete(api.admin, hook["id"])
