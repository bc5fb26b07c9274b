"""Milestones, programme progress, roadmap progress reports and more than one roadmap."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import create_engine
from service.milestones.models import Milestone
from service.milestones.rules import MilestoneState, milestone_state
from service.roadmaps.models import ProgressReport
from service.schema_setup import alembic_config, prepare_database
from service.seed import loader
from tests.builders import API, create_program, history
from tests.conftest import bearer

TODAY = datetime.now(UTC).date()


def test_milestone_states() -> None:
    day = date(2024, 6, 1)
    assert milestone_state(None, None, day) == MilestoneState.PLANNED
    assert milestone_state(date(2024, 6, 1), None, day) == MilestoneState.PLANNED
    assert milestone_state(date(2024, 5, 31), None, day) == MilestoneState.OVERDUE
    assert milestone_state(date(2024, 5, 31), date(2024, 7, 1), day) == MilestoneState.DONE
    assert milestone_state(None, date(2020, 1, 1), day) == MilestoneState.DONE


async def test_gas_market_shows_its_overdue_addendum(client: httpx.AsyncClient) -> None:
    milestones = (await client.get(f"{API}/programs/gas_market/milestones")).json()["items"]
    assert len(milestones) == 1
    addendum = milestones[0]
    assert addendum["due_date"] == "2023-12-01"
    assert addendum["done_date"] is None
    assert addendum["state"] == "overdue"
    assert addendum["sources"]
    progress = (await client.get(f"{API}/programs/gas_market")).json()["progress"]
    assert progress == {
        "milestones_total": 1,
        "milestones_done": 0,
        "milestones_overdue": 1,
        "next_due_date": None,
    }


async def test_electricity_treaty_is_done_on_6_december_2024(client: httpx.AsyncClient) -> None:
    items = (await client.get(f"{API}/programs/electricity_market/milestones")).json()["items"]
    assert [(m["done_date"], m["state"]) for m in items] == [("2024-12-06", "done")]
    assert items[0]["source_url"].startswith("https://ria.ru/")


async def test_overdue_filter(client: httpx.AsyncClient) -> None:
    overdue = (await client.get(f"{API}/programs", params={"overdue": "true"})).json()["items"]
    codes = {p["code"] for p in overdue}
    assert "gas_market" in codes
    assert all(p["progress"]["milestones_overdue"] > 0 for p in overdue)
    rest = (await client.get(f"{API}/programs", params={"overdue": "false", "limit": 500})).json()
    assert len(rest["items"]) + len(overdue) == 28
    assert not codes & {p["code"] for p in rest["items"]}


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
    client: httpx.AsyncClient, api_tokens: dict[str, str]
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
    added = await client.post(
        f"{API}/programs/oil_market/milestones",
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
        f"{API}/programs/oil_market/milestones/{milestone_id}",
        json={"done_date": TODAY.isoformat()},
        headers={"If-Match": added.headers["etag"]},
    )
    assert done.status_code == 200, done.text
    assert done.json()["milestone"]["state"] == "done"
    assert done.json()["event"]["changes"]["done_date"] == {"from": None, "to": TODAY.isoformat()}
    kinds = [e["kind"] for e in await history(client, "oil_market")]
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
    anonymous: httpx.AsyncClient, api_tokens: dict[str, str], role: str
) -> None:
    response = await anonymous.post(
        f"{API}/roadmaps", json={"code": "nope", "title": "nope"}, headers=bearer(api_tokens[role])
    )
    assert response.status_code == 403
