"""Listing decisions: by date, filtered by body, roadmap and dates, paged by an opaque cursor."""

from datetime import date
from typing import Any

import httpx
import pytest

from tests.support.builders import API, create_program
from tests.support.changes import (
    PROBLEM,
    SEEDED_DECISIONS,
    decision_body,
    get_json,
    record_decision,
)
from tests.support.strategies import cursor_of


async def test_decisions_filter_by_body_in_any_letter_case(client: httpx.AsyncClient) -> None:
    async def listed(**params: Any) -> list[str]:
        return [d["code"] for d in (await get_json(client, "/decisions", **params))["items"]]

    supreme = ["ssc-decree-6-2021", "ssc-2024-01-29"]
    assert await listed(body="Supreme State Council") == supreme
    assert await listed(body="supreme STATE council") == supreme
    assert await listed(body="PRESIDENTS") == ["presidents-2021-09-09"]
    assert await listed(body="Supreme") == []
    assert await listed(start="2021-09-10", end="2021-11-04") == SEEDED_DECISIONS[1:3]
    assert await listed(start="2021-11-05") == ["ssc-2024-01-29"]
    assert await listed(end="2021-09-09") == ["presidents-2021-09-09"]
    assert await listed(body="presidents", start="2021-09-10") == []


async def test_decisions_filter_by_the_roadmap_of_the_programmes_they_moved(
    client: httpx.AsyncClient,
) -> None:
    later = "union-state-2024-2026"
    assert (await get_json(client, "/decisions", roadmap=later))["items"] == []
    await create_program(client, "dec_later", roadmap=later)
    await create_program(client, "dec_earlier")
    for code, program in (("later-act", "dec_later"), ("earlier-act", "dec_earlier")):
        moved = await record_decision(client, decision_body(code, [(program, "coordinated")]))
        assert moved.status_code == 201, moved.text
    both = decision_body("both-act", [("dec_later", "withdrawn"), ("dec_earlier", "withdrawn")])
    assert (await record_decision(client, both)).status_code == 201
    in_later = (await get_json(client, "/decisions", roadmap=later))["items"]
    assert [d["code"] for d in in_later] == ["later-act", "both-act"]
    in_earlier = await get_json(client, "/decisions", roadmap="union-state-2021-2023")
    expected = [*SEEDED_DECISIONS, "earlier-act", "both-act"]
    assert [d["code"] for d in in_earlier["items"]] == expected
    unknown = await client.get(f"{API}/decisions", params={"roadmap": "no-such-roadmap"})
    assert unknown.status_code == 422
    assert "no-such-roadmap" in unknown.json()["detail"]


async def test_decisions_page_by_date_then_by_recording_with_no_duplicates(
    client: httpx.AsyncClient,
) -> None:
    for n in range(3):  # three on one day: the cursor must break the tie
        await create_program(client, f"dec_page{n}")
        body = decision_body(f"page-act-{n}", [(f"dec_page{n}", "coordinated")])
        assert (await record_decision(client, body)).status_code == 201
    expected = [*SEEDED_DECISIONS, "page-act-0", "page-act-1", "page-act-2"]
    assert [d["code"] for d in (await get_json(client, "/decisions"))["items"]] == expected
    for limit in (1, 2, 3):
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            page = await get_json(client, "/decisions", **params)
            assert len(page["items"]) <= limit
            seen += [d["code"] for d in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, limit


@pytest.mark.parametrize(
    "cursor",
    [
        "!!",
        cursor_of([0]),
        cursor_of([0, 1]),  # day 0 is before 0001-01-01
        cursor_of([date.max.toordinal() + 1, 1]),
        cursor_of([1, 2, 3]),
        cursor_of(["a", 1]),
        cursor_of([1, 2**31]),  # past an INTEGER id
        cursor_of([]),
    ],
)
async def test_a_cursor_the_service_did_not_issue_is_a_422(
    client: httpx.AsyncClient, cursor: str
) -> None:
    response = await client.get(f"{API}/decisions", params={"cursor": cursor})
    assert response.status_code == 422, cursor
    assert response.headers["content-type"] == PROBLEM


async def test_a_cursor_on_the_last_day_there_is_reads_an_empty_page(
    client: httpx.AsyncClient,
) -> None:
    page = await get_json(client, "/decisions", cursor=cursor_of([date.max.toordinal(), 1]))
    assert page == {"items": [], "next_cursor": None}


async def test_an_unknown_decision_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/decisions/no-such-act")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
