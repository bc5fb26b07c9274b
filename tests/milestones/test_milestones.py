"""Milestones, programme progress, roadmap progress reports and more than one roadmap."""

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import create_engine
from service.models.milestones import Milestone
from service.models.roadmaps import ProgressReport
from service.rules.milestones import CLOSED_STATUSES, MilestoneState, milestone_state
from service.rules.workflow import Status
from service.schema_setup import alembic_config, prepare_database
from service.seed import loader
from tests.support.builders import API, bearer, create_program, history, walk_to

TODAY = datetime.now(UTC).date()


def test_milestone_states() -> None:
    day = date(2024, 6, 1)

    def state(due: date | None, done: date | None, closed: bool = False) -> MilestoneState:
        return milestone_state(due, done, day, closed=closed)

    assert state(None, None) == MilestoneState.PLANNED
    assert state(date(2024, 6, 1), None) == MilestoneState.PLANNED
    assert state(date(2024, 5, 31), None) == MilestoneState.OVERDUE
    assert state(date(2024, 5, 31), date(2024, 7, 1)) == MilestoneState.OVERDUE  # done later
    assert state(date(2024, 5, 31), date(2024, 6, 1)) == MilestoneState.DONE
    assert state(None, date(2020, 1, 1)) == MilestoneState.DONE
    # A closed programme will not act any more: what it left undone is missed, due or not.
    assert state(date(2024, 5, 31), None, closed=True) == MilestoneState.MISSED
    assert state(date(2030, 1, 1), None, closed=True) == MilestoneState.MISSED
    assert state(None, date(2024, 1, 1), closed=True) == MilestoneState.DONE


async def test_gas_market_missed_its_addendum_when_carried_over(
    client: httpx.AsyncClient,
) -> None:
    milestones = (await client.get(f"{API}/programs/gas_market/milestones")).json()["items"]
    assert len(milestones) == 1
    addendum = milestones[0]
    assert addendum["due_date"] == "2023-12-01"
    assert addendum["done_date"] is None
    assert addendum["set_on"] == "2021-11-04"
    assert addendum["state"] == "missed"
    assert addendum["sources"]
    progress = (await client.get(f"{API}/programs/gas_market")).json()["progress"]
    assert progress == {
        "milestones_total": 1,
        "milestones_done": 0,
        "milestones_overdue": 0,
        "milestones_missed": 1,
        "next_due_date": None,
    }


async def _progress_then(client: httpx.AsyncClient, code: str, day: str) -> dict[str, object]:
    response = await client.get(f"{API}/programs/{code}", params={"as_of": day})
    assert response.status_code == 200, response.text
    progress: dict[str, object] = response.json()["progress"]
    return progress


async def test_as_of_progress_is_counted_on_that_day(client: httpx.AsyncClient) -> None:
    # Before Decree No. 6 set it, the addendum did not exist; then it was due; past its due
    # date the delayed programme was overdue; carried over, it had missed it.
    before = await _progress_then(client, "gas_market", "2021-11-03")
    assert before["milestones_total"] == 0
    assert await _progress_then(client, "gas_market", "2022-06-01") == {
        "milestones_total": 1,
        "milestones_done": 0,
        "milestones_overdue": 0,
        "milestones_missed": 0,
        "next_due_date": "2023-12-01",
    }
    late = await _progress_then(client, "gas_market", "2023-12-31")
    assert (late["milestones_overdue"], late["milestones_missed"]) == (1, 0)
    closed = await _progress_then(client, "gas_market", "2024-06-01")
    assert (closed["milestones_overdue"], closed["milestones_missed"]) == (0, 1)
    # A milestone done on 2024-12-06 was not done before.
    treaty = await _progress_then(client, "electricity_market", "2024-12-05")
    assert treaty["milestones_done"] == 0
    done = await _progress_then(client, "electricity_market", "2024-12-06")
    assert done["milestones_done"] == 1


async def test_seeded_milestones_are_dated_by_the_act_that_set_them(
    client: httpx.AsyncClient,
) -> None:
    today = TODAY.isoformat()
    feed = (await client.get(f"{API}/events", params={"limit": 500})).json()["items"]
    assert feed
    assert [e for e in feed if e["effective_date"] == today] == []
    added = [e for e in feed if e["kind"] == "milestone_added"]
    assert len(added) == 9
    assert {e["effective_date"] for e in added} == {"2021-11-04", "2024-12-06"}
    assert all(e["sources"] for e in added)


async def test_no_closed_programme_has_an_overdue_milestone(client: httpx.AsyncClient) -> None:
    programmes = (await client.get(f"{API}/programs", params={"limit": 500})).json()["items"]
    closed = [p for p in programmes if p["status"] in CLOSED_STATUSES]
    assert closed
    assert all(p["progress"]["milestones_overdue"] == 0 for p in closed)
    assert sum(p["progress"]["milestones_missed"] for p in closed) > 0
    overdue = await client.get(f"{API}/milestones", params={"state": "overdue"})
    assert overdue.json()["items"] == []


async def test_electricity_treaty_is_done_on_6_december_2024(client: httpx.AsyncClient) -> None:
    items = (await client.get(f"{API}/programs/electricity_market/milestones")).json()["items"]
    assert [(m["done_date"], m["state"]) for m in items] == [("2024-12-06", "done")]
    assert items[0]["source_url"].startswith("https://ria.ru/")


async def _overdue_by_the_rule(client: httpx.AsyncClient, day: date) -> set[str]:
    """Programmes with an overdue milestone on `day`, worked out with the pure rule from each
    programme's status then and its milestones' dates."""
    found = set()
    milestones = (await client.get(f"{API}/milestones", params={"limit": 500})).json()["items"]
    for milestone in milestones:
        set_on, due = date.fromisoformat(milestone["set_on"]), milestone["due_date"]
        done = milestone["done_date"]
        if set_on > day:
            continue
        then = await client.get(
            f"{API}/programs/{milestone['program']}", params={"as_of": day.isoformat()}
        )
        state = milestone_state(
            due and date.fromisoformat(due),
            done and date.fromisoformat(done),
            day,
            closed=then.json()["status"] in CLOSED_STATUSES,
        )
        if state == MilestoneState.OVERDUE:
            found.add(milestone["program"])
    return found


@pytest.mark.parametrize("as_of", ["2022-06-01", "2023-12-31", None])
async def test_overdue_filter_as_of(client: httpx.AsyncClient, as_of: str | None) -> None:
    expected = await _overdue_by_the_rule(client, date.fromisoformat(as_of) if as_of else TODAY)
    params = {"overdue": "true", "limit": "500"} | ({"as_of": as_of} if as_of else {})
    overdue = (await client.get(f"{API}/programs", params=params)).json()["items"]
    assert {p["code"] for p in overdue} == expected
    assert all(p["progress"]["milestones_overdue"] > 0 for p in overdue)
    params["overdue"] = "false"
    rest = (await client.get(f"{API}/programs", params=params)).json()["items"]
    assert all(p["progress"]["milestones_overdue"] == 0 for p in rest)
    assert not expected & {p["code"] for p in rest}
    assert len(rest) + len(overdue) == 28


async def test_gas_market_was_overdue_before_it_was_carried_over(
    client: httpx.AsyncClient,
) -> None:
    assert "gas_market" in await _overdue_by_the_rule(client, date(2023, 12, 31))
    assert "gas_market" not in await _overdue_by_the_rule(client, TODAY)


async def test_progress_reports_read_in_date_order(client: httpx.AsyncClient) -> None:
    first = (await client.get(f"{API}/roadmaps/union-state-2021-2023/progress")).json()["items"]
    assert [r["measures_done_pct"] for r in first] == [30, 46, 60, 68, 80, 90, 100]
    assert [r["date"] for r in first] == sorted(r["date"] for r in first)
    second = (await client.get(f"{API}/roadmaps/union-state-2024-2026/progress")).json()["items"]
    assert [r["measures_done_pct"] for r in second] == [17, 26, 37]
    assert second[-1]["measures_total"] == 310
    roadmap = (await client.get(f"{API}/roadmaps/union-state-2024-2026")).json()
    assert roadmap["latest_progress"]["measures_done_pct"] == 37


async def test_a_new_roadmap_with_its_own_programme_lists_separately(
    client: httpx.AsyncClient, api_tokens: Mapping[str, str]
) -> None:
    admin = bearer(api_tokens["admin"])
    created = await client.post(
        f"{API}/roadmaps",
        json={"code": "union-state-2027-2029", "title": "Main Directions 2027-2029"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/roadmaps/union-state-2027-2029"
    await create_program(client, "digital_currency", roadmap="union-state-2027-2029")
    listed = await client.get(f"{API}/programs", params={"roadmap": "union-state-2027-2029"})
    assert [p["code"] for p in listed.json()["items"]] == ["digital_currency"]
    old = (await client.get(f"{API}/programs", params={"roadmap": "union-state-2021-2023"})).json()
    assert "digital_currency" not in {p["code"] for p in old["items"]}
    detail = (await client.get(f"{API}/roadmaps/union-state-2027-2029")).json()
    assert detail["program_count"] == 1
    assert detail["by_status"]["draft"] == 1
    duplicate = await client.post(
        f"{API}/roadmaps", json={"code": "union-state-2027-2029", "title": "again"}, headers=admin
    )
    assert duplicate.status_code == 409


async def test_adding_and_completing_a_milestone_shows_in_the_history(
    client: httpx.AsyncClient,
) -> None:
    due = (TODAY + timedelta(days=30)).isoformat()
    await create_program(client, "oil_exchange")
    await walk_to(client, "oil_exchange", Status.IN_IMPLEMENTATION)
    added = await client.post(
        f"{API}/programs/oil_exchange/milestones",
        json={"title": "Protocol on the oil market", "due_date": due,
              "source_url": "https://example.org/protocol"},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    body = added.json()
    milestone_id = body["milestone"]["id"]
    assert body["milestone"]["state"] == "planned"
    assert body["event"]["kind"] == "milestone_added"
    assert body["program"]["progress"]["next_due_date"] == due
    assert added.headers["etag"] == f'"{body["program"]["version"]}"'

    done = await client.patch(
        f"{API}/programs/oil_exchange/milestones/{milestone_id}",
        json={"done_date": TODAY.isoformat()},
        headers={"If-Match": added.headers["etag"]},
    )
    assert done.status_code == 200, done.text
    assert done.json()["milestone"]["state"] == "done"
    assert done.json()["event"]["changes"]["done_date"] == {"from": None, "to": TODAY.isoformat()}
    kinds = [e["kind"] for e in await history(client, "oil_exchange")]
    assert kinds[-2:] == ["milestone_added", "milestone_updated"]
    verify = (await client.get(f"{API}/audit/verify")).json()
    assert verify["ok"], verify


async def test_milestone_input_is_checked(client: httpx.AsyncClient) -> None:
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    future = await client.post(
        f"{API}/programs/oil_market/milestones", json={"title": "x", "done_date": tomorrow}
    )
    assert future.status_code == 422
    other = (await client.get(f"{API}/programs/gas_market/milestones")).json()["items"][0]["id"]
    wrong_programme = await client.patch(
        f"{API}/programs/oil_market/milestones/{other}", json={"note": "x"}
    )
    assert wrong_programme.status_code == 404
    assert (await client.post(f"{API}/programs/oil_market/milestones", json={})).status_code == 422
    unchanged = await client.patch(f"{API}/programs/gas_market/milestones/{other}", json={})
    assert unchanged.json()["event"] is None


def _migrate(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_a_database_seeded_before_milestones_gets_them_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    # An older database after this version's migrations: programmes and their history, empty
    # milestone and progress tables, and no record of having loaded them.
    async with engine.begin() as connection:
        await connection.run_sync(_migrate, "head")
    async with AsyncSession(engine, expire_on_commit=False) as session:
        for path in loader.bundled_seed_files():  # what the earlier version loaded
            document = loader.read_seed_file(path)
            roadmap, _ = await loader._ensure_roadmap(session, document["roadmap"])
            history_by_code = loader._events_by_program(document)
            for data in document["programs"]:
                await loader._create_program(session, roadmap, data, history_by_code[data["code"]])
        await session.commit()

    for _ in range(2):  # start twice: the second start finds nothing left to do
        await prepare_database(engine, url)
        async with AsyncSession(engine) as session:
            milestones = await session.scalar(select(func.count()).select_from(Milestone))
            reports = await session.scalar(select(func.count()).select_from(ProgressReport))
        assert (milestones, reports) == (9, 10)
    await engine.dispose()


@pytest.mark.parametrize("role", ["viewer", "editor"])
async def test_only_admins_create_roadmaps(
    anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str], role: str
) -> None:
    response = await anonymous.post(
        f"{API}/roadmaps", json={"code": "nope", "title": "nope"}, headers=bearer(api_tokens[role])
    )
    assert response.status_code == 403


async def test_milestones_across_programmes_agree_with_the_rule(
    client: httpx.AsyncClient,
) -> None:
    """GET /milestones filters by state in SQL; each item's state comes from the pure rule.
    Every combination of dates, on an open and on a closed programme, lands in one filter: the
    one its own state names."""
    days = {"past": TODAY - timedelta(days=10), "today": TODAY, "future": None}
    for code in ("rule_open", "rule_closed"):
        await create_program(client, code)
        await walk_to(client, code, Status.IN_IMPLEMENTATION)
        for due in (TODAY - timedelta(days=1), TODAY, TODAY + timedelta(days=1), None):
            for done_name, done in days.items():
                added = await client.post(
                    f"{API}/programs/{code}/milestones",
                    json={
                        "title": f"due {due} done {done_name}",
                        "due_date": due and due.isoformat(),
                        "done_date": done and done.isoformat(),
                    },
                )
                assert added.status_code == 201, added.text
    closing = await client.post(
        f"{API}/programs/rule_closed/transitions", json={"to_status": "completed"}
    )
    assert closing.status_code == 201, closing.text
    # The answer counts the milestones under the new status, as every later read does.
    answered = closing.json()["program"]["progress"]
    assert answered == (await client.get(f"{API}/programs/rule_closed")).json()["progress"]
    assert answered["milestones_overdue"] == 0
    assert answered["milestones_missed"] > 0

    seen: dict[int, str] = {}
    for state in MilestoneState:
        for code in ("rule_open", "rule_closed"):
            response = await client.get(
                f"{API}/milestones", params={"program": code, "state": state.value}
            )
            assert response.status_code == 200, response.text
            for item in response.json()["items"]:
                assert item["state"] == state.value, item
                seen[item["id"]] = state.value
    everything = (await client.get(f"{API}/milestones", params={"limit": 500})).json()["items"]
    ours = [m for m in everything if m["program"] in ("rule_open", "rule_closed")]
    assert len(ours) == 24
    assert {m["id"]: m["state"] for m in ours} == seen
    assert {m["state"] for m in ours if m["program"] == "rule_closed"} == {"done", "missed"}
    assert {m["state"] for m in ours if m["program"] == "rule_open"} == {
        "done",
        "overdue",
        "planned",
    }


async def test_milestones_filters_and_pages(client: httpx.AsyncClient) -> None:
    first = await client.get(f"{API}/milestones", params={"limit": 4})
    assert first.status_code == 200
    body = first.json()
    assert len(body["items"]) == 4
    assert body["next_cursor"]
    rest = await client.get(f"{API}/milestones", params={"cursor": body["next_cursor"]})
    items = body["items"] + rest.json()["items"]
    assert len(items) == 9
    assert [m["id"] for m in items] == sorted(m["id"] for m in items)
    due = await client.get(f"{API}/milestones", params={"due_before": "2023-01-01"})
    assert {m["program"] for m in due.json()["items"]} == {
        m["program"] for m in items if m["due_date"] and m["due_date"] < "2023-01-01"
    }
    in_roadmap = await client.get(f"{API}/milestones", params={"roadmap": "union-state-2024-2026"})
    assert in_roadmap.json()["items"] == []
    for name in ("roadmap", "program"):
        unknown = await client.get(f"{API}/milestones", params={name: "nope"})
        assert unknown.status_code == 422
        assert unknown.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"{API}/milestones", params={"state": "late"})).status_code == 422


async def test_set_on_dates_a_milestone_and_cannot_be_in_the_future(
    client: httpx.AsyncClient,
) -> None:
    await create_program(client, "set_on_check")
    added = await client.post(
        f"{API}/programs/set_on_check/milestones",
        json={"title": "Agreed earlier", "set_on": "2022-03-01"},
    )
    assert added.status_code == 201, added.text
    assert added.json()["event"]["effective_date"] == "2022-03-01"
    milestone_id = added.json()["milestone"]["id"]
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    path = f"{API}/programs/set_on_check/milestones"
    future = await client.post(path, json={"title": "x", "set_on": tomorrow})
    assert future.status_code == 422
    moved = await client.patch(f"{path}/{milestone_id}", json={"set_on": "2022-02-01"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["event"]["effective_date"] == "2022-02-01"
    assert moved.json()["event"]["changes"]["set_on"] == {"from": "2022-03-01", "to": "2022-02-01"}
    removed = await client.patch(f"{path}/{milestone_id}", json={"set_on": None})
    assert removed.status_code == 422


async def test_a_progress_report_is_corrected_by_a_new_one(
    client: httpx.AsyncClient, api_tokens: Mapping[str, str]
) -> None:
    path = f"{API}/roadmaps/union-state-2024-2026/progress"
    before = (await client.get(path)).json()["items"]
    wrong = before[-1]
    correction = {
        "date": wrong["date"],
        "measures_done_pct": wrong["measures_done_pct"],
        "statement": "Restated",
        "corrects": wrong["id"],
    }
    admin = bearer(api_tokens["admin"])
    made = await client.post(path, json=correction, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["corrects"] == wrong["id"]
    after = (await client.get(path)).json()["items"]
    assert len(after) == len(before) + 1  # the corrected report stays in the record
    assert {r["id"]: r["corrected_by"] for r in after}[wrong["id"]] == made.json()["id"]
    roadmap = (await client.get(f"{API}/roadmaps/union-state-2024-2026")).json()
    assert roadmap["latest_progress"]["id"] == made.json()["id"]
    again = await client.post(path, json=correction, headers=admin)
    assert again.status_code == 409
    elsewhere = (await client.get(f"{API}/roadmaps/union-state-2021-2023/progress")).json()
    foreign = correction | {"corrects": elsewhere["items"][0]["id"]}
    assert (await client.post(path, json=foreign, headers=admin)).status_code == 422
