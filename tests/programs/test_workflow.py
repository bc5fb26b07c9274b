"""The workflow table, checked against the lifecycle as the issue states it, pair by pair."""

import itertools

import httpx
import pytest

from service.rules.workflow import (
    STATES,
    Status,
    allowed_targets,
    is_allowed,
    workflow_document,
)
from tests.support.builders import API, create_program, history, transition, walk_to

S = Status
NON_TERMINAL = [
    S.DRAFT,
    S.COORDINATED,
    S.MINISTERIALLY_APPROVED,
    S.SUPREME_COUNCIL_APPROVED,
    S.IN_IMPLEMENTATION,
    S.DELAYED,
]
# Written out independently of service.rules.workflow, from the specification.
EXPECTED = {
    (S.DRAFT, S.COORDINATED),
    (S.COORDINATED, S.MINISTERIALLY_APPROVED),
    (S.MINISTERIALLY_APPROVED, S.SUPREME_COUNCIL_APPROVED),
    (S.SUPREME_COUNCIL_APPROVED, S.IN_IMPLEMENTATION),
    (S.IN_IMPLEMENTATION, S.COMPLETED),
    (S.IN_IMPLEMENTATION, S.DELAYED),
    (S.DELAYED, S.IN_IMPLEMENTATION),
    (S.DELAYED, S.COMPLETED),
    (S.IN_IMPLEMENTATION, S.CARRIED_OVER),
    (S.DELAYED, S.CARRIED_OVER),
    (S.COORDINATED, S.DRAFT),
    (S.MINISTERIALLY_APPROVED, S.DRAFT),
} | {(state, S.WITHDRAWN) for state in NON_TERMINAL}

ALL_PAIRS = list(itertools.product(list(Status), repeat=2))


def test_there_are_nine_states_and_three_are_terminal() -> None:
    assert len(STATES) == 9
    assert {s.name for s in STATES if s.terminal} == {S.COMPLETED, S.CARRIED_OVER, S.WITHDRAWN}
    assert [s.name for s in STATES if s.initial] == [S.DRAFT]


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=lambda s: s.value)
def test_every_pair_follows_the_table(source: Status, target: Status) -> None:
    assert is_allowed(source, target) == ((source, target) in EXPECTED)


def test_terminal_states_allow_nothing() -> None:
    for state in STATES:
        if state.terminal:
            assert allowed_targets(state.name) == []


def test_published_document_matches_the_table() -> None:
    document = workflow_document()
    assert {(t["from"], t["to"]) for t in document["transitions"]} == {
        (a.value, b.value) for a, b in EXPECTED
    }
    assert len(document["transitions"]) == len(EXPECTED)


async def test_workflow_endpoint_publishes_states_and_transitions(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/workflow")
    assert response.status_code == 200
    body = response.json()
    assert body["states"][0]["name"] == "draft"
    assert set(body["states"][0]) == {"name", "label", "initial", "terminal"}
    assert {(t["from"], t["to"]) for t in body["transitions"]} == {
        (a.value, b.value) for a, b in EXPECTED
    }


async def test_every_pair_through_the_api(client: httpx.AsyncClient) -> None:
    """For each of the 81 (from, to) pairs: bring a fresh programme to `from`, ask for `to`."""
    for number, (source, target) in enumerate(ALL_PAIRS):
        code = f"pair-{number}"
        await create_program(client, code)
        await walk_to(client, code, source)
        before = await history(client, code)
        response = await transition(client, code, target.value)
        if (source, target) in EXPECTED:
            assert response.status_code == 201, (source, target, response.text)
            assert response.json()["program"]["status"] == target.value
        else:
            assert response.status_code == 409, (source, target, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert await history(client, code) == before
