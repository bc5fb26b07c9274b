"""The programmes API: reading, creating, patching and changing status."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.builders import API, create_program, history, transition

PROBLEM = "application/problem+json"


def today() -> str:
    return datetime.now(UTC).date().isoformat()


async def test_list_pages_with_an_opaque_cursor_in_a_stable_order(
    client: httpx.AsyncClient,
) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(f"{API}/programs", params=params)).json()
        seen += [p["code"] for p in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    everything = (await client.get(f"{API}/programs", params={"limit": 500})).json()
    assert seen == [p["code"] for p in everything["items"]]
    assert len(seen) == 28


async def test_list_filters_by_status_sector_roadmap_and_title(client: httpx.AsyncClient) -> None:
    carried = (await client.get(f"{API}/programs", params={"status": "carried_over"})).json()
    assert {p["code"] for p in carried["items"]} == {
        "gas_market",
        "oil_market",
        "electricity_market",
    }
    finance = (await client.get(f"{API}/programs", params={"sector": "finance"})).json()
    assert finance["items"]
    assert all(p["sector"] == "finance" for p in finance["items"])
    other = await client.get(f"{API}/programs", params={"roadmap": "union-state-2024-2026"})
    assert other.json()["items"] == []
    gas = (await client.get(f"{API}/programs", params={"q": "GAS"})).json()
    assert "gas_market" in {p["code"] for p in gas["items"]}
    percent = (await client.get(f"{API}/programs", params={"q": "%"})).json()
    assert percent["items"] == []


async def test_list_rejects_bad_parameters(client: httpx.AsyncClient) -> None:
    for params in ({"limit": 501}, {"limit": 0}, {"status": "done"}, {"cursor": "!!"}):
        response = await client.get(f"{API}/programs", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == PROBLEM


async def test_one_programme_carries_an_etag(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/programs/gas_market")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "carried_over"
    assert body["status_label"] == "Carried over"
    assert body["version"] == 8  # seven status steps and one milestone
    assert response.headers["etag"] == '"8"'


async def test_unknown_programme_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/programs/no_such_programme")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Not found"


async def test_create_starts_in_draft_with_a_created_event(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/programs",
        json={"code": "new_programme", "title": "A new programme", "sector": "energy"},
    )
    assert response.status_code == 201
    assert response.headers["location"] == "/api/v1/programs/new_programme"
    body = response.json()
    assert body["program"]["status"] == "draft"
    assert body["program"]["roadmap"] == "union-state-2021-2023"
    assert body["event"]["kind"] == "created"
    assert body["event"]["effective_date"] == today()
    assert (await client.get(f"{API}/programs/new_programme")).json() == body["program"]


async def test_create_refuses_duplicates_and_bad_input(client: httpx.AsyncClient) -> None:
    duplicate = await client.post(f"{API}/programs", json={"code": "gas_market", "title": "x"})
    assert duplicate.status_code == 409
    for body in (
        {"code": "Bad Code", "title": "x"},
        {"code": "ok_code"},
        {"code": "ok_code", "title": "x", "status": "completed"},
        {"code": "ok_code", "title": "x", "version": 9},
        {"code": "ok_code", "title": "x", "roadmap": "no-such-roadmap"},
    ):
        response = await client.post(f"{API}/programs", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == PROBLEM
    assert (await client.get(f"{API}/programs/ok_code")).status_code == 404


async def test_patch_changes_descriptive_fields_and_records_them(
    client: httpx.AsyncClient,
) -> None:
    title = (await client.get(f"{API}/programs/transport")).json()["title"]
    response = await client.patch(
        f"{API}/programs/transport",
        json={"summary": "New summary", "title": title, "note": "clarified"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["program"]["summary"] == "New summary"
    assert body["program"]["status"] == "completed"
    event = body["event"]
    assert event["kind"] == "updated"
    assert event["changes"]["summary"]["to"] == "New summary"
    assert "title" not in event["changes"]  # unchanged value is not a change
    assert response.headers["etag"] == f'"{body["program"]["version"]}"'
    assert (await history(client, "transport"))[-1] == event


async def test_patch_cannot_touch_status_or_unknown_fields(client: httpx.AsyncClient) -> None:
    for body in ({"status": "draft"}, {"version": 1}, {"code": "other"}, {"title": None}):
        response = await client.patch(f"{API}/programs/transport", json=body)
        assert response.status_code == 422, body
    assert len(await history(client, "transport")) == 6


async def test_patch_without_changes_writes_no_event(client: httpx.AsyncClient) -> None:
    response = await client.patch(f"{API}/programs/transport", json={})
    assert response.status_code == 200
    assert response.json()["event"] is None
    assert len(await history(client, "transport")) == 6


async def test_transition_returns_programme_and_event(client: httpx.AsyncClient) -> None:
    await create_program(client, "t1")
    response = await transition(
        client, "t1", "coordinated", note="agreed", source_url="https://example.org/x"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["program"]["status"] == "coordinated"
    assert body["program"]["version"] == 2
    assert body["event"]["from_status"] == "draft"
    assert body["event"]["to_status"] == "coordinated"
    assert body["event"]["seq"] == 2
    assert body["event"]["effective_date"] == today()
    assert body["event"]["sources"] == ["https://example.org/x"]
    assert response.headers["etag"] == '"2"'


async def test_illegal_transition_is_a_409_that_names_the_allowed_targets(
    client: httpx.AsyncClient,
) -> None:
    await create_program(client, "t2")
    response = await transition(client, "t2", "completed")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["allowed_targets"] == ["coordinated", "withdrawn"]
    assert "coordinated" in problem["detail"]
    assert len(await history(client, "t2")) == 1
    assert (await client.get(f"{API}/programs/t2")).json()["version"] == 1


async def test_transition_dates_are_checked(client: httpx.AsyncClient) -> None:
    await create_program(client, "t3")
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    assert (
        await transition(client, "t3", "coordinated", effective_date=tomorrow)
    ).status_code == 422
    assert (
        await transition(client, "t3", "coordinated", effective_date="2020-01-01")
    ).status_code == 422  # before the draft's own date (today)
    assert (
        await transition(client, "t3", "coordinated", effective_date="2024-02-30")
    ).status_code == 422
    assert (await transition(client, "t3", "finished")).status_code == 422
    # A step the workflow lacks is said first, whatever its date (as in 0.3.0).
    not_a_step = await transition(client, "t3", "completed", effective_date=tomorrow)
    assert not_a_step.status_code == 409, not_a_step.text
    assert len(await history(client, "t3")) == 1


async def test_malformed_json_is_a_problem_and_writes_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/programs/transport/transitions",
        content=b'{"to_status": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM
    assert len(await history(client, "transport")) == 6


async def test_history_pages_oldest_first(client: httpx.AsyncClient) -> None:
    first = (await client.get(f"{API}/programs/gas_market/history", params={"limit": 5})).json()
    assert [e["seq"] for e in first["items"]] == [1, 2, 3, 4, 5]
    second = (
        await client.get(
            f"{API}/programs/gas_market/history",
            params={"limit": 5, "cursor": first["next_cursor"]},
        )
    ).json()
    assert [e["seq"] for e in second["items"]] == [6, 7, 8]
    assert second["next_cursor"] is None
    missing = await client.get(f"{API}/programs/nothing/history")
    assert missing.status_code == 404


async def test_search_looks_at_russian_titles_too(client: httpx.AsyncClient) -> None:
    everything = (await client.get(f"{API}/programs", params={"limit": 500})).json()["items"]

    def matches(program: dict[str, Any], text: str) -> bool:
        titles = (program["title"], program["title_ru"] or "")
        return any(text.casefold() in title.casefold() for title in titles)

    for text in ("газ", "ГАЗ", "gas", "GAS", "рынка", "Рынка"):
        found = (await client.get(f"{API}/programs", params={"q": text})).json()["items"]
        assert found, text
        assert {p["code"] for p in found} == {p["code"] for p in everything if matches(p, text)}
    gas = (await client.get(f"{API}/programs", params={"q": "газ"})).json()["items"]
    assert "gas_market" in {p["code"] for p in gas}


async def test_as_of_status_filter_is_the_status_then(client: httpx.AsyncClient) -> None:
    day = "2022-12-31"
    delayed = await client.get(f"{API}/programs", params={"as_of": day, "status": "delayed"})
    assert [p["code"] for p in delayed.json()["items"]] == ["gas_market"]
    everyone = (await client.get(f"{API}/programs", params={"as_of": day, "limit": 500})).json()
    assert [p["code"] for p in everyone["items"] if p["status"] == "delayed"] == ["gas_market"]
