"""The bundled facts load into the statuses the sources say, with their history and sources."""

import json
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from service.config import Settings
from service.db import create_engine
from service.rules.citations import first_url
from service.seed.loader import bundled_seed_files, load_seed_files
from tests.support.builders import API, history

CARRIED_OVER = {"gas_market", "oil_market", "electricity_market"}


async def all_programs(client: httpx.AsyncClient) -> list[dict[str, object]]:
    response = await client.get(f"{API}/programs", params={"limit": 500})
    assert response.status_code == 200
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_28_programmes_stand_where_the_history_leaves_them(
    client: httpx.AsyncClient,
) -> None:
    programs = await all_programs(client)
    assert len(programs) == 28
    statuses = Counter(p["status"] for p in programs)
    assert statuses == {"completed": 25, "carried_over": 3}
    assert {p["code"] for p in programs if p["status"] == "carried_over"} == CARRIED_OVER
    completed_by_2023 = [p for p in programs if p["status_effective_date"] == "2023-01-01"]
    assert len(completed_by_2023) == 7
    assert all(p["status"] == "completed" for p in completed_by_2023)


async def test_gas_market_history_has_seven_sourced_steps(client: httpx.AsyncClient) -> None:
    events = [
        e for e in await history(client, "gas_market") if e["kind"] in ("created", "status_changed")
    ]
    steps = [(e["to_status"], e["effective_date"]) for e in events]
    assert steps == [
        ("draft", "2019-09-06"),
        ("coordinated", "2021-09-09"),
        ("ministerially_approved", "2021-09-10"),
        ("supreme_council_approved", "2021-11-04"),
        ("in_implementation", "2021-11-04"),
        ("delayed", "2022-12-16"),
        ("carried_over", "2024-01-29"),
    ]
    assert [e["seq"] for e in events] == list(range(1, 8))
    assert events[0]["kind"] == "created"
    assert all(e["kind"] == "status_changed" for e in events[1:])
    assert all(e["sources"] for e in events)
    assert events[5]["source_url"].startswith("https://")
    assert all(e["actor"] == "seed" for e in events)


async def test_seed_matches_the_bundled_file(client: httpx.AsyncClient) -> None:
    """Every programme of the file is there, with the file's descriptive fields unchanged."""
    path = next(p for p in bundled_seed_files() if p.name == "union_state_2021_2023.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    by_code = {p["code"]: p for p in await all_programs(client)}
    for source in document["programs"]:
        program = by_code[source["code"]]
        for field in ("number", "title", "title_ru", "title_official", "sector", "summary"):
            assert program[field] == source[field], (source["code"], field)
        assert program["sources"] == source["sources"]


async def test_roadmaps_are_both_loaded(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/roadmaps")
    codes = [r["code"] for r in response.json()["items"]]
    assert codes == ["union-state-2021-2023", "union-state-2024-2026"]
    detail = (await client.get(f"{API}/roadmaps/union-state-2021-2023")).json()
    assert detail["program_count"] == 28
    assert detail["by_status"]["completed"] == 25
    assert detail["by_status"]["withdrawn"] == 0


async def test_seeding_again_changes_nothing(settings: Settings, client: httpx.AsyncClient) -> None:
    before = (await client.get(f"{API}/events", params={"limit": 500})).json()
    engine = create_engine(settings.database_url)
    async with AsyncSession(engine) as session:
        report = await load_seed_files(session, bundled_seed_files())
        await session.commit()
    await engine.dispose()
    assert report.programs_created == []
    assert report.roadmaps_created == []
    after = (await client.get(f"{API}/events", params={"limit": 500})).json()
    assert after == before


async def test_a_new_file_of_the_same_shape_loads(
    settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    document = {
        "roadmap": {"code": "test-roadmap", "title": "Test roadmap", "sources": []},
        "programs": [
            {"code": "alpha", "title": "Alpha", "sources": ["https://example.org/a"]},
            {"code": "beta", "title": "Beta", "sources": []},
        ],
        "events": [
            {"program": "*", "to_status": "draft", "effective_date": "2024-01-01", "sources": []},
            {
                "program": "alpha",
                "to_status": "coordinated",
                "effective_date": "2024-02-01",
                "sources": ["text (https://example.org/c)"],
            },
        ],
    }
    path = tmp_path / "roadmap.json"
    path.write_text(json.dumps(document))
    engine = create_engine(settings.database_url)
    async with AsyncSession(engine) as session:
        report = await load_seed_files(session, [path])
        await session.commit()
    await engine.dispose()
    assert report.programs_created == ["alpha", "beta"]
    alpha = (await client.get(f"{API}/programs/alpha")).json()
    assert alpha["status"] == "coordinated"
    assert alpha["roadmap"] == "test-roadmap"
    assert (await history(client, "alpha"))[1]["source_url"] == "https://example.org/c"
    assert (await client.get(f"{API}/programs/beta")).json()["status"] == "draft"


def test_first_url_finds_an_address_inside_a_citation() -> None:
    assert first_url(["no address here", "Kommersant (https://kommersant.ru/doc/1)."]) == (
        "https://kommersant.ru/doc/1"
    )
    assert first_url(["tass.com/economy/1 without a scheme"]) is None
