"""Subscriptions through the API: made, read without their secret, changed, paused and
resumed, re-keyed, replayed and removed; and what is refused, writing nothing. Delivery itself
is tested in test_dispatcher.py and, against real servers, test_delivery_live.py."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import update

from service.models.webhooks import Webhook
from service.pagination import encode_cursor
from tests.support.builders import API, create_program, feed_after

PROBLEM = "application/problem+json"
TARGET = "https://receiver.example/hooks/roadmap"


async def subscribe(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await admin.post(f"{API}/webhooks", json={"url": TARGET, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_subscription_starts_at_the_end_of_the_feed_and_shows_its_secret_once(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    response = await admin.post(f"{API}/webhooks", json={"url": TARGET, "description": "news"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == f"/api/v1/webhooks/{created['id']}"
    assert response.headers["Cache-Control"] == "no-store"
    assert created["secret"].startswith("whsec_")
    assert created["state"] == "active"
    assert await feed_after(admin, created["cursor"]) == []  # nothing old is delivered
    await create_program(client, "hook_new", roadmap="union-state-2021-2023")
    assert [e["program"] for e in await feed_after(admin, created["cursor"])] == ["hook_new"]

    shown = (await admin.get(f"{API}/webhooks/{created['id']}")).json()
    listed = (await admin.get(f"{API}/webhooks")).json()["items"]
    assert "secret" not in shown
    assert listed == [shown]
    assert created["secret"] not in str(listed)
    assert {k: v for k, v in created.items() if k != "secret"} == shown


async def test_after_replays_history_from_a_cursor(admin: httpx.AsyncClient) -> None:
    page = await admin.get(f"{API}/events", params={"limit": 5})
    cursor = page.json()["next_cursor"]
    created = await subscribe(admin, after=cursor)
    assert created["cursor"] == cursor
    feed = (await admin.get(f"{API}/events", params={"limit": 500})).json()["items"]
    assert await feed_after(admin, created["cursor"]) == feed[5:]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"url": "http://127.0.0.1:9000/hook"}, "url"),
        ({"url": "https://127.0.0.1/hook"}, "url"),
        ({"url": "https://169.254.169.254/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": TARGET, "programs": ["no_such_programme"]}, "programs"),
        ({"url": TARGET, "roadmap": "no-such-roadmap"}, "roadmap"),
        ({"url": TARGET, "kinds": ["no_such_kind"]}, "kinds"),
        ({"url": TARGET, "kinds": []}, "kinds"),
        ({"url": TARGET, "secret": "whsec_bXlvd24="}, "secret"),
        ({"url": TARGET, "after": "not-a-cursor"}, "after"),
        # Well formed, but ahead of the feed: it would skip every event until the feed got there.
        ({"url": TARGET, "after": encode_cursor(2**40, 2**40)}, "after"),
    ],
)
async def test_a_refused_subscription_writes_nothing(
    admin: httpx.AsyncClient, body: dict[str, Any], named: str
) -> None:
    response = await admin.post(f"{API}/webhooks", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    where = [str(part) for error in problem.get("errors") or [] for part in error["loc"]]
    assert named in problem["detail"] or named in where, problem
    assert (await admin.get(f"{API}/webhooks")).json()["items"] == []


async def test_private_targets_are_taken_with_the_setting(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"webhook_allow_private": True})
    created = await subscribe(admin, url="http://127.0.0.1:9000/hook")
    assert created["url"] == "http://127.0.0.1:9000/hook"


async def test_only_admins_manage_subscriptions(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    assert (await client.post(f"{API}/webhooks", json={"url": TARGET})).status_code == 403
    assert (await client.get(f"{API}/webhooks")).status_code == 403
    assert (await anonymous.get(f"{API}/webhooks")).status_code == 401


async def test_changes_pauses_and_resumes(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    created = await subscribe(admin, kinds=["status_changed"], programs=["gas_market"])
    url = f"{API}/webhooks/{created['id']}"
    changed = await admin.patch(url, json={"url": "https://other.example/", "kinds": None})
    assert changed.status_code == 200, changed.text
    assert changed.json()["url"] == "https://other.example/"
    assert changed.json()["kinds"] is None
    assert changed.json()["programs"] == ["gas_market"]  # not given: unchanged
    paused = await admin.patch(url, json={"active": False})
    assert paused.json()["state"] == "paused"

    # As the dispatcher leaves a subscription it gave up on.
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Webhook)
            .where(Webhook.id == created["id"])
            .values(active=False, failing=True, failures=9, last_error="HTTP 503")
        )
        await session.commit()
    failing = (await admin.get(url)).json()
    assert (failing["state"], failing["failures"]) == ("failing", 9)
    resumed = (await admin.patch(url, json={"active": True})).json()
    assert (resumed["state"], resumed["failures"], resumed["next_attempt_at"]) == (
        "active",
        0,
        None,
    )
    assert resumed["cursor"] == created["cursor"]  # from where it stopped

    refused = await admin.patch(url, json={"url": "http://10.0.0.1/"})
    assert refused.status_code == 422
    assert (await admin.get(url)).json()["url"] == "https://other.example/"


async def test_rotating_the_secret_and_retries_that_do_not_replay_it(
    admin: httpx.AsyncClient,
) -> None:
    first = await admin.post(
        f"{API}/webhooks", json={"url": TARGET}, headers={"Idempotency-Key": "hook-1"}
    )
    again = await admin.post(
        f"{API}/webhooks", json={"url": TARGET}, headers={"Idempotency-Key": "hook-1"}
    )
    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json()["type"].endswith("secret-shown-once")
    assert len((await admin.get(f"{API}/webhooks")).json()["items"]) == 1
    rotated = await admin.post(f"{API}/webhooks/{first.json()['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != first.json()["secret"]


async def test_redelivery_moves_the_cursor_back_to_just_before_the_event(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    before = await admin.get(f"{API}/events", params={"limit": 500})
    start = before.json()["next_cursor"]
    await create_program(client, "hook_redo", roadmap="union-state-2021-2023")
    page = await admin.get(f"{API}/events", params={"after": start})
    # The event's own position is the cursor a feed page ending at it returns.
    event_cursor = page.json()["next_cursor"]
    early = await subscribe(admin, after=start)  # has not had the event yet
    too_soon = await admin.post(
        f"{API}/webhooks/{early['id']}/redeliver", json={"event": event_cursor}
    )
    assert too_soon.status_code == 422, too_soon.text  # it would skip nothing, but say so
    created = await subscribe(admin)  # starts after the event: as if it had been delivered
    redone = await admin.post(
        f"{API}/webhooks/{created['id']}/redeliver", json={"event": event_cursor}
    )
    assert redone.status_code == 202, redone.text
    again = await feed_after(admin, redone.json()["cursor"])
    assert [event["program"] for event in again] == ["hook_redo"]
    # A cursor that names no event could move the subscription past events unseen.
    for never_issued in (encode_cursor(2**40, 2**40), encode_cursor(0, 0)):
        refused = await admin.post(
            f"{API}/webhooks/{created['id']}/redeliver", json={"event": never_issued}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["loc"] == ["body", "event"]
    shown = (await admin.get(f"{API}/webhooks/{created['id']}")).json()
    assert shown["cursor"] == redone.json()["cursor"]


async def test_deliveries_and_removal(admin: httpx.AsyncClient) -> None:
    created = await subscribe(admin)
    url = f"{API}/webhooks/{created['id']}"
    deliveries = await admin.get(f"{url}/deliveries")
    assert deliveries.json() == {"items": [], "next_cursor": None}
    assert (await admin.delete(url)).status_code == 204
    assert (await admin.get(url)).status_code == 404
    assert (await admin.get(f"{url}/deliveries")).status_code == 404
    assert (await admin.delete(url)).status_code == 404


async def test_production_needs_its_own_key_to_sign(app: FastAPI, admin: httpx.AsyncClient) -> None:
    app.state.settings = app.state.settings.model_copy(update={"env": "production"})
    refused = await admin.post(f"{API}/webhooks", json={"url": TARGET})
    assert refused.status_code == 409
    assert "ROADMAP_WEBHOOK_SECRET_KEY" in refused.json()["detail"]
    app.state.settings = app.state.settings.model_copy(
        update={"webhook_secret_key": SecretStr("a long random production key")}
    )
    assert (await admin.post(f"{API}/webhooks", json={"url": TARGET})).status_code == 201
