"""Recording a decision: one act moves many programmes in one transaction, or none, and each
event it writes names it under its hash (issue 15)."""

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.audit.chain import HASHED_FIELDS, event_hash
from tests.support.builders import API, SEEDED_EVENTS, bearer, create_program, history, transition
from tests.support.changes import (
    PROBLEM,
    SOURCE,
    decision_body,
    get_json,
    readme_hash,
    record_decision,
    record_state,
    settled_feed,
    today,
    tomorrow,
    yesterday,
)


async def test_a_decision_moves_three_new_programmes_in_one_go(client: httpx.AsyncClient) -> None:
    codes = ["dec_gamma", "dec_alpha", "dec_beta"]  # not in code order: events follow the list
    for code in codes:
        await create_program(client, code)
    body = decision_body(
        "presidents-test-1",
        [(code, "coordinated") for code in codes],
        body="Presidents",
        title_ru="Решение президентов",
        number="12",
        note="coordinated together",
        source_url=SOURCE,
        actor="Permanent Committee",
    )
    response = await record_decision(client, body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/api/v1/decisions/presidents-test-1"
    answer = response.json()
    decision = answer["decision"]
    fields = ("code", "title_ru", "body", "number", "date", "source_url")
    assert {k: decision[k] for k in fields} == {
        "code": "presidents-test-1",
        "title_ru": "Решение президентов",
        "body": "Presidents",
        "number": "12",
        "date": today().isoformat(),
        "source_url": SOURCE,
    }
    assert (decision["actor"], decision["on_behalf_of"]) == ("test-editor", "Permanent Committee")
    assert decision["programs"] == codes
    events = answer["events"]
    assert [e["program"] for e in events] == codes
    for event in events:
        assert (event["seq"], event["kind"], event["from_status"], event["to_status"]) == (
            2,
            "status_changed",
            "draft",
            "coordinated",
        )
        assert (event["decision"], event["decision_attributed"]) == ("presidents-test-1", False)
        assert event["effective_date"] == today().isoformat()
        assert (event["source_url"], event["sources"], event["note"]) == (
            SOURCE,
            [SOURCE],
            "coordinated together",
        )
        assert (event["actor"], event["on_behalf_of"]) == ("test-editor", "Permanent Committee")
        assert (await history(client, event["program"]))[-1] == event
        program = await client.get(f"{API}/programs/{event['program']}")
        assert (program.json()["status"], program.headers["etag"]) == ("coordinated", '"2"')
    assert await get_json(client, "/decisions/presidents-test-1") == answer
    verified = await get_json(client, "/audit/verify")
    assert (verified["ok"], verified["events_checked"]) == (True, SEEDED_EVENTS + 6)


async def test_the_feed_and_the_exports_name_the_decision(client: httpx.AsyncClient) -> None:
    await create_program(client, "dec_feed")
    response = await record_decision(client, decision_body("feed-act", [("dec_feed", "withdrawn")]))
    assert response.status_code == 201, response.text
    written = response.json()["events"][0]
    await settled_feed(client)  # on PostgreSQL, an event may reach the feed a moment later
    feed = (await get_json(client, "/events", program="dec_feed"))["items"]
    assert [(e["kind"], e["decision"]) for e in feed] == [
        ("created", None),
        ("status_changed", "feed-act"),
    ]
    assert feed[-1] == written
    lines = (await client.get(f"{API}/export/events.ndjson", params={"program": "dec_feed"})).text
    exported = [json.loads(line) for line in lines.splitlines()]
    assert [(e["id"], e["decision"]) for e in exported] == [
        (feed[0]["id"], None),
        (written["id"], "feed-act"),
    ]
    text = (await client.get(f"{API}/export/events.csv", params={"program": "dec_feed"})).text
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [(row["hash"], row["decision"], row["decision_attributed"]) for row in rows] == [
        (feed[0]["hash"], "", "False"),
        (written["hash"], "feed-act", "False"),
    ]


async def test_the_hash_of_an_event_covers_its_decision(client: httpx.AsyncClient) -> None:
    await create_program(client, "dec_hashed")
    moves = [("dec_hashed", "coordinated"), ("dec_hashed", "ministerially_approved")]
    response = await record_decision(client, decision_body("hashed-act", moves))
    assert response.status_code == 201, response.text
    first, second = response.json()["events"]
    assert first["decision_attributed"] is False
    assert event_hash(first) == first["hash"] == readme_hash(first)
    assert readme_hash({**first, "decision_attributed": True}) != first["hash"]
    assert event_hash({**first, "decision": "another-act"}) != first["hash"]
    assert event_hash({**first, "decision": None}) != first["hash"]
    assert second["prev_hash"] == first["hash"]
    assert event_hash(second) == second["hash"]


async def test_events_without_a_decision_hash_exactly_as_before(client: httpx.AsyncClient) -> None:
    await create_program(client, "dec_plain")
    moved = await transition(client, "dec_plain", "coordinated", source_url=SOURCE)
    assert moved.status_code == 201, moved.text
    for event in await history(client, "dec_plain"):
        assert event["decision"] is None
        without_the_key = {field: event[field] for field in HASHED_FIELDS}
        body = json.dumps(without_the_key, sort_keys=True, separators=(",", ":"))
        assert hashlib.sha256(body.encode()).hexdigest() == event["hash"]


async def test_one_programme_may_take_several_steps_in_order(client: httpx.AsyncClient) -> None:
    await create_program(client, "dec_steps")
    moves = [
        ("dec_steps", "coordinated"),
        ("dec_steps", "ministerially_approved"),
        ("dec_steps", "supreme_council_approved"),
    ]
    response = await record_decision(client, decision_body("steps-act", moves))
    assert response.status_code == 201, response.text
    events = response.json()["events"]
    assert [(e["seq"], e["from_status"], e["to_status"]) for e in events] == [
        (2, "draft", "coordinated"),
        (3, "coordinated", "ministerially_approved"),
        (4, "ministerially_approved", "supreme_council_approved"),
    ]
    assert response.json()["decision"]["programs"] == ["dec_steps"]
    program = await get_json(client, "/programs/dec_steps")
    assert (program["status"], program["version"]) == ("supreme_council_approved", 4)


async def test_steps_out_of_order_are_refused_from_where_the_one_before_left(
    client: httpx.AsyncClient,
) -> None:
    await create_program(client, "dec_order")
    moves = [("dec_order", "ministerially_approved"), ("dec_order", "coordinated")]
    response = await record_decision(client, decision_body("order-act", moves))
    assert response.status_code == 409, response.text
    (refusal,) = response.json()["errors"]
    assert (refusal["to_status"], refusal["current_status"]) == ("ministerially_approved", "draft")
    assert refusal["allowed_targets"] == ["coordinated", "withdrawn"]
    assert len(await history(client, "dec_order")) == 1


async def test_a_later_step_is_checked_from_where_the_step_before_leaves_it(
    client: httpx.AsyncClient,
) -> None:
    await create_program(client, "dec_after")
    moves = [("dec_after", "coordinated"), ("dec_after", "completed")]
    response = await record_decision(client, decision_body("after-act", moves))
    assert response.status_code == 409, response.text
    (refusal,) = response.json()["errors"]
    assert {k: v for k, v in refusal.items() if k != "reason"} == {
        "program": "dec_after",
        "to_status": "completed",
        "refused": "step",
        "current_status": "coordinated",
        "status_effective_date": today().isoformat(),
        "allowed_targets": ["draft", "ministerially_approved", "withdrawn"],
    }
    assert len(await history(client, "dec_after")) == 1


# --- refusals -----------------------------------------------------------------------------------


async def test_a_decision_with_a_programme_that_cannot_move_records_nothing(
    client: httpx.AsyncClient,
) -> None:
    codes = ["dec_r1", "dec_r2", "dec_r3"]
    for code in codes:
        await create_program(client, code)
    transport = await get_json(client, "/programs/transport")
    before = await record_state(client, [*codes, "transport"])
    moves = [(code, "coordinated") for code in codes]
    moves.insert(1, ("transport", "coordinated"))
    response = await record_decision(client, decision_body("refused-act", moves))
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:roadmap:problem:decision-not-allowed"
    assert "transport" in problem["detail"]
    (refusal,) = problem["errors"]
    assert {k: v for k, v in refusal.items() if k != "reason"} == {
        "program": "transport",
        "to_status": "coordinated",
        "refused": "step",
        "current_status": "completed",
        "status_effective_date": transport["status_effective_date"],
        "allowed_targets": [],
    }
    assert "completed" in refusal["reason"]
    assert await record_state(client, [*codes, "transport"]) == before
    assert (await client.get(f"{API}/decisions/refused-act")).status_code == 404


async def test_a_decision_dated_before_a_programmes_current_status_is_refused(
    client: httpx.AsyncClient,
) -> None:
    for code in ("dec_d1", "dec_d2"):
        await create_program(client, code)
    before = await record_state(client, ["dec_d1", "dec_d2"])
    moves = [("dec_d1", "coordinated"), ("dec_d2", "withdrawn")]
    response = await record_decision(client, decision_body("early-act", moves, day=yesterday()))
    assert response.status_code == 409
    errors = response.json()["errors"]
    assert [(e["program"], e["to_status"]) for e in errors] == moves
    for refusal in errors:
        assert refusal["current_status"] == "draft"
        assert refusal["status_effective_date"] == today().isoformat()
        assert refusal["refused"] == "date"
        assert refusal["allowed_targets"] == ["coordinated", "withdrawn"]
        assert "earlier than" in refusal["reason"]
    assert await record_state(client, ["dec_d1", "dec_d2"]) == before


async def test_an_unknown_programme_is_a_422_that_names_it(client: httpx.AsyncClient) -> None:
    await create_program(client, "dec_known")
    before = await record_state(client, ["dec_known"])
    moves = [("dec_known", "coordinated"), ("no_such_programme", "coordinated")]
    response = await record_decision(client, decision_body("unknown-act", moves))
    assert response.status_code == 422
    problem = response.json()
    assert "no_such_programme" in problem["detail"]
    assert problem["errors"] == [
        {
            "loc": ["body", "transitions", 1, "program"],
            "msg": "there is no programme with code 'no_such_programme'",
            "type": "unknown_value",
        }
    ]
    assert await record_state(client, ["dec_known"]) == before


async def test_a_decision_code_is_recorded_once(client: httpx.AsyncClient) -> None:
    await create_program(client, "dec_dup")
    before = await record_state(client, ["dec_dup"])
    response = await record_decision(
        client, decision_body("ssc-decree-6-2021", [("dec_dup", "coordinated")])
    )
    assert response.status_code == 409
    assert response.json()["type"] == "urn:roadmap:problem:conflict"
    assert "ssc-decree-6-2021" in response.json()["detail"]
    assert await record_state(client, ["dec_dup"]) == before
    decree = await get_json(client, "/decisions/ssc-decree-6-2021")
    assert (decree["decision"]["date"], len(decree["events"])) == ("2021-11-04", 56)


async def test_a_decision_dated_in_the_future_is_refused(client: httpx.AsyncClient) -> None:
    await create_program(client, "dec_future")
    before = await record_state(client, ["dec_future"])
    body = decision_body("future-act", [("dec_future", "coordinated")], day=tomorrow())
    response = await record_decision(client, body)
    assert response.status_code == 422
    assert response.json()["type"] == "urn:roadmap:problem:invalid-input"
    assert "future" in response.json()["detail"]
    assert await record_state(client, ["dec_future"]) == before


@pytest.mark.parametrize(
    "change",
    [
        {"transitions": []},
        {"code": "Not A Code"},
        {"transitions": [{"program": "transport", "to_status": "finished"}]},
        {"body": ""},
        {"source_url": "ftp://example.org/"},
        {"decision": "smuggled"},
    ],
)
async def test_malformed_decisions_are_refused(
    client: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    body = {**decision_body("malformed-act", [("transport", "draft")]), **change}
    response = await record_decision(client, body)
    assert response.status_code == 422, change
    assert response.json()["type"] == "urn:roadmap:problem:validation"


async def test_only_an_editor_records_a_decision(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str]
) -> None:
    await create_program(client, "dec_roles")
    body = decision_body("roles-act", [("dec_roles", "coordinated")])
    before = await record_state(client, ["dec_roles"])
    viewer = await record_decision(anonymous, body, headers=bearer(api_tokens["viewer"]))
    assert viewer.status_code == 403
    assert (await record_decision(anonymous, body)).status_code == 401
    assert await record_state(client, ["dec_roles"]) == before
    admin = await record_decision(anonymous, body, headers=bearer(api_tokens["admin"]))
    assert admin.status_code == 201
    assert admin.json()["decision"]["actor"] == "test-admin"


async def test_a_retried_decision_is_recorded_once(client: httpx.AsyncClient) -> None:
    await create_program(client, "dec_retry")
    body = decision_body("retried-act", [("dec_retry", "coordinated")])
    key = {"Idempotency-Key": "decision-retry-1"}
    first = await record_decision(client, body, headers=key)
    second = await record_decision(client, body, headers=key)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(await history(client, "dec_retry")) == 2
    codes = (await record_state(client)).decisions
    assert codes.count("retried-act") == 1


async def test_a_step_read_at_an_older_version_refuses_the_whole_decision(
    client: httpx.AsyncClient,
) -> None:
    """A decision's If-Match: each step may name the version it was read at."""
    for code in ("ver_a", "ver_b"):
        await create_program(client, code)
    assert (await transition(client, "ver_b", "coordinated")).status_code == 201  # now at 2
    body = decision_body("stale-act", [("ver_a", "coordinated"), ("ver_b", "draft")])
    body["transitions"][0]["version"] = 1
    body["transitions"][1]["version"] = 1
    stale = await record_decision(client, body)
    assert stale.status_code == 412, stale.text
    assert stale.json()["versions"] == {"ver_b": 2}
    assert [len(await history(client, code)) for code in ("ver_a", "ver_b")] == [1, 2]
    body["transitions"][1]["version"] = 2
    fresh = await record_decision(client, body)
    assert fresh.status_code == 201, fresh.text


async def test_a_server_requiring_if_match_requires_a_version_on_every_step(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"require_if_match": True})
    await create_program(client, "ver_c")
    body = decision_body("versionless-act", [("ver_c", "coordinated")])
    missing = await record_decision(client, body)
    assert missing.status_code == 428, missing.text
    assert len(await history(client, "ver_c")) == 1
    body["transitions"][0]["version"] = 1
    assert (await record_decision(client, body)).status_code == 201


async def test_a_decision_and_its_events_are_recorded_at_one_moment(
    client: httpx.AsyncClient,
) -> None:
    """So a known_at read sees all of an act or none of it."""
    codes = ["one_a", "one_b", "one_c"]
    for code in codes:
        await create_program(client, code)
    answer = await record_decision(
        client, decision_body("one-moment", [(code, "coordinated") for code in codes])
    )
    assert answer.status_code == 201, answer.text
    moments = {event["recorded_at"] for event in answer.json()["events"]}
    assert moments == {answer.json()["decision"]["recorded_at"]}
