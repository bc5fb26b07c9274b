"""Optimistic concurrency (If-Match) and idempotent POSTs, in process."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from service.idempotency.service import claim, purge_expired, request_fingerprint
from service.models.idempotency import IdempotencyKey
from tests.support.builders import API, create_program, history, transition


async def test_stale_if_match_is_412_and_writes_nothing(client: httpx.AsyncClient) -> None:
    await create_program(client, "im1")
    etag = (await client.get(f"{API}/programs/im1")).headers["etag"]
    first = await client.post(
        f"{API}/programs/im1/transitions",
        json={"to_status": "coordinated"},
        headers={"If-Match": etag},
    )
    assert first.status_code == 201
    assert first.headers["etag"] != etag
    stale = await client.patch(
        f"{API}/programs/im1", json={"summary": "late"}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.headers["etag"] == first.headers["etag"]
    stale_transition = await client.post(
        f"{API}/programs/im1/transitions",
        json={"to_status": "draft"},
        headers={"If-Match": etag},
    )
    assert stale_transition.status_code == 412
    assert len(await history(client, "im1")) == 2
    fresh = await client.patch(
        f"{API}/programs/im1",
        json={"summary": "now"},
        headers={"If-Match": first.headers["etag"]},
    )
    assert fresh.status_code == 200


@pytest.fixture
def require_if_match(app: FastAPI) -> None:
    app.state.settings = app.state.settings.model_copy(update={"require_if_match": True})


@pytest.mark.usefixtures("require_if_match")
async def test_if_match_can_be_required(client: httpx.AsyncClient) -> None:
    missing = await client.patch(f"{API}/programs/transport", json={"summary": "x"})
    assert missing.status_code == 428
    assert missing.headers["content-type"] == "application/problem+json"
    etag = (await client.get(f"{API}/programs/transport")).headers["etag"]
    ok = await client.patch(
        f"{API}/programs/transport", json={"summary": "x"}, headers={"If-Match": etag}
    )
    assert ok.status_code == 200


async def test_a_retried_post_replays_the_first_answer(client: httpx.AsyncClient) -> None:
    await create_program(client, "idem1")
    headers = {"Idempotency-Key": "retry-1"}
    body = {"to_status": "coordinated", "note": "agreed"}
    first = await client.post(f"{API}/programs/idem1/transitions", json=body, headers=headers)
    second = await client.post(f"{API}/programs/idem1/transitions", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["idempotent-replayed"] == "true"
    assert len(await history(client, "idem1")) == 2


async def test_a_replayed_create_keeps_its_location(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "create-1"}
    body = {"code": "idem_create", "title": "Idempotent"}
    first = await client.post(f"{API}/programs", json=body, headers=headers)
    second = await client.post(f"{API}/programs", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["event"]["id"] == first.json()["event"]["id"]
    assert second.headers["location"] == first.headers["location"]


async def test_same_key_with_another_body_is_422(client: httpx.AsyncClient) -> None:
    await create_program(client, "idem2")
    headers = {"Idempotency-Key": "retry-2"}
    first = await transition(client, "idem2", "coordinated")
    assert first.status_code == 201
    await client.post(
        f"{API}/programs/idem2/transitions", json={"to_status": "draft"}, headers=headers
    )
    other = await client.post(
        f"{API}/programs/idem2/transitions", json={"to_status": "withdrawn"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency-key-reused")
    assert len(await history(client, "idem2")) == 3


async def test_a_refusal_is_replayed_too(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "refused-1"}
    body = {"to_status": "draft"}
    first = await client.post(f"{API}/programs/transport/transitions", json=body, headers=headers)
    second = await client.post(f"{API}/programs/transport/transitions", json=body, headers=headers)
    assert first.status_code == second.status_code == 409
    assert second.content == first.content
    assert second.headers["content-type"] == "application/problem+json"


async def test_a_retry_while_the_first_runs_is_409(app: FastAPI, client: httpx.AsyncClient) -> None:
    await create_program(client, "idem3")
    path = f"{API}/programs/idem3/transitions"
    body = b'{"to_status":"coordinated"}'
    claimed = await claim(
        app.state.sessionmaker,
        scope="test-editor",  # the key the client fixture holds
        key="running-1",
        fingerprint=request_fingerprint("POST", path, body),
    )
    assert not hasattr(claimed, "body")  # a fresh claim, not a stored answer
    retry = await client.post(
        path,
        content=body,
        headers={"Idempotency-Key": "running-1", "content-type": "application/json"},
    )
    assert retry.status_code == 409
    assert retry.headers["retry-after"] == "1"
    assert len(await history(client, "idem3")) == 1


async def test_keys_are_scoped_to_the_caller(app: FastAPI, client: httpx.AsyncClient) -> None:
    path = f"{API}/programs/x/transitions"
    fingerprint = request_fingerprint("POST", path, b"{}")
    mine = await claim(app.state.sessionmaker, scope="alice", key="k", fingerprint=fingerprint)
    theirs = await claim(app.state.sessionmaker, scope="bob", key="k", fingerprint=fingerprint)
    assert mine != theirs


async def test_expired_keys_are_purged(app: FastAPI, client: httpx.AsyncClient) -> None:
    await client.post(
        f"{API}/programs",
        json={"code": "purge1", "title": "p"},
        headers={"Idempotency-Key": "old"},
    )
    async with app.state.sessionmaker() as session:
        long_ago = datetime.now(UTC) - timedelta(hours=25)
        await session.execute(update(IdempotencyKey).values(created_at=long_ago))
        assert await purge_expired(session, older_than=timedelta(hours=24)) == 1
        await session.commit()
        assert (await session.scalars(select(IdempotencyKey))).all() == []
