"""A source for every step: with ROADMAP_REQUIRE_SOURCES at its default, a status change, a
decision and a correction that cite nothing are refused (issue 15). The rest of the suite runs
with it turned off (tests/conftest.py); here it is on."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.config import Settings
from tests.support.builders import create_program, history, transition
from tests.support.changes import (
    PROBLEM,
    SOURCE,
    correct,
    decision_body,
    record_decision,
    record_state,
)

# A citation without an address first: source_url is the first URL among them, without the
# sentence's full stop.
CITATIONS = [
    "Decree No. 6 of 4 November 2021, as printed in Soyuz",
    "see https://example.org/decree-6.",
    "https://example.org/other",
]
FIRST_URL = "https://example.org/decree-6"

# gas_market's latest status event: carried over on 2024-01-29 (see test_corrections.py).
GAS_STATUS_EVENT = 7


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings of a server as deployed: nothing set but the database."""
    monkeypatch.delenv("ROADMAP_REQUIRE_SOURCES", raising=False)
    return Settings(database_url=database_url)


@pytest.fixture
def sources_optional(app: FastAPI) -> None:
    """ROADMAP_REQUIRE_SOURCES=false, as development setups set it."""
    app.state.settings = app.state.settings.model_copy(update={"require_sources": False})


def test_sources_are_required_by_default(settings: Settings) -> None:
    assert settings.require_sources is True
    assert Settings.model_fields["require_sources"].default is True


Change = Callable[[httpx.AsyncClient, dict[str, Any]], Awaitable[httpx.Response]]


async def a_transition(client: httpx.AsyncClient, cited: dict[str, Any]) -> httpx.Response:
    return await transition(client, "src_new", "coordinated", **cited)


async def a_decision(client: httpx.AsyncClient, cited: dict[str, Any]) -> httpx.Response:
    moves = [("src_new", "coordinated"), ("src_other", "withdrawn")]
    return await record_decision(client, decision_body("cited-act", moves, **cited))


async def a_correction(client: httpx.AsyncClient, cited: dict[str, Any]) -> httpx.Response:
    return await correct(client, "gas_market", GAS_STATUS_EVENT, **cited)


async def a_preview(client: httpx.AsyncClient, cited: dict[str, Any]) -> httpx.Response:
    body = decision_body("cited-act", [("src_new", "coordinated")], **cited)
    return await record_decision(client, body, dry_run=True)


CHANGES = [a_transition, a_decision, a_correction]


def events_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The events a change answered with: one, or a decision's several."""
    return answer["events"] if "events" in answer else [answer["event"]]


async def programmes(client: httpx.AsyncClient) -> list[str]:
    for code in ("src_new", "src_other"):
        await create_program(client, code)  # creating cites nothing and needs nothing
    return ["src_new", "src_other", "gas_market"]


@pytest.mark.parametrize("change", [*CHANGES, a_preview])
@pytest.mark.parametrize("cited", [{}, {"sources": []}, {"source_url": None}])
async def test_a_change_that_cites_nothing_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, change: Change, cited: dict[str, Any]
) -> None:
    codes = await programmes(client)
    before = await record_state(client, codes)
    response = await change(client, cited)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:roadmap:problem:invalid-input"
    assert "ROADMAP_REQUIRE_SOURCES" in problem["detail"]
    assert await record_state(client, codes) == before


@pytest.mark.parametrize("change", CHANGES)
async def test_a_list_of_sources_is_enough_and_gives_the_first_url(
    client: httpx.AsyncClient, change: Change
) -> None:
    await programmes(client)
    response = await change(client, {"sources": CITATIONS})
    assert response.status_code == 201, response.text
    answer = response.json()
    for event in events_of(answer):
        assert (event["source_url"], event["sources"]) == (FIRST_URL, CITATIONS)
        assert (await history(client, event["program"]))[-1] == event
    if "decision" in answer:
        decision = answer["decision"]
        assert (decision["source_url"], decision["sources"]) == (FIRST_URL, CITATIONS)


@pytest.mark.parametrize("change", CHANGES)
async def test_a_source_url_alone_is_enough(client: httpx.AsyncClient, change: Change) -> None:
    await programmes(client)
    response = await change(client, {"source_url": SOURCE})
    assert response.status_code == 201, response.text
    for event in events_of(response.json()):
        assert (event["source_url"], event["sources"]) == (SOURCE, [SOURCE])


@pytest.mark.parametrize("change", CHANGES)
async def test_citations_without_an_address_are_enough(
    client: httpx.AsyncClient, change: Change
) -> None:
    await programmes(client)
    response = await change(client, {"sources": CITATIONS[:1]})
    assert response.status_code == 201, response.text
    for event in events_of(response.json()):
        assert (event["source_url"], event["sources"]) == (None, CITATIONS[:1])


async def test_a_given_source_url_leads_the_list(client: httpx.AsyncClient) -> None:
    """An event's source_url is always among its own citations."""
    await programmes(client)
    response = await a_transition(client, {"source_url": SOURCE, "sources": CITATIONS})
    assert response.status_code == 201, response.text
    event = response.json()["event"]
    assert (event["source_url"], event["sources"]) == (SOURCE, [SOURCE, *CITATIONS])
    listed = [CITATIONS[0], SOURCE]  # already listed: kept where it is, not repeated
    again = await transition(client, "src_new", "draft", source_url=SOURCE, sources=listed)
    assert again.status_code == 201, again.text
    assert again.json()["event"]["sources"] == listed


@pytest.mark.usefixtures("sources_optional")
@pytest.mark.parametrize("change", CHANGES)
async def test_with_sources_optional_a_change_may_cite_nothing(
    client: httpx.AsyncClient, change: Change
) -> None:
    await programmes(client)
    response = await change(client, {})
    assert response.status_code == 201, response.text
    for event in events_of(response.json()):
        assert (event["source_url"], event["sources"]) == (None, [])


async def test_a_missing_programme_is_a_404_before_a_missing_source(
    client: httpx.AsyncClient,
) -> None:
    """What is wrong with the target is said first: citing a source would not help."""
    for path in ("/programs/nope/transitions", "/programs/nope/corrections"):
        body = (
            {"to_status": "coordinated"} if "transitions" in path else {"event": 2, "reason": "x"}
        )
        answer = await client.post(f"/api/v1{path}", json=body)
        assert answer.status_code == 404, answer.text
        assert answer.json()["type"] == "urn:roadmap:problem:not-found"
