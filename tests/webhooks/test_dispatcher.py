"""The dispatcher, driven step by step in the test's process: `tick()` claims what is due and
starts deliveries, which the tests await, against a real HTTP receiver on 127.0.0.1.

What is checked is what a receiver and an operator see: the requests (order, headers, bodies,
signatures verified by the `standardwebhooks` library), the subscription's state, and its
delivery log; the database is touched only to stand in for time passing or another
dispatcher dying (a lease, a retry time)."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import WebhookVerificationError

from service.clock import utc_now
from service.config import Settings
from service.models.webhooks import Webhook
from service.rules.workflow import Status
from service.webhooks.dispatch import Dispatcher
from tests.support.builders import API, create_program, feed_after, path_to, transition
from tests.support.receiver import Received, Receiver

PROBLEM = "application/problem+json"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The app the tests subscribe through: http to 127.0.0.1 allowed, no dispatcher of its
    own (the tests run theirs); a retry a second after a failure at most."""
    return Settings(
        database_url=database_url,
        webhook_dispatch=False,
        webhook_allow_private=True,
        webhook_retry_max_seconds=1,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


DispatcherFactory = Callable[..., Dispatcher]


@pytest.fixture
async def dispatchers(app: FastAPI, settings: Settings) -> AsyncIterator[DispatcherFactory]:
    """Makes dispatchers on the app's database, with the app's settings changed by the keyword
    arguments; waits for their deliveries and closes them at the end."""
    made: list[Dispatcher] = []

    def make(**changes: Any) -> Dispatcher:
        dispatcher = Dispatcher(sessions(app), settings.model_copy(update=changes))
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        await dispatcher.stop()


def sessions(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    return maker


async def drain(dispatcher: Dispatcher) -> int:
    """One tick, and every delivery it started run to its end; how many it started."""
    started = await dispatcher.tick()
    await asyncio.gather(*list(dispatcher.delivering.values()))
    return started


async def subscribe(admin: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    response = await admin.post(f"{API}/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def webhook(admin: httpx.AsyncClient, webhook_id: int) -> dict[str, Any]:
    response = await admin.get(f"{API}/webhooks/{webhook_id}")
    assert response.status_code == 200, response.text
    read: dict[str, Any] = response.json()
    return read


async def deliveries(admin: httpx.AsyncClient, webhook_id: int) -> list[dict[str, Any]]:
    """The delivery log, oldest first."""
    response = await admin.get(f"{API}/webhooks/{webhook_id}/deliveries", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items[::-1]


async def programme(client: httpx.AsyncClient, code: str, steps: int = 2, **fields: Any) -> None:
    """A new programme walked `steps` steps: 1 + steps events."""
    await create_program(client, code, **fields)
    for status in path_to(Status.COMPLETED)[:steps]:
        response = await transition(client, code, status.value)
        assert response.status_code == 201, response.text


async def set_webhook(app: FastAPI, webhook_id: int, **values: Any) -> None:
    """What only time or another dispatcher would change: a lease, a retry time."""
    async with sessions(app)() as session:
        await session.execute(update(Webhook).where(Webhook.id == webhook_id).values(**values))
        await session.commit()


async def lease_of(app: FastAPI, webhook_id: int) -> tuple[str | None, datetime | None]:
    async with sessions(app)() as session:
        row = (
            await session.execute(
                select(Webhook.lease_owner, Webhook.lease_until).where(Webhook.id == webhook_id)
            )
        ).one()
        return row[0], row[1]


def ids(received: list[Received]) -> list[str]:
    return [request.webhook_id for request in received]


def message_ids(events: list[dict[str, Any]]) -> list[str]:
    return [f"evt_{event['id']}" for event in events]


async def test_events_are_posted_in_feed_order_signed_and_as_the_feed_shows_them(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hook = await subscribe(admin, receiver.url("/hook"))
    assert hook["secret"].startswith("whsec_")
    await programme(client, "wh-order-a", steps=3)
    await programme(client, "wh-order-b", steps=1)
    events = await feed_after(client, hook["cursor"])
    assert len(events) == 6

    dispatcher = dispatchers()
    before = utc_now()
    assert await drain(dispatcher) == 1
    got = receiver.received
    assert ids(got) == message_ids(events)
    for request, event in zip(got, events, strict=True):
        assert request.method == "POST"
        assert request.path == "/hook"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == "roadmap-webhooks/1"
        assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
        sent_at = int(request.headers["webhook-timestamp"])
        assert int(before.timestamp()) - 1 <= sent_at <= int(utc_now().timestamp()) + 1
        assert request.headers["webhook-signature"].startswith("v1,")
        assert request.verify(hook["secret"]) == event  # the feed's item, exactly
        with pytest.raises(WebhookVerificationError):
            request.verify("whsec_" + "A" * 43 + "=")  # another secret does not verify it

    after = await webhook(admin, hook["id"])
    ends_at = (
        await client.get(f"{API}/events", params={"after": hook["cursor"], "limit": 500})
    ).json()["next_cursor"]
    assert after["cursor"] == ends_at
    assert (after["state"], after["failures"], after["last_error"]) == ("active", 0, None)
    log = await deliveries(admin, hook["id"])
    assert [entry["message_id"] for entry in log] == message_ids(events)
    assert [entry["event_id"] for entry in log] == [event["id"] for event in events]
    assert all(e["delivered"] and e["status_code"] == 200 and e["attempt"] == 1 for e in log)
    assert all(e["error"] is None for e in log)
    assert await lease_of(app, hook["id"]) == (None, None)  # released once caught up

    # Nothing new: nothing is started, nothing sent again.
    assert await drain(dispatcher) == 0
    assert len(receiver.received) == 6


async def test_events_the_filters_leave_out_are_passed_over(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    await create_program(client, "wh-kept")
    await create_program(client, "wh-other-roadmap", roadmap="union-state-2024-2026")
    everything = await subscribe(admin, receiver.url("/all"))
    updates = await subscribe(admin, receiver.url("/updates"), kinds=["updated"])
    kept = await subscribe(admin, receiver.url("/kept"), programs=["wh-kept"])
    later = await subscribe(admin, receiver.url("/later"), roadmap="union-state-2024-2026")
    earlier = await subscribe(
        admin, receiver.url("/earlier"), roadmap="union-state-2021-2023", kinds=["status_changed"]
    )
    response = await client.patch(f"{API}/programs/wh-kept", json={"summary": "changed"})
    assert response.status_code == 200, response.text
    for code in ("wh-kept", "wh-other-roadmap"):
        assert (await transition(client, code, "coordinated")).status_code == 201
    response = await client.patch(f"{API}/programs/wh-other-roadmap", json={"summary": "too"})
    assert response.status_code == 200, response.text
    events = await feed_after(client, everything["cursor"])
    assert [(e["program"], e["kind"]) for e in events] == [
        ("wh-kept", "updated"),
        ("wh-kept", "status_changed"),
        ("wh-other-roadmap", "status_changed"),
        ("wh-other-roadmap", "updated"),
    ]

    assert await drain(dispatchers()) == 5
    expected = {
        "/all": events,
        "/updates": [events[0], events[3]],
        "/kept": events[:2],
        "/later": events[2:],
        "/earlier": [events[1]],
    }
    for path, wanted in expected.items():
        assert ids(receiver.to(path)) == message_ids(wanted), path
    # Every subscription is past the events it passed over, matched or not.
    end = (await webhook(admin, everything["id"]))["cursor"]
    for hook in (updates, kept, later, earlier):
        assert (await webhook(admin, hook["id"]))["cursor"] == end
    # What was passed over is not in the delivery log: it was never sent.
    assert [e["message_id"] for e in await deliveries(admin, kept["id"])] == message_ids(events[:2])


async def test_every_subscription_is_served_however_many_are_caught_up_before_it(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    # More subscriptions than a tick looks at (MAX_CONCURRENT * 2 = 16): once the first ones
    # have caught up, the later ones must still be reached.
    hooks = [await subscribe(admin, receiver.url(f"/hook/{n}")) for n in range(20)]
    await create_program(client, "wh-many")
    (event,) = await feed_after(client, hooks[0]["cursor"])
    dispatcher = dispatchers()
    for _ in range(10):
        if not await drain(dispatcher):
            break
    missed = [n for n in range(20) if ids(receiver.to(f"/hook/{n}")) != message_ids([event])]
    assert missed == [], f"subscriptions never delivered to: {missed}"


async def test_a_failed_delivery_keeps_the_cursor_and_is_retried_with_the_same_webhook_id(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hook = await subscribe(admin, receiver.url("/hook"))
    await programme(client, "wh-retry", steps=1)
    events = await feed_after(client, hook["cursor"])
    first, second = message_ids(events)
    dispatcher = dispatchers()
    receiver.answer(503)

    assert await drain(dispatcher) == 1
    assert ids(receiver.received) == [first]  # the next event waits for this one
    failed = await webhook(admin, hook["id"])
    assert failed["cursor"] == hook["cursor"]
    assert (failed["state"], failed["failures"], failed["last_error"]) == ("active", 1, "HTTP 503")
    (attempt,) = await deliveries(admin, hook["id"])
    assert attempt["message_id"] == first
    assert (attempt["status_code"], attempt["delivered"], attempt["attempt"]) == (503, False, 1)
    assert attempt["error"] == "HTTP 503"
    # The event's position: the feed's cursor after it.
    page = await client.get(f"{API}/events", params={"after": hook["cursor"], "limit": 1})
    assert attempt["event_cursor"] == page.json()["next_cursor"]
    # About a second later (the first backoff, jittered), not at once.
    retry_at = datetime.fromisoformat(failed["next_attempt_at"])
    attempted_at = datetime.fromisoformat(attempt["attempted_at"])
    assert timedelta(seconds=0.7) <= retry_at - attempted_at <= timedelta(seconds=1.3)
    assert failed["failing_since"] is not None
    if utc_now() < retry_at - timedelta(seconds=0.2):
        assert await drain(dispatcher) == 0
        assert len(receiver.received) == 1

    receiver.answer(200)
    deadline = asyncio.get_running_loop().time() + 15
    while len(receiver.received) < 3:
        assert asyncio.get_running_loop().time() < deadline, ids(receiver.received)
        await drain(dispatcher)
        await asyncio.sleep(0.1)
    got = receiver.received
    assert ids(got) == [first, first, second]
    assert got[1].body == got[0].body
    assert got[1].verify(hook["secret"]) == events[0]
    assert got[2].verify(hook["secret"]) == events[1]
    log = await deliveries(admin, hook["id"])
    assert [(e["message_id"], e["attempt"], e["status_code"]) for e in log] == [
        (first, 1, 503),
        (first, 2, 200),
        (second, 1, 200),
    ]
    caught_up = await webhook(admin, hook["id"])
    assert (caught_up["failures"], caught_up["last_error"]) == (0, None)
    assert (caught_up["failing_since"], caught_up["next_attempt_at"]) == (None, None)
    end = await client.get(f"{API}/events", params={"after": hook["cursor"], "limit": 500})
    assert caught_up["cursor"] == end.json()["next_cursor"]


async def test_failing_too_long_pauses_it_as_failing_and_resuming_goes_on_from_there(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hook = await subscribe(admin, receiver.url("/hook"))
    await programme(client, "wh-failing", steps=2)
    events = await feed_after(client, hook["cursor"])
    dispatcher = dispatchers(webhook_failing_after_hours=0.0001)  # 0.36 s
    receiver.answer(503)

    deadline = asyncio.get_running_loop().time() + 20
    while (state := await webhook(admin, hook["id"]))["state"] != "failing":
        assert asyncio.get_running_loop().time() < deadline, state
        await drain(dispatcher)
        await asyncio.sleep(0.1)
    assert state["active"] is False
    assert state["failures"] >= 2
    assert state["last_error"] == "HTTP 503"
    assert state["cursor"] == hook["cursor"]
    tried = receiver.received
    assert set(ids(tried)) == {f"evt_{events[0]['id']}"}
    assert len(tried) == state["failures"]
    # Paused: nothing more is tried, however long one waits.
    await set_webhook(app, hook["id"], next_attempt_at=None)
    assert await drain(dispatcher) == 0
    assert len(receiver.received) == len(tried)

    receiver.answer(200)
    response = await admin.patch(f"{API}/webhooks/{hook['id']}", json={"active": True})
    assert response.status_code == 200, response.text
    resumed = response.json()
    assert (resumed["state"], resumed["active"], resumed["failures"]) == ("active", True, 0)
    assert (resumed["failing_since"], resumed["next_attempt_at"]) == (None, None)
    assert resumed["cursor"] == hook["cursor"]
    assert await drain(dispatcher) == 1
    delivered = receiver.received[len(tried) :]
    assert ids(delivered) == message_ids(events)
    assert [request.verify(hook["secret"]) for request in delivered] == events
    assert (await webhook(admin, hook["id"]))["state"] == "active"


async def test_one_dispatcher_at_a_time_holds_a_subscription(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hook = await subscribe(admin, receiver.url("/hook"))
    await programme(client, "wh-lease", steps=2)
    events = await feed_after(client, hook["cursor"])
    first, second = dispatchers(), dispatchers()
    receiver.slow(0.3)  # keeps the first one's deliveries in flight a while

    assert await first.tick() == 1
    owner, until = await lease_of(app, hook["id"])
    assert owner == first.name
    assert until is not None
    assert until > utc_now() + timedelta(seconds=20)
    while first.delivering:
        assert await second.tick() == 0, "claimed a subscription another dispatcher holds"
        await asyncio.sleep(0.05)
    assert ids(receiver.received) == message_ids(events)  # each once, in order

    # A holder that died (its lease still runs) keeps it from everyone until the lease ends…
    await programme(client, "wh-lease-more", steps=0)
    more = (await feed_after(client, hook["cursor"]))[len(events) :]
    assert len(more) == 1
    await set_webhook(
        app, hook["id"], lease_owner="dead", lease_until=utc_now() + timedelta(seconds=60)
    )
    assert await drain(second) == 0
    assert len(receiver.received) == len(events)
    # …and then the next one takes it over, from the cursor.
    await set_webhook(app, hook["id"], lease_until=utc_now() - timedelta(seconds=1))
    assert await drain(second) == 1
    assert ids(receiver.received) == message_ids(events + more)


async def test_dispatchers_running_side_by_side_deliver_each_event_once_in_order(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hooks = [await subscribe(admin, receiver.url(f"/hook/{n}")) for n in range(3)]
    stopping = asyncio.Event()
    running = [asyncio.create_task(dispatchers().run(stopping)) for _ in range(3)]
    try:
        for n in range(4):
            await programme(client, f"wh-side-{n}", steps=2)
        events = await feed_after(client, hooks[0]["cursor"])
        assert len(events) == 12
        await asyncio.to_thread(
            receiver.wait_for, lambda got: len(got) >= 3 * len(events), timeout=30
        )
        await asyncio.sleep(1.5)  # an idle poll more: a duplicate would come now
    finally:
        stopping.set()
        await asyncio.gather(*running)
    for n, hook in enumerate(hooks):
        got = receiver.to(f"/hook/{n}")
        assert ids(got) == message_ids(events), n
        assert [request.verify(hook["secret"]) for request in got] == events


async def test_a_dispatcher_that_lost_its_lease_stops_and_the_event_is_sent_again(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hook = await subscribe(admin, receiver.url("/hook"))
    await programme(client, "wh-lost", steps=2)
    events = await feed_after(client, hook["cursor"])
    slow, other = dispatchers(), dispatchers()
    receiver.slow(0.5)

    assert await slow.tick() == 1
    await asyncio.to_thread(receiver.wait_for, lambda got: len(got) == 1)
    # Its lease ran out mid-delivery (a stall longer than the lease) and another took it.
    await set_webhook(
        app, hook["id"], lease_owner=other.name, lease_until=utc_now() + timedelta(seconds=60)
    )
    await asyncio.gather(*list(slow.delivering.values()))
    assert ids(receiver.received) == message_ids(events[:1])  # it stopped after that one
    assert (await webhook(admin, hook["id"]))["cursor"] == hook["cursor"]  # and moved nothing

    receiver.slow(0)
    await set_webhook(app, hook["id"], lease_owner=None, lease_until=None)
    assert await drain(other) == 1
    got = receiver.received
    assert ids(got) == message_ids(events[:1] + events)  # the cut-off one again, same id
    assert got[0].body == got[1].body


async def test_a_change_made_while_a_dispatcher_holds_it_applies_from_the_next_event(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hook = await subscribe(admin, receiver.url("/old"))
    await programme(client, "wh-changed", steps=2)
    events = await feed_after(client, hook["cursor"])
    dispatcher = dispatchers()
    receiver.slow(0.5)

    assert await dispatcher.tick() == 1
    await asyncio.to_thread(receiver.wait_for, lambda got: len(got) == 1)
    rotated = await admin.post(f"{API}/webhooks/{hook['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    secret = rotated.json()["secret"]
    assert secret != hook["secret"]
    moved = await admin.patch(f"{API}/webhooks/{hook['id']}", json={"url": receiver.url("/new")})
    assert moved.status_code == 200, moved.text
    await asyncio.gather(*list(dispatcher.delivering.values()))
    # The holder stopped after the delivery in flight, and did not count it as done…
    assert ids(receiver.to("/old")) == message_ids(events[:1])
    assert (await webhook(admin, hook["id"]))["cursor"] == hook["cursor"]

    # Nobody claims it before the old lease would have ended: the holder might still have
    # been sending, and two must never send to one subscription at once.
    receiver.slow(0)
    assert await dispatchers().tick() == 0
    await set_webhook(app, hook["id"], lease_until=utc_now() - timedelta(seconds=1))
    # …then the next claim sends everything from there with the new URL and the new secret.
    assert await drain(dispatcher) == 1
    got = receiver.to("/new")
    assert ids(got) == message_ids(events)
    assert [request.verify(secret) for request in got] == events
    for request in got:
        with pytest.raises(WebhookVerificationError):
            request.verify(hook["secret"])


async def test_a_redirect_is_a_failure_and_is_not_followed(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hook = await subscribe(admin, receiver.url("/hook"))
    await create_program(client, "wh-redirect")
    receiver.answer(302)

    assert await drain(dispatchers()) == 1
    got = receiver.received
    assert [(r.path, r.status) for r in got] == [("/hook", 302)]  # nothing to /redirected
    state = await webhook(admin, hook["id"])
    assert state["cursor"] == hook["cursor"]
    assert state["failures"] == 1
    assert state["last_error"] == "HTTP 302 (redirects are not followed)"
    (attempt,) = await deliveries(admin, hook["id"])
    assert (attempt["status_code"], attempt["delivered"]) == (302, False)


@pytest.mark.parametrize(
    ("target", "refusal"),
    [
        # A name that resolves to loopback: refused when resolved, at delivery.
        ("https://localhost:{port}/hook", "is not a public address"),
        ("http://127.0.0.1:{port}/hook", "a webhook URL must be https"),
    ],
)
async def test_a_private_target_is_refused_at_delivery_without_the_setting(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
    target: str,
    refusal: str,
) -> None:
    # Made while the setting was on (or by a name that pointed elsewhere then)…
    hook = await subscribe(admin, target.format(port=receiver.port))
    await create_program(client, "wh-private")
    # …and delivered by a dispatcher without it.
    assert await drain(dispatchers(webhook_allow_private=False)) == 1
    assert receiver.connections == 0, "a connection was made to a refused address"
    state = await webhook(admin, hook["id"])
    assert refusal in state["last_error"]
    assert state["cursor"] == hook["cursor"]
    (attempt,) = await deliveries(admin, hook["id"])
    assert (attempt["status_code"], attempt["delivered"]) == (None, False)
    assert refusal in attempt["error"]
    if "localhost" in target:
        assert any(address in attempt["error"] for address in ("127.0.0.1", "::1"))


async def test_redeliver_sends_an_event_and_those_after_it_again_with_their_ids(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hook = await subscribe(admin, receiver.url("/hook"))
    await programme(client, "wh-again", steps=2)
    events = await feed_after(client, hook["cursor"])
    dispatcher = dispatchers()
    assert await drain(dispatcher) == 1
    log = await deliveries(admin, hook["id"])
    assert [e["message_id"] for e in log] == message_ids(events)
    end = (await webhook(admin, hook["id"]))["cursor"]

    response = await admin.post(
        f"{API}/webhooks/{hook['id']}/redeliver", json={"event": log[1]["event_cursor"]}
    )
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "active"
    assert await drain(dispatcher) == 1
    got = receiver.received
    assert ids(got) == message_ids(events + events[1:])
    for original, again in zip(got[1:3], got[3:], strict=True):
        assert again.body == original.body
        assert again.verify(hook["secret"]) == original.verify(hook["secret"])
    assert (await webhook(admin, hook["id"]))["cursor"] == end

    response = await admin.post(f"{API}/webhooks/{hook['id']}/redeliver", json={"event": "junk"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM


async def test_a_subscription_deleted_while_held_gets_nothing_more(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hook = await subscribe(admin, receiver.url("/hook"))
    await programme(client, "wh-deleted", steps=4)
    events = await feed_after(client, hook["cursor"])
    assert len(events) == 5
    dispatcher = dispatchers()
    receiver.slow(0.5)

    assert await dispatcher.tick() == 1
    await asyncio.to_thread(receiver.wait_for, lambda got: len(got) == 1)
    response = await admin.delete(f"{API}/webhooks/{hook['id']}")
    assert response.status_code == 204, response.text
    await asyncio.gather(*list(dispatcher.delivering.values()))
    assert ids(receiver.received) == message_ids(events[:1])  # only the one in flight
    assert await drain(dispatcher) == 0
    assert len(receiver.received) == 1
    assert (await admin.get(f"{API}/webhooks/{hook['id']}")).status_code == 404


async def test_production_without_a_key_of_its_own_delivers_nothing_until_it_has_one(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    receiver: Receiver,
    dispatchers: DispatcherFactory,
) -> None:
    hook = await subscribe(admin, receiver.url())
    await programme(client, "wh-unkeyed", steps=1)
    assert await dispatchers(env="production").tick() == 0  # the development key: no signing
    assert receiver.received == []
    keyed = dispatchers(env="production", webhook_secret_key=SecretStr("x" * 40))
    assert await drain(keyed) == 1
    assert [request.webhook_id for request in receiver.received] == [
        f"evt_{event['id']}" for event in await feed_after(client, hook["cursor"])
    ]
