"""Corrections: a wrongly recorded status change is voided by a new event, never edited, and
reads of the present and of the past show the corrected picture (issue 15)."""

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.builders import API, SEEDED_EVENTS, bearer, create_program, history, transition
from tests.support.changes import (
    PROBLEM,
    SOURCE,
    correct,
    decision_body,
    get_json,
    record_decision,
    record_state,
    status_on,
    today,
)

# gas_market's seeded history: seq 6 delayed (2022-12-16), seq 7 carried over (2024-01-29, the
# Supreme State Council's act), seq 8 a milestone (due 2023-12-01, never done).
VOIDED, MILESTONE = 7, 8


async def moment() -> str:
    """Now, as known_at; the next write is recorded strictly later."""
    now = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.01)
    return now


async def timeline(client: httpx.AsyncClient, **params: Any) -> dict[str, dict[str, int]]:
    body = await get_json(client, "/stats/timeline", interval="quarter", **params)
    return {point["date"]: point["by_status"] for point in body["points"]}


async def test_a_correction_restores_the_status_before_and_keeps_both_events(
    client: httpx.AsyncClient,
) -> None:
    voided = (await history(client, "gas_market"))[VOIDED - 1]
    assert (voided["to_status"], voided["effective_date"]) == ("carried_over", "2024-01-29")
    response = await correct(
        client, "gas_market", VOIDED, reason="not carried over", source_url=SOURCE
    )
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"9"'
    program, event = response.json()["program"], response.json()["event"]
    assert (program["status"], program["status_effective_date"], program["version"]) == (
        "delayed",
        "2022-12-16",
        9,
    )
    assert {k: event[k] for k in ("seq", "kind", "from_status", "to_status", "effective_date")} == {
        "seq": 9,
        "kind": "corrected",
        "from_status": "carried_over",
        "to_status": "delayed",
        "effective_date": "2022-12-16",
    }
    assert (event["changes"], event["note"], event["decision"]) == (
        {"voids": VOIDED},
        "not carried over",
        None,
    )
    assert (event["source_url"], event["sources"], event["actor"]) == (
        SOURCE,
        [SOURCE],
        "test-editor",
    )
    events = await history(client, "gas_market")
    assert [e["seq"] for e in events] == list(range(1, 10))
    assert events[VOIDED - 1] == voided
    assert events[-1] == event
    assert await get_json(client, "/programs/gas_market") == program
    verified = await get_json(client, "/audit/verify")
    assert (verified["ok"], verified["events_checked"]) == (True, SEEDED_EVENTS + 1)
    carried = await get_json(client, "/programs", status="carried_over")
    assert {p["code"] for p in carried["items"]} == {"oil_market", "electricity_market"}


async def test_known_at_before_the_correction_shows_what_was_believed(
    client: httpx.AsyncClient,
) -> None:
    believed = await moment()
    assert (await correct(client, "gas_market", VOIDED)).status_code == 201
    assert await status_on(client, "gas_market", "2024-06-30") == "delayed"
    assert await status_on(client, "gas_market", "2024-06-30", believed) == "carried_over"
    assert await status_on(client, "gas_market", "2023-06-30", believed) == "delayed"
    assert await status_on(client, "gas_market", "2022-12-01") == "in_implementation"
    then = await get_json(client, "/programs/gas_market", as_of="2024-06-30", known_at=believed)
    assert (then["status_effective_date"], then["version"]) == ("2024-01-29", 9)
    listed = await get_json(
        client, "/programs", as_of="2024-06-30", known_at=believed, status="carried_over"
    )
    assert "gas_market" in {p["code"] for p in listed["items"]}


async def test_the_timeline_shows_the_corrected_picture_unless_asked_for_the_past(
    client: httpx.AsyncClient,
) -> None:
    span = {"start": "2023-01-01", "end": "2024-06-30"}
    before = await timeline(client, **span)
    believed = await moment()
    assert (await correct(client, "gas_market", VOIDED)).status_code == 201
    after = await timeline(client, **span)
    assert before["2023-12-31"] == after["2023-12-31"]
    assert before["2023-12-31"]["delayed"] == 1
    for day in ("2024-03-31", "2024-06-30"):
        assert (before[day]["carried_over"], before[day]["delayed"]) == (3, 0)
        assert (after[day]["carried_over"], after[day]["delayed"]) == (2, 1)
        assert sum(after[day].values()) == 28
    assert await timeline(client, **span, known_at=believed) == before
    summary = await get_json(client, "/stats/summary", as_of="2024-06-30")
    assert (summary["by_status"]["carried_over"], summary["by_status"]["delayed"]) == (2, 1)


async def test_milestones_follow_the_restored_status(client: httpx.AsyncClient) -> None:
    progress = (await get_json(client, "/programs/gas_market"))["progress"]
    assert (progress["milestones_overdue"], progress["milestones_missed"]) == (0, 1)
    believed = await moment()
    corrected = await correct(client, "gas_market", VOIDED)
    assert corrected.status_code == 201
    progress = (await get_json(client, "/programs/gas_market"))["progress"]
    assert (progress["milestones_overdue"], progress["milestones_missed"]) == (1, 0)
    assert corrected.json()["program"]["progress"] == progress
    (milestone,) = (await get_json(client, "/programs/gas_market/milestones"))["items"]
    assert milestone["state"] == "overdue"
    then = await get_json(client, "/programs/gas_market", as_of="2024-06-30", known_at=believed)
    assert then["progress"]["milestones_missed"] == 1


async def test_after_a_correction_a_transition_may_be_dated_before_the_voided_change(
    client: httpx.AsyncClient,
) -> None:
    assert (await correct(client, "gas_market", VOIDED)).status_code == 201
    too_early = await transition(client, "gas_market", "completed", effective_date="2022-12-15")
    assert too_early.status_code == 422  # before the restored status (delayed, 2022-12-16)
    assert "2022-12-16" in too_early.json()["detail"]
    moved = await transition(client, "gas_market", "completed", effective_date="2023-06-30")
    assert moved.status_code == 201, moved.text
    assert moved.json()["event"]["from_status"] == "delayed"
    assert [
        await status_on(client, "gas_market", day)
        for day in ("2022-12-15", "2022-12-16", "2023-06-29", "2023-06-30", "2024-06-30")
    ] == ["in_implementation", "delayed", "delayed", "completed", "completed"]
    points = await timeline(client, start="2023-01-01", end="2024-06-30")
    assert (points["2023-03-31"]["delayed"], points["2023-03-31"]["completed"]) == (1, 7)
    assert (points["2023-06-30"]["delayed"], points["2023-06-30"]["completed"]) == (0, 8)
    assert (points["2024-06-30"]["carried_over"], points["2024-06-30"]["completed"]) == (2, 26)
    progress = (await get_json(client, "/programs/gas_market"))["progress"]
    assert (progress["milestones_overdue"], progress["milestones_missed"]) == (0, 1)
    assert (await get_json(client, "/audit/verify"))["ok"] is True


async def test_a_new_programme_goes_back_to_draft_and_on_again(client: httpx.AsyncClient) -> None:
    await create_program(client, "corr_new")
    assert (await transition(client, "corr_new", "coordinated")).status_code == 201
    corrected = await correct(client, "corr_new", 2)
    assert corrected.status_code == 201, corrected.text
    program = corrected.json()["program"]
    assert (program["status"], program["status_effective_date"]) == ("draft", today().isoformat())
    assert (await transition(client, "corr_new", "withdrawn")).status_code == 201
    assert [(e["kind"], e["to_status"]) for e in await history(client, "corr_new")] == [
        ("created", "draft"),
        ("status_changed", "coordinated"),
        ("corrected", "draft"),
        ("status_changed", "withdrawn"),
    ]


async def test_a_change_made_by_a_decision_can_be_corrected(client: httpx.AsyncClient) -> None:
    for code in ("corr_dec_a", "corr_dec_b"):
        await create_program(client, code)
    moves = [("corr_dec_a", "coordinated"), ("corr_dec_b", "coordinated")]
    assert (await record_decision(client, decision_body("corr-act", moves))).status_code == 201
    corrected = await correct(client, "corr_dec_b", 2)
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["event"]["decision"] is None
    assert (await get_json(client, "/programs/corr_dec_a"))["status"] == "coordinated"
    assert (await get_json(client, "/programs/corr_dec_b"))["status"] == "draft"
    assert len((await get_json(client, "/decisions/corr-act"))["events"]) == 2


# --- refusals -----------------------------------------------------------------------------------


async def refused(client: httpx.AsyncClient, code: str, event: int, latest: int) -> None:
    """The correction is a 409 naming the latest status event, and writes nothing."""
    before = await record_state(client, [code])
    response = await correct(client, code, event)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:roadmap:problem:correction-not-allowed"
    assert problem["latest_status_event"] == latest
    assert await record_state(client, [code]) == before


async def test_only_the_latest_status_event_can_be_voided(client: httpx.AsyncClient) -> None:
    await refused(client, "gas_market", 6, latest=VOIDED)
    await refused(client, "gas_market", MILESTONE, latest=VOIDED)  # newest, but no status change
    await refused(client, "gas_market", 1, latest=VOIDED)


async def test_a_correction_cannot_itself_be_corrected(client: httpx.AsyncClient) -> None:
    assert (await correct(client, "gas_market", VOIDED)).status_code == 201
    await refused(client, "gas_market", 9, latest=9)
    await refused(client, "gas_market", VOIDED, latest=9)


async def test_the_created_event_cannot_be_corrected(client: httpx.AsyncClient) -> None:
    await create_program(client, "corr_created")
    await refused(client, "corr_created", 1, latest=1)


@pytest.mark.parametrize("event", [MILESTONE + 1, 2**31 - 1, 0, -1])
async def test_a_seq_the_programme_does_not_have_is_a_422(
    client: httpx.AsyncClient, event: int
) -> None:
    before = await record_state(client, ["gas_market"])
    response = await correct(client, "gas_market", event)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert await record_state(client, ["gas_market"]) == before


async def test_a_correction_needs_a_reason_and_a_known_programme(
    client: httpx.AsyncClient,
) -> None:
    no_reason = await client.post(f"{API}/programs/gas_market/corrections", json={"event": 7})
    assert no_reason.status_code == 422
    assert (await correct(client, "gas_market", VOIDED, reason="")).status_code == 422
    assert (await correct(client, "no_such_programme", 2)).status_code == 404
    assert len(await history(client, "gas_market")) == MILESTONE


async def test_a_stale_if_match_is_412(client: httpx.AsyncClient) -> None:
    await create_program(client, "corr_etag")
    stale = (await client.get(f"{API}/programs/corr_etag")).headers["etag"]
    moved = await transition(client, "corr_etag", "coordinated")
    before = await record_state(client, ["corr_etag"])
    response = await correct(client, "corr_etag", 2, headers={"If-Match": stale})
    assert response.status_code == 412
    assert response.headers["etag"] == moved.headers["etag"] == '"2"'
    assert await record_state(client, ["corr_etag"]) == before
    fresh = await correct(client, "corr_etag", 2, headers={"If-Match": moved.headers["etag"]})
    assert fresh.status_code == 201
    assert fresh.headers["etag"] == '"3"'


async def test_if_match_can_be_required(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.settings = app.state.settings.model_copy(update={"require_if_match": True})
    missing = await correct(client, "gas_market", VOIDED)
    assert missing.status_code == 428
    assert len(await history(client, "gas_market")) == MILESTONE
    ok = await correct(client, "gas_market", VOIDED, headers={"If-Match": '"8"'})
    assert ok.status_code == 201


async def test_a_retried_correction_is_recorded_once(client: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "correct-gas-once"}
    first = await correct(client, "gas_market", VOIDED, headers=key)
    second = await correct(client, "gas_market", VOIDED, headers=key)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["etag"] == first.headers["etag"]
    assert len(await history(client, "gas_market")) == MILESTONE + 1
    # Without the key, the same request is a new one, and refused: seq 7 is no longer the latest.
    assert (await correct(client, "gas_market", VOIDED)).status_code == 409


async def test_only_an_editor_corrects(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str]
) -> None:
    viewer = await correct(anonymous, "gas_market", VOIDED, headers=bearer(api_tokens["viewer"]))
    assert viewer.status_code == 403
    assert (await correct(anonymous, "gas_market", VOIDED)).status_code == 401
    assert len(await history(client, "gas_market")) == MILESTONE
