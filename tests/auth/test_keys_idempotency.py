"""POST /keys honours Idempotency-Key like every other write: the key is created once. Its
secret is shown once: a retry gets a 409 naming the key, never the secret, which is kept
nowhere in the clear — not in the idempotency table either."""

from collections.abc import Mapping

import httpx
from sqlalchemy import select

from service.db import create_engine, create_sessionmaker
from service.models.idempotency import IdempotencyKey
from tests.support.builders import API, bearer

SHOWN_ONCE = "urn:roadmap:problem:secret-shown-once"


async def stored_answers(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.scalars(select(IdempotencyKey.response_body))
            return [body or "" for body in rows]
    finally:
        await engine.dispose()


async def test_a_retried_key_creation_creates_one_key_and_never_replays_its_secret(
    client: httpx.AsyncClient, api_tokens: Mapping[str, str], database_url: str
) -> None:
    admin = bearer(api_tokens["admin"])
    once = {**admin, "Idempotency-Key": "create-desk-key"}
    body = {"name": "newsroom-desk", "role": "admin"}
    first = await client.post(f"{API}/keys", json=body, headers=once)
    assert first.status_code == 201, first.text
    assert first.headers["cache-control"] == "no-store"
    secret = first.json()["secret"]

    retry = await client.post(f"{API}/keys", json=body, headers=once)
    assert retry.status_code == 409
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["type"] == SHOWN_ONCE
    assert retry.json()["name"] == "newsroom-desk"
    assert secret not in retry.text
    assert "secret" not in retry.json()

    names = [
        key["name"] for key in (await client.get(f"{API}/keys", headers=admin)).json()["items"]
    ]
    assert names.count("newsroom-desk") == 1
    assert all(secret not in answer for answer in await stored_answers(database_url))
    # The secret of the first answer is the key's.
    assert (await client.get(f"{API}/keys", headers=bearer(secret))).status_code == 200

    other = await client.post(f"{API}/keys", json={**body, "role": "viewer"}, headers=once)
    assert other.status_code == 422
    assert other.json()["type"] == "urn:roadmap:problem:idempotency-key-reused"


async def test_a_refused_key_creation_is_replayed_as_refused(
    client: httpx.AsyncClient, api_tokens: Mapping[str, str]
) -> None:
    once = {**bearer(api_tokens["admin"]), "Idempotency-Key": "reserved-name"}
    body = {"name": "system", "role": "viewer"}
    first = await client.post(f"{API}/keys", json=body, headers=once)
    retry = await client.post(f"{API}/keys", json=body, headers=once)
    assert first.status_code == retry.status_code == 422
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
