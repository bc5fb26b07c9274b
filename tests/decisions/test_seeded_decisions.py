"""The bundled history's package-wide acts load as decisions, each event attributed to its act
without changing any recorded hash (issue 15)."""

from collections import Counter
from datetime import date

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from service.audit.chain import event_hash
from service.clock import utc_now
from service.decisions.service import attribute_decision
from service.models.decisions import Decision, DecisionAttribution
from service.models.events import Event
from tests.support.builders import history
from tests.support.changes import SEEDED_DECISIONS, get_json, readme_hash

CARRIED_OVER = {"gas_market", "oil_market", "electricity_market"}


async def all_program_codes(client: httpx.AsyncClient) -> list[str]:
    return [p["code"] for p in (await get_json(client, "/programs", limit=500))["items"]]


async def test_a_fresh_database_lists_the_four_seeded_acts(client: httpx.AsyncClient) -> None:
    page = await get_json(client, "/decisions")
    assert [d["code"] for d in page["items"]] == SEEDED_DECISIONS
    assert page["next_cursor"] is None
    assert [(d["date"], d["body"], d["number"]) for d in page["items"]] == [
        ("2021-09-09", "Presidents", None),
        ("2021-09-10", "Council of Ministers", None),
        ("2021-11-04", "Supreme State Council", "6"),
        ("2024-01-29", "Supreme State Council", None),
    ]
    everyone = await all_program_codes(client)
    for decision in page["items"]:
        assert decision["actor"] == "seed"
        assert decision["sources"]
        assert decision["source_url"] == decision["sources"][0]
    for package_wide in page["items"][:3]:
        assert sorted(package_wide["programs"]) == sorted(everyone)
        assert len(package_wide["programs"]) == 28
    fulfilment = page["items"][3]["programs"]
    assert len(fulfilment) == len(set(fulfilment)) == 21
    assert set(fulfilment) >= CARRIED_OVER


async def test_the_fulfilment_of_2024_completed_18_and_carried_over_3(
    client: httpx.AsyncClient,
) -> None:
    # The bundled history completes 7 programmes on 2023-01-01 on their own; the act of
    # 29 January 2024 moves the other 21.
    answer = await get_json(client, "/decisions/ssc-2024-01-29")
    events = answer["events"]
    assert Counter(e["to_status"] for e in events) == {"completed": 18, "carried_over": 3}
    assert {e["program"] for e in events if e["to_status"] == "carried_over"} == CARRIED_OVER
    assert {(e["decision"], e["effective_date"], e["actor"]) for e in events} == {
        ("ssc-2024-01-29", "2024-01-29", "seed")
    }
    assert answer["decision"]["programs"] == [e["program"] for e in events]


async def test_decree_6_approved_and_started_every_programme(client: httpx.AsyncClient) -> None:
    answer = await get_json(client, "/decisions/ssc-decree-6-2021")
    decree = answer["decision"]
    assert (decree["number"], decree["body"], decree["date"]) == (
        "6",
        "Supreme State Council",
        "2021-11-04",
    )
    events = answer["events"]
    assert Counter(e["to_status"] for e in events) == {
        "supreme_council_approved": 28,
        "in_implementation": 28,
    }
    assert {e["decision"] for e in events} == {"ssc-decree-6-2021"}
    gas = [e for e in events if e["program"] == "gas_market"]
    assert gas == [e for e in await history(client, "gas_market") if e["seq"] in (4, 5)]


async def test_gas_market_history_names_the_act_behind_each_package_wide_step(
    client: httpx.AsyncClient,
) -> None:
    steps = [
        (e["effective_date"], e["to_status"], e["decision"])
        for e in await history(client, "gas_market")
        if e["kind"] in ("created", "status_changed")
    ]
    assert steps == [
        ("2019-09-06", "draft", None),
        ("2021-09-09", "coordinated", "presidents-2021-09-09"),
        ("2021-09-10", "ministerially_approved", "council-of-ministers-2021-09-10"),
        ("2021-11-04", "supreme_council_approved", "ssc-decree-6-2021"),
        ("2021-11-04", "in_implementation", "ssc-decree-6-2021"),
        ("2022-12-16", "delayed", None),
        ("2024-01-29", "carried_over", "ssc-2024-01-29"),
    ]


async def test_attributing_the_seeded_acts_changed_no_recorded_hash(
    client: httpx.AsyncClient,
) -> None:
    events = await history(client, "gas_market")
    assert [e["seq"] for e in events if e["decision_attributed"]] == [2, 3, 4, 5, 7]
    for event in events:
        assert event["decision_attributed"] is (event["decision"] is not None)
        assert event_hash({**event, "decision": None}) == event["hash"], event["seq"]
        assert readme_hash(event) == event["hash"], event["seq"]
    assert (await get_json(client, "/audit/verify"))["ok"] is True


async def test_an_attribution_made_later_moves_the_feeds_etags(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """An attribution changes how old events read while the feed stands still (as on an
    upgrade): a client holding the feed's or an export's ETag must not get a 304 after it."""
    urls = ["/api/v1/events?limit=500", "/api/v1/export/events.ndjson"]
    tags = {url: (await client.get(url)).headers["ETag"] for url in urls}
    async with app.state.sessionmaker() as session:
        (unattributed,) = (
            await session.scalars(
                select(Event.id)
                .outerjoin(DecisionAttribution, DecisionAttribution.event_id == Event.id)
                .where(DecisionAttribution.event_id.is_(None))
                .order_by(Event.id)
                .limit(1)
            )
        ).all()
        act = Decision(
            code="later-act",
            title="Attributed later",
            body="Presidents",
            date=date(2019, 9, 6),
            sources=[],
            actor="seed",
            recorded_at=utc_now(),
        )
        await attribute_decision(session, act, [unattributed])
        await session.commit()
    for url, etag in tags.items():
        again = await client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 200, url
        assert again.headers["ETag"] != etag
    page = (await client.get(urls[0])).json()["items"]
    (event,) = [e for e in page if e["id"] == unattributed]
    assert (event["decision"], event["decision_attributed"]) == ("later-act", True)
