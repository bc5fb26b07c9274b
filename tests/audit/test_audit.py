"""Verification finds an event changed behind the service's back; digests prove the past."""

import hashlib
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.verify import verify_chains
from service.db import create_engine
from tests.support.builders import API, SEEDED_EVENTS, create_program, transition
from tests.support.cli import Cli


async def tamper_with_event(database_url: str, program: str, seq: int, note: str) -> int:
    """Edit an event as a superuser could: with the append-only triggers out of the way."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        else:
            await connection.execute(text("DROP TRIGGER events_no_update"))
        event_id = (
            await connection.execute(
                text(
                    "UPDATE events SET note = :note WHERE seq = :seq AND program_id = "
                    "(SELECT id FROM programs WHERE code = :code) RETURNING id"
                ),
                {"note": note, "seq": seq, "code": program},
            )
        ).scalar_one()
        if engine.dialect.name == "postgresql":
            await connection.execute(text("ALTER TABLE events ENABLE TRIGGER USER"))
    await engine.dispose()
    return int(event_id)


async def tamper_with_text(database_url: str, program: str, seq: int, sql: str) -> int:
    """Edit or delete an event's kept text (PostgreSQL), as a superuser could."""
    engine = create_engine(database_url)
    if engine.dialect.name != "postgresql":
        await engine.dispose()
        pytest.skip("only PostgreSQL keeps each event's text")
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE event_texts DISABLE TRIGGER USER"))
        event_id = (
            await connection.execute(
                text(
                    "SELECT id FROM events WHERE seq = :seq AND program_id = "
                    "(SELECT id FROM programs WHERE code = :code)"
                ),
                {"seq": seq, "code": program},
            )
        ).scalar_one()
        await connection.execute(text(sql), {"event_id": event_id})
        await connection.execute(text("ALTER TABLE event_texts ENABLE TRIGGER USER"))
    await engine.dispose()
    return int(event_id)


async def test_an_untouched_history_verifies(client: httpx.AsyncClient) -> None:
    report = (await client.get(f"{API}/audit/verify")).json()
    assert report == {
        "ok": True,
        "programs_checked": 28,
        "events_checked": SEEDED_EVENTS,
        "mismatches": [],
    }


async def test_an_edited_event_is_named(client: httpx.AsyncClient, database_url: str) -> None:
    event_id = await tamper_with_event(database_url, "gas_market", 6, "never delayed")
    report = (await client.get(f"{API}/audit/verify")).json()
    assert report["ok"] is False
    assert report["mismatches"] == [
        {
            "program": "gas_market",
            "event_id": event_id,
            "reason": "hash does not match the event's content",
        }
    ]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            'UPDATE event_texts SET body = replace(body, \'"actor": "\', '
            '\'"actor": "forged \') WHERE event_id = :event_id',
            "the text the feed and the exports serve for it is not the event's",
        ),
        (
            "UPDATE event_texts SET csv = csv || ',' WHERE event_id = :event_id",
            "the text the feed and the exports serve for it is not the event's",
        ),
        (
            "UPDATE event_texts SET cursor = 'AAAA' WHERE event_id = :event_id",
            "the text the feed and the exports serve for it is not the event's",
        ),
        (
            "DELETE FROM event_texts WHERE event_id = :event_id",
            "no text is kept for it: the feed and the exports leave it out",
        ),
    ],
)
async def test_an_edited_or_missing_text_is_named(
    client: httpx.AsyncClient, database_url: str, edit: str, reason: str
) -> None:
    """The feed and the exports serve each event's kept text (PostgreSQL): one that is not
    what its event makes is named, though every chain verifies."""
    event_id = await tamper_with_text(database_url, "gas_market", 4, edit)
    report = (await client.get(f"{API}/audit/verify")).json()
    assert report["ok"] is False
    assert report["mismatches"] == [
        {"program": "gas_market", "event_id": event_id, "reason": reason}
    ]


async def test_a_write_committed_while_verifying_is_not_a_mismatch(
    client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verifying reads the programmes, then streams the events: a transition committed in
    between must not make a programme's version look ahead of, or behind, its history."""
    await create_program(client, "verified_meanwhile", roadmap="union-state-2021-2023")
    engine = create_engine(database_url)
    async with AsyncSession(engine) as session:
        read = session.scalars

        async def read_then_write(*args: Any, **kwargs: Any) -> Any:
            result = await read(*args, **kwargs)
            response = await transition(client, "verified_meanwhile", "coordinated")
            assert response.status_code == 201, response.text
            return result

        monkeypatch.setattr(session, "scalars", read_then_write)
        report = await verify_chains(session)
    await engine.dispose()
    assert report.mismatches == []
    assert report.events_checked == SEEDED_EVENTS + 1  # as of the first read: + "created"


async def test_verifying_leaves_its_connection_writable(database_url: str) -> None:
    """Verifying reads in a read-only snapshot; the connection goes back to the pool as
    writable as it came (one connection in the pool, so the write gets that one)."""
    engine = create_engine(database_url, pool_size=1)
    async with AsyncSession(engine) as session:
        assert (await verify_chains(session)).ok
    async with AsyncSession(engine) as session:
        await session.execute(
            text("UPDATE programs SET updated_at = updated_at WHERE code = 'gas_market'")
        )
        await session.commit()
    await engine.dispose()


def test_roadmap_verify_passes_on_an_untouched_history(cli: Cli, database_url: str) -> None:
    env = {"DATABASE_URL": database_url}
    clean = cli("verify", env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.startswith("ok: 28 programmes")


async def test_roadmap_verify_fails_after_tampering(cli: Cli, database_url: str) -> None:
    event_id = await tamper_with_event(database_url, "oil_market", 3, "rewritten")
    result = cli("verify", env={"DATABASE_URL": database_url})
    assert result.returncode == 1
    assert f"MISMATCH oil_market event {event_id}" in result.stdout


async def test_a_kept_digest_proves_the_past(
    cli: Cli, client: httpx.AsyncClient, database_url: str
) -> None:
    kept = (await client.get(f"{API}/audit/digest")).json()
    assert kept["last_event_id"] is not None
    await create_program(client, "after_digest")
    await transition(client, "after_digest", "coordinated")
    newer = (await client.get(f"{API}/audit/digest")).json()
    assert newer["digest"] != kept["digest"]

    env = {"DATABASE_URL": database_url}
    at = ["--digest", kept["digest"], "--at", str(kept["last_event_id"])]
    assert cli("verify", *at, env=env).returncode == 0
    searched = cli("verify", "--digest", kept["digest"], env=env)
    assert searched.returncode == 0, searched.stdout
    assert f"as of event {kept['last_event_id']}" in searched.stdout

    await tamper_with_event(database_url, "transport", 6, "rewritten")
    assert cli("verify", *at, env=env).returncode == 1
    wrong = cli("verify", "--digest", "0" * 64, env=env)
    assert wrong.returncode == 1


async def test_an_outside_program_can_check_chains_from_the_json(
    client: httpx.AsyncClient,
) -> None:
    """The README's recipe, written here without the service's code, on the API's own JSON."""
    await create_program(client, "outside_check", title="Проверка")
    await client.patch(f"{API}/programs/outside_check", json={"summary": "ü"})
    fields = [
        "program", "seq", "kind", "from_status", "to_status", "effective_date",
        "recorded_at", "actor", "on_behalf_of", "note", "source_url", "sources", "changes",
        "prev_hash",
    ]  # fmt: skip
    events = (await client.get(f"{API}/events", params={"limit": 500})).json()["items"]
    previous: dict[str, str] = {}
    for event in events:
        body = json.dumps(
            {k: event[k] for k in fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        assert hashlib.sha256(body.encode()).hexdigest() == event["hash"]
        assert event["prev_hash"] == previous.get(event["program"], "0" * 64)
        previous[event["program"]] = event["hash"]
    assert len(previous) == 29
