"""Previews: dry_run=true on decisions and transitions answers what would be recorded (or the
problem a real call would get) and writes nothing at all (issue 15)."""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from service.db import create_engine
from service.models.idempotency import IdempotencyKey
from tests.support.builders import API, bearer, create_program, history
from tests.support.changes import (
    PROBLEM,
    decision_body,
    record_decision,
    record_state,
    today,
    tomorrow,
)

# What a real write makes up as it writes: the preview cannot know them.
MADE_UP = {"id", "recorded_at", "hash"}


def without_made_up(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in MADE_UP}


async def idempotency_records(database_url: str) -> int:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(IdempotencyKey))
    await engine.dispose()
    return int(count or 0)


async def move(
    client: httpx.AsyncClient,
    code: str,
    to_status: str,
    *,
    dry_run: bool = False,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    return await client.post(
        f"{API}/programs/{code}/transitions",
        json={"to_status": to_status, **fields},
        params={"dry_run": "true"} if dry_run else {},
        headers=headers,
    )


async def test_a_previewed_decision_answers_what_would_be_recorded_and_writes_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    codes = ["dry_c", "dry_a", "dry_b"]
    for code in codes:
        await create_program(client, code)
    body = decision_body("dry-act", [(code, "coordinated") for code in codes], note="preview")
    before = await record_state(client, codes)
    records = await idempotency_records(database_url)
    key = {"Idempotency-Key": "dry-decision"}
    preview = await record_decision(client, body, dry_run=True, headers=key)
    assert preview.status_code == 200, preview.text
    assert "location" not in preview.headers
    previewed = preview.json()
    assert previewed["decision"]["programs"] == codes
    steps = [(e["program"], e["seq"], e["to_status"], e["decision"]) for e in previewed["events"]]
    assert steps == [(code, 2, "coordinated", "dry-act") for code in codes]
    assert await record_state(client, codes) == before
    assert await idempotency_records(database_url) == records
    assert (await client.get(f"{API}/decisions/dry-act")).status_code == 404

    real = await record_decision(client, body, headers=key)
    assert real.status_code == 201, real.text
    assert "idempotent-replayed" not in real.headers  # executed, not replayed
    recorded = real.json()
    assert without_made_up(previewed["decision"]) == without_made_up(recorded["decision"])
    assert [without_made_up(e) for e in previewed["events"]] == [
        without_made_up(e) for e in recorded["events"]
    ]
    assert (await record_state(client, codes)).programs == {
        code: ("coordinated", 2, '"2"') for code in codes
    }


async def test_a_previewed_transition_answers_the_resulting_status_and_writes_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await create_program(client, "dry_move")
    before = await record_state(client, ["dry_move"])
    records = await idempotency_records(database_url)
    key = {"Idempotency-Key": "dry-transition"}
    preview = await move(client, "dry_move", "coordinated", dry_run=True, headers=key, note="p")
    assert preview.status_code == 200, preview.text
    previewed = preview.json()
    assert (previewed["program"]["status"], previewed["program"]["version"]) == ("coordinated", 2)
    assert (previewed["event"]["seq"], previewed["event"]["from_status"]) == (2, "draft")
    assert await record_state(client, ["dry_move"]) == before
    assert before.programs["dry_move"] == ("draft", 1, '"1"')
    assert await idempotency_records(database_url) == records

    real = await move(client, "dry_move", "coordinated", headers=key, note="p")
    assert real.status_code == 201, real.text
    assert "idempotent-replayed" not in real.headers
    assert without_made_up(real.json()["event"]) == without_made_up(previewed["event"])
    assert await idempotency_records(database_url) == records + 1
    replay = await move(client, "dry_move", "coordinated", headers=key, note="p")
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (201, "true")
    assert len(await history(client, "dry_move")) == 2


async def test_an_explicit_dry_run_false_records(client: httpx.AsyncClient) -> None:
    await create_program(client, "dry_false")
    response = await client.post(
        f"{API}/programs/dry_false/transitions",
        json={"to_status": "coordinated"},
        params={"dry_run": "false"},
    )
    assert response.status_code == 201
    assert len(await history(client, "dry_false")) == 2


Call = Callable[[httpx.AsyncClient, bool], Awaitable[httpx.Response]]


async def cannot_move_decision(client: httpx.AsyncClient, dry_run: bool) -> httpx.Response:
    moves = [("dry_fail", "coordinated"), ("transport", "coordinated")]
    return await record_decision(client, decision_body("dry-fail", moves), dry_run=dry_run)


async def unknown_programme_decision(client: httpx.AsyncClient, dry_run: bool) -> httpx.Response:
    moves = [("dry_fail", "coordinated"), ("no_such_programme", "coordinated")]
    return await record_decision(client, decision_body("dry-fail", moves), dry_run=dry_run)


async def future_decision(client: httpx.AsyncClient, dry_run: bool) -> httpx.Response:
    body = decision_body("dry-fail", [("dry_fail", "coordinated")], day=tomorrow())
    return await record_decision(client, body, dry_run=dry_run)


async def duplicate_decision(client: httpx.AsyncClient, dry_run: bool) -> httpx.Response:
    body = decision_body("ssc-decree-6-2021", [("dry_fail", "coordinated")])
    return await record_decision(client, body, dry_run=dry_run)


async def illegal_transition(client: httpx.AsyncClient, dry_run: bool) -> httpx.Response:
    return await move(client, "dry_fail", "completed", dry_run=dry_run)


async def stale_transition(client: httpx.AsyncClient, dry_run: bool) -> httpx.Response:
    stale = {"If-Match": '"0"'}
    return await move(client, "dry_fail", "coordinated", dry_run=dry_run, headers=stale)


async def future_transition(client: httpx.AsyncClient, dry_run: bool) -> httpx.Response:
    later = tomorrow().isoformat()
    return await move(client, "dry_fail", "coordinated", dry_run=dry_run, effective_date=later)


async def early_transition(client: httpx.AsyncClient, dry_run: bool) -> httpx.Response:
    early = "2020-01-01"  # before the programme's creation (today)
    return await move(client, "dry_fail", "coordinated", dry_run=dry_run, effective_date=early)


@pytest.mark.parametrize(
    ("call", "status", "problem"),
    [
        (cannot_move_decision, 409, "decision-not-allowed"),
        (unknown_programme_decision, 422, "invalid-input"),
        (future_decision, 422, "invalid-input"),
        (duplicate_decision, 409, "conflict"),
        (illegal_transition, 409, "transition-not-allowed"),
        (stale_transition, 412, "precondition-failed"),
        (future_transition, 422, "invalid-input"),
        (early_transition, 422, "invalid-input"),
    ],
)
async def test_a_preview_that_would_fail_gets_the_same_problem(
    client: httpx.AsyncClient, call: Call, status: int, problem: str
) -> None:
    await create_program(client, "dry_fail")
    before = await record_state(client, ["dry_fail", "transport"])
    preview = await call(client, True)
    assert await record_state(client, ["dry_fail", "transport"]) == before
    real = await call(client, False)
    assert (preview.status_code, real.status_code) == (status, status)
    assert preview.headers["content-type"] == real.headers["content-type"] == PROBLEM
    assert preview.json() == real.json()
    assert preview.json()["type"].endswith(problem)
    assert preview.headers.get("etag") == real.headers.get("etag")
    assert await record_state(client, ["dry_fail", "transport"]) == before


async def test_a_preview_is_an_editors_write(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str]
) -> None:
    await create_program(client, "dry_roles")
    viewer = bearer(api_tokens["viewer"])
    body = decision_body("dry-roles", [("dry_roles", "coordinated")])
    assert (await record_decision(anonymous, body, dry_run=True, headers=viewer)).status_code == 403
    assert (await move(anonymous, "dry_roles", "coordinated", dry_run=True)).status_code == 401


async def test_a_preview_leaves_the_programme_free_for_the_real_change(
    client: httpx.AsyncClient,
) -> None:
    """Several previews in a row, each under the programme's lock, then the real thing: the
    lock and the session are released after each."""
    await create_program(client, "dry_again")
    for _ in range(3):
        assert (await move(client, "dry_again", "coordinated", dry_run=True)).status_code == 200
        body = decision_body("dry-again", [("dry_again", "withdrawn")])
        assert (await record_decision(client, body, dry_run=True)).status_code == 200
    real = await move(client, "dry_again", "coordinated", effective_date=today().isoformat())
    assert real.status_code == 201
    assert real.json()["event"]["seq"] == 2


async def test_a_correction_has_no_preview_and_is_not_made_by_asking_for_one(
    client: httpx.AsyncClient,
) -> None:
    before = await record_state(client, ["gas_market"])
    response = await client.post(
        f"{API}/programs/gas_market/corrections",
        json={"event": 7, "reason": "previewed"},
        params={"dry_run": "true"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "dry_run"]
    assert await record_state(client, ["gas_market"]) == before
