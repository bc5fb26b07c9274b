"""Access control: who may call what, attribution, key storage, limits."""

from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.reserved import RESERVED_ACTOR_NAMES, reserved_name_in
from service.clock import utc_now
from service.db import create_engine
from service.models.keys import ApiKey
from service.seed.loader import SEED_ACTOR
from tests.support.builders import API, bearer
from tests.support.cli import Cli
from tests.support.servers import LiveServer

PUBLIC, READER, EDITOR, ADMIN = "public", "reader", "editor", "admin"

# Every route and the least it needs. A route missing here fails
# test_every_route_has_an_access_decision: adding a route means deciding who may call it.
ROUTE_ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", f"{API}/programs"): READER,
    ("POST", f"{API}/programs"): EDITOR,
    ("GET", f"{API}/programs/{{code}}"): READER,
    ("PATCH", f"{API}/programs/{{code}}"): EDITOR,
    ("POST", f"{API}/programs/{{code}}/transitions"): EDITOR,
    ("POST", f"{API}/programs/{{code}}/corrections"): EDITOR,
    ("GET", f"{API}/programs/{{code}}/history"): READER,
    ("GET", f"{API}/decisions"): READER,
    ("POST", f"{API}/decisions"): EDITOR,
    ("GET", f"{API}/decisions/{{code}}"): READER,
    ("GET", f"{API}/events"): READER,
    ("GET", f"{API}/audit/verify"): READER,
    ("GET", f"{API}/audit/digest"): READER,
    ("GET", f"{API}/programs/{{code}}/milestones"): READER,
    ("POST", f"{API}/programs/{{code}}/milestones"): EDITOR,
    ("PATCH", f"{API}/programs/{{code}}/milestones/{{milestone_id}}"): EDITOR,
    ("GET", f"{API}/roadmaps"): READER,
    ("POST", f"{API}/roadmaps"): ADMIN,
    ("GET", f"{API}/roadmaps/{{code}}"): READER,
    ("GET", f"{API}/roadmaps/{{code}}/progress"): READER,
    ("POST", f"{API}/roadmaps/{{code}}/progress"): EDITOR,
    ("GET", f"{API}/workflow"): READER,
    ("GET", f"{API}/stats/summary"): READER,
    ("GET", f"{API}/stats/summary.csv"): READER,
    ("GET", f"{API}/stats/timeline.csv"): READER,
    ("GET", f"{API}/milestones"): READER,
    ("GET", f"{API}/export/progress_reports.csv"): READER,
    ("GET", f"{API}/export/milestones.csv"): READER,
    ("GET", f"{API}/export/programs.csv"): READER,
    ("GET", f"{API}/export/events.csv"): READER,
    ("GET", f"{API}/export/events.ndjson"): READER,
    ("GET", f"{API}/events/stream"): READER,
    ("GET", f"{API}/stats/timeline"): READER,
    ("GET", f"{API}/keys"): ADMIN,
    ("POST", f"{API}/keys"): ADMIN,
    ("DELETE", f"{API}/keys/{{name}}"): ADMIN,
    ("GET", f"{API}/webhooks"): ADMIN,
    ("POST", f"{API}/webhooks"): ADMIN,
    ("GET", f"{API}/webhooks/{{webhook_id}}"): ADMIN,
    ("PATCH", f"{API}/webhooks/{{webhook_id}}"): ADMIN,
    ("DELETE", f"{API}/webhooks/{{webhook_id}}"): ADMIN,
    ("POST", f"{API}/webhooks/{{webhook_id}}/rotate-secret"): ADMIN,
    ("POST", f"{API}/webhooks/{{webhook_id}}/redeliver"): ADMIN,
    ("GET", f"{API}/webhooks/{{webhook_id}}/deliveries"): ADMIN,
}

BODIES = {
    ("POST", f"{API}/programs"): {"code": "access_check", "title": "Access"},
    ("PATCH", f"{API}/programs/{{code}}"): {"summary": "access check"},
    ("POST", f"{API}/programs/{{code}}/transitions"): {"to_status": "draft"},
    ("POST", f"{API}/keys"): {"name": "access-check", "role": "viewer"},
    ("POST", f"{API}/webhooks"): {"url": "https://access-check.example/"},
    ("PATCH", f"{API}/webhooks/{{webhook_id}}"): {"description": "access check"},
    ("POST", f"{API}/webhooks/{{webhook_id}}/redeliver"): {"event": "MSwx"},
    ("POST", f"{API}/programs/{{code}}/corrections"): {"event": 1, "reason": "access check"},
    ("POST", f"{API}/decisions"): {
        "code": "access-check",
        "title": "Access",
        "body": "Presidents",
        "date": "2024-01-01",
        "transitions": [{"program": "transport", "to_status": "draft"}],
    },
    ("POST", f"{API}/programs/{{code}}/milestones"): {"title": "Access check"},
    ("PATCH", f"{API}/programs/{{code}}/milestones/{{milestone_id}}"): {"note": "checked"},
    ("POST", f"{API}/roadmaps"): {"code": "access-check", "title": "Access"},
    ("POST", f"{API}/roadmaps/{{code}}/progress"): {
        "date": "2024-01-01",
        "measures_done_pct": 1,
        "statement": "access check",
    },
}

RANK = {None: 0, "viewer": 1, "editor": 2, "admin": 3}
NEEDED_RANK = {READER: 0, EDITOR: 2, ADMIN: 3}


def api_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """Every operation the application serves, as its OpenAPI document lists them."""
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            yield method.upper(), path


def test_every_route_has_an_access_decision(app: FastAPI) -> None:
    assert set(api_routes(app)) == set(ROUTE_ACCESS)


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    url = path.replace("{code}", "transport").replace("{name}", "nobody")
    url = url.replace("{milestone_id}", "1").replace("{webhook_id}", "1")
    if "/roadmaps/" in path:
        url = path.replace("{code}", "union-state-2021-2023")
    if "/decisions/" in path:
        url = path.replace("{code}", "ssc-decree-6-2021")
    body = BODIES.get((method, path))
    return await client.request(method, url, json=body, headers=headers)


def expected_refusal(access: str, role: str | None, reads_need_auth: bool) -> int | None:
    if access == PUBLIC:
        return None
    needed = NEEDED_RANK[access] or (1 if reads_need_auth else 0)
    if needed == 0:
        return None
    if role is None:
        return 401
    return 403 if RANK[role] < needed else None


@pytest.mark.parametrize("reads_need_auth", [False, True])
@pytest.mark.parametrize("role", [None, "viewer", "editor", "admin"])
async def test_each_route_admits_exactly_the_roles_it_should(
    app: FastAPI,
    anonymous: httpx.AsyncClient,
    api_tokens: Mapping[str, str],
    role: str | None,
    reads_need_auth: bool,
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"require_auth_for_reads": reads_need_auth}
    )
    headers = bearer(api_tokens[role]) if role else {}
    for (method, path), access in ROUTE_ACCESS.items():
        refusal = expected_refusal(access, role, reads_need_auth)
        if path.endswith("/stream") and refusal is None:
            continue  # an admitted stream never ends; test_dashboards reads it from a server
        response = await call(anonymous, method, path, headers)
        if refusal is None:
            assert response.status_code not in (401, 403), (method, path, response.text)
        else:
            assert response.status_code == refusal, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            if refusal == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer rmk_nope", "Basic dXNlcjpwYXNz", "Bearer rmk_000000000000_" + "x" * 43],
)
async def test_malformed_or_unknown_keys_are_401(
    anonymous: httpx.AsyncClient, authorization: str
) -> None:
    response = await anonymous.post(
        f"{API}/programs/transport/transitions",
        json={"to_status": "draft"},
        headers={"Authorization": authorization},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "dXNlcjpwYXNz" not in response.text


async def test_anonymous_post_is_401_with_a_bearer_challenge(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.post(f"{API}/programs", json={"code": "anon", "title": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert (await anonymous.get(f"{API}/programs/anon")).status_code == 404


async def test_a_revoked_key_is_refused(
    anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str]
) -> None:
    response = await anonymous.get(f"{API}/keys", headers=bearer(api_tokens["revoked"]))
    assert response.status_code == 401


async def test_the_key_is_the_actor_and_the_claim_is_a_note(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/programs", json={"code": "attributed", "title": "Attributed"})
    response = await client.post(
        f"{API}/programs/attributed/transitions",
        json={"to_status": "coordinated", "actor": "Deputy Minister Ivanov"},
    )
    event = response.json()["event"]
    assert event["actor"] == "test-editor"
    assert event["on_behalf_of"] == "Deputy Minister Ivanov"
    history = (await client.get(f"{API}/programs/attributed/history")).json()["items"]
    assert [e["actor"] for e in history] == ["test-editor", "test-editor"]


async def test_admins_manage_keys_over_http(
    anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str]
) -> None:
    admin = bearer(api_tokens["admin"])
    created = await anonymous.post(
        f"{API}/keys", json={"name": "newsroom", "role": "editor"}, headers=admin
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("rmk_")
    listing = await anonymous.get(f"{API}/keys", headers=admin)
    assert "newsroom" in {k["name"] for k in listing.json()["items"]}
    assert secret not in listing.text
    assert "secret" not in listing.text
    works = await anonymous.post(
        f"{API}/programs", json={"code": "by_newsroom", "title": "x"}, headers=bearer(secret)
    )
    assert works.status_code == 201
    duplicate = await anonymous.post(
        f"{API}/keys", json={"name": "newsroom", "role": "viewer"}, headers=admin
    )
    assert duplicate.status_code == 409
    assert (await anonymous.delete(f"{API}/keys/newsroom", headers=admin)).status_code == 204
    refused = await anonymous.post(
        f"{API}/programs", json={"code": "by_newsroom2", "title": "x"}, headers=bearer(secret)
    )
    assert refused.status_code == 401
    assert (await anonymous.delete(f"{API}/keys/nobody", headers=admin)).status_code == 404


async def test_server_owned_fields_cannot_be_assigned(
    anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str]
) -> None:
    admin = bearer(api_tokens["admin"])
    for body in (
        {"name": "sneaky", "role": "viewer", "secret_hash": "0" * 64},
        {"name": "sneaky", "role": "superuser"},
    ):
        response = await anonymous.post(f"{API}/keys", json=body, headers=admin)
        assert response.status_code == 422, body


@pytest.mark.parametrize(
    ("name", "claims"),
    [
        ("seed", "seed"),
        ("SEED", "seed"),
        ("Seed-2", "seed"),
        ("seed.import", "seed"),
        ("seed_bot", "seed"),
        ("seed2", "seed"),
        ("seed@example.org", "seed"),
        ("system", "system"),
        ("System.Repair", "system"),
        ("anonymous", "anonymous"),
        ("seedling", None),
        ("systematic-review", None),
        ("newsroom-seed", None),
        ("test-editor", None),
    ],
)
def test_reserved_names_are_the_service_s_own_in_any_case_and_with_any_suffix(
    name: str, claims: str | None
) -> None:
    assert reserved_name_in(name) == claims


async def test_every_actor_the_service_writes_itself_is_reserved(database_url: str) -> None:
    """The seeded database holds only what the service wrote by itself: were the seed loader to
    record a name no key is refused, a key could take that name and pass for the seed."""
    assert reserved_name_in(SEED_ACTOR.name) == SEED_ACTOR.name
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        actors = set(
            (
                await connection.execute(
                    text(
                        "SELECT actor FROM events UNION SELECT on_behalf_of FROM events "
                        "UNION SELECT recorded_by FROM progress_reports"
                    )
                )
            ).scalars()
        )
    await engine.dispose()
    assert actors - {None} == {SEED_ACTOR.name}


@pytest.mark.parametrize("name", ["seed", "Seed", "system-import", "ANONYMOUS"])
async def test_a_key_cannot_take_a_name_the_service_records_as_its_own(
    anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str], name: str
) -> None:
    admin = bearer(api_tokens["admin"])
    response = await anonymous.post(
        f"{API}/keys", json={"name": name, "role": "admin"}, headers=admin
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert repr(name) in response.json()["detail"]
    assert "reserved" in response.json()["detail"]
    listing = await anonymous.get(f"{API}/keys", headers=admin)
    assert name not in {key["name"] for key in listing.json()["items"]}


async def test_the_reserved_names_are_documented_for_clients(app: FastAPI) -> None:
    description = app.openapi()["paths"][f"{API}/keys"]["post"]["description"]
    assert all(f"`{name}`" in description for name in RESERVED_ACTOR_NAMES)


def test_cli_refuses_a_reserved_key_name_in_one_line(cli: Cli, database_url: str) -> None:
    result = cli(
        "keys", "create", "--name", "seed", "--role", "admin", env={"DATABASE_URL": database_url}
    )
    assert result.returncode != 0
    assert result.stdout == ""  # no secret
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "'seed' is reserved" in lines[0]
    listing = cli("keys", "list", env={"DATABASE_URL": database_url}).stdout
    names = {line.split()[0] for line in listing.splitlines()[1:]}
    assert "test-admin" in names
    assert "seed" not in names


async def test_a_change_cannot_claim_to_be_made_for_the_service(
    client: httpx.AsyncClient,
) -> None:
    before = (await client.get(f"{API}/programs/gas_market")).json()["version"]
    for claimed in ("seed", "Seed-import", "system"):
        response = await client.patch(
            f"{API}/programs/gas_market", json={"summary": "forged", "actor": claimed}
        )
        assert response.status_code == 422, response.text
        assert "cannot be claimed" in response.json()["detail"]
    assert (await client.get(f"{API}/programs/gas_market")).json()["version"] == before
    allowed = await client.patch(
        f"{API}/programs/gas_market", json={"summary": "real", "actor": "seedling fund"}
    )
    assert allowed.status_code == 200
    assert allowed.json()["event"]["on_behalf_of"] == "seedling fund"


async def test_a_key_created_before_the_reservation_can_still_be_revoked(
    anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str], database_url: str
) -> None:
    engine = create_engine(database_url)
    async with AsyncSession(engine) as session:
        session.add(
            ApiKey(
                key_id="0" * 12,
                name="seed",
                role="admin",
                secret_hash="0" * 64,
                created_at=utc_now(),
            )
        )
        await session.commit()
    await engine.dispose()
    admin = bearer(api_tokens["admin"])
    assert (await anonymous.delete(f"{API}/keys/seed", headers=admin)).status_code == 204
    listing = (await anonymous.get(f"{API}/keys", headers=admin)).json()["items"]
    assert [key["revoked_at"] is not None for key in listing if key["name"] == "seed"] == [True]


async def database_text_contains(database_url: str, needle: str) -> bool:
    """Search every column of every table, as text, for `needle`."""
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            tables = (
                await connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
            query = 'SELECT count(*) FROM "{table}" AS t WHERE t::text LIKE :needle'
        else:
            tables = (
                await connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
            ).scalars()
            query = 'SELECT count(*) FROM "{table}" WHERE ({columns}) LIKE :needle'
        found = False
        for table in list(tables):
            sql = query.format(table=table, columns="")
            if engine.dialect.name != "postgresql":
                columns = [
                    row[1]
                    for row in await connection.execute(text(f'PRAGMA table_info("{table}")'))
                ]
                concat = " || '|' || ".join(f"coalesce(\"{c}\", '')" for c in columns)
                sql = query.format(table=table, columns=concat)
            count = (await connection.execute(text(sql), {"needle": f"%{needle}%"})).scalar()
            found = found or bool(count)
    await engine.dispose()
    return found


async def test_the_database_holds_no_secret_in_clear(
    anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str], database_url: str
) -> None:
    created = await anonymous.post(
        f"{API}/keys",
        json={"name": "stored", "role": "viewer"},
        headers=bearer(api_tokens["admin"]),
    )
    token = created.json()["secret"]
    secret_part = token.split("_", 2)[2]
    key_id = token.split("_", 2)[1]
    assert await database_text_contains(database_url, key_id)  # the search does find things
    assert not await database_text_contains(database_url, secret_part)


def test_cli_prints_the_secret_alone_on_the_last_line(cli: Cli, database_url: str) -> None:
    env = {"DATABASE_URL": database_url}
    created = cli("keys", "create", "--name", "cli-editor", "--role", "editor", env=env)
    assert created.returncode == 0, created.stderr
    last_line = created.stdout.strip().splitlines()[-1]
    assert last_line.startswith("rmk_")
    assert " " not in last_line
    listing = cli("keys", "list", env=env)
    assert "cli-editor" in listing.stdout
    assert last_line not in listing.stdout
    assert cli("keys", "revoke", "cli-editor", env=env).returncode == 0
    assert "cli-editor" in cli("keys", "list", env=env).stdout


async def test_oversized_bodies_are_refused_before_parsing(client: httpx.AsyncClient) -> None:
    big = {"code": "too_big", "title": "x", "summary": "y" * (70 * 1024)}
    response = await client.post(f"{API}/programs", json=big)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"code": "too_big", "title": "x", "summary": "'
        for _ in range(80):
            yield b"y" * 1024
        yield b'"}'

    streamed = await client.post(
        f"{API}/programs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert (await client.get(f"{API}/programs/too_big")).status_code == 404


async def test_limit_is_capped(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/events", params={"limit": 100_000})).status_code == 422


def test_revocation_is_seen_by_every_worker(
    live: LiveServer, api_tokens: Mapping[str, str], tmp_path: Path
) -> None:
    admin = bearer(api_tokens["admin"])
    with httpx.Client(base_url=live.base_url, timeout=10) as http:
        created = http.post(
            f"{API}/keys", json={"name": "short-lived", "role": "viewer"}, headers=admin
        )
        key = bearer(created.json()["secret"])
        assert all(http.get(f"{API}/keys", headers=key).status_code == 403 for _ in range(20))
        assert http.delete(f"{API}/keys/short-lived", headers=admin).status_code == 204
        # Four workers, forty fresh connections: every one of them must refuse the key now.
        for _ in range(40):
            with httpx.Client(base_url=live.base_url, timeout=10) as fresh:
                assert fresh.get(f"{API}/programs", headers=key).status_code == 401
