"""What dashboards read: as-of views, summary and timeline, exports, conditional GET, the live
stream, metrics and CORS."""

import asyncio
import csv
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from service.config import Settings
from service.main import create_app
from tests.support.builders import API, SEEDED_EVENTS, bearer, create_program, transition
from tests.support.servers import LiveServer, start_server


async def test_as_of_the_end_of_2022(client: httpx.AsyncClient) -> None:
    gas = (await client.get(f"{API}/programs/gas_market", params={"as_of": "2022-12-31"})).json()
    assert (gas["status"], gas["status_effective_date"]) == ("delayed", "2022-12-16")
    transport = await client.get(f"{API}/programs/transport", params={"as_of": "2022-12-31"})
    assert transport.json()["status"] == "in_implementation"
    listed = (
        await client.get(f"{API}/programs", params={"as_of": "2022-12-31", "limit": 500})
    ).json()["items"]
    assert len(listed) == 28
    assert {p["status"] for p in listed} == {"in_implementation", "delayed"}
    before = (await client.get(f"{API}/programs", params={"as_of": "2019-01-01"})).json()
    assert before["items"] == []
    assert (
        await client.get(f"{API}/programs/gas_market", params={"as_of": "2019-01-01"})
    ).status_code == 404


async def test_status_filter_applies_to_the_past_status(client: httpx.AsyncClient) -> None:
    delayed = await client.get(
        f"{API}/programs", params={"as_of": "2023-06-30", "status": "delayed"}
    )
    assert [p["code"] for p in delayed.json()["items"]] == ["gas_market"]


async def test_known_at_keeps_what_was_recorded_then(client: httpx.AsyncClient) -> None:
    await create_program(client, "corrected", sector="energy")
    today = datetime.now(UTC).date().isoformat()
    before_change = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.01)
    assert (await transition(client, "corrected", "coordinated")).status_code == 201
    await client.patch(f"{API}/programs/corrected", json={"sector": "transport"})
    now = (await client.get(f"{API}/programs/corrected", params={"as_of": today})).json()
    assert (now["status"], now["sector"]) == ("coordinated", "transport")
    then = await client.get(
        f"{API}/programs/corrected", params={"as_of": today, "known_at": before_change}
    )
    assert (then.json()["status"], then.json()["sector"]) == ("draft", "energy")
    assert (
        await client.get(f"{API}/programs/corrected", params={"known_at": before_change})
    ).status_code == 422


async def test_summary_counts_every_state(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{API}/stats/summary", params={"as_of": "2023-01-01"})).json()
    assert body["total"] == 28
    assert len(body["by_status"]) == 9
    assert body["by_status"]["completed"] == 7
    assert body["by_status"]["withdrawn"] == 0
    assert sum(body["by_sector"].values()) == 28


async def test_quarterly_timeline_2021_to_2024(client: httpx.AsyncClient) -> None:
    params = {"start": "2021-01-01", "end": "2024-12-31", "interval": "quarter"}
    points = (await client.get(f"{API}/stats/timeline", params=params)).json()["points"]
    assert len(points) == 16
    assert [p["date"] for p in points][:2] == ["2021-03-31", "2021-06-30"]
    last = points[-1]["by_status"]
    assert last["completed"] >= 7
    assert last["carried_over"] == 3
    assert points[0]["by_status"]["draft"] == 28
    assert points[8]["by_status"]["completed"] == 7  # 2023-03-31
    for point in points:
        assert sum(point["by_status"].values()) == 28


async def test_timeline_refuses_too_many_points(client: httpx.AsyncClient) -> None:
    params = {"start": "1900-01-01", "end": "2024-12-31", "interval": "day"}
    assert (await client.get(f"{API}/stats/timeline", params=params)).status_code == 422


async def test_programmes_csv_opens_with_28_rows(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/export/programs.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 28
    gas = next(row for row in rows if row["code"] == "gas_market")
    assert (gas["status"], gas["milestones_overdue"], gas["milestones_missed"]) == (
        "carried_over",
        "0",
        "1",
    )


async def test_events_export_resumes_from_a_cursor(client: httpx.AsyncClient) -> None:
    lines = (await client.get(f"{API}/export/events.ndjson")).text.splitlines()
    assert len(lines) == SEEDED_EVENTS
    events = [json.loads(line) for line in lines]
    rest = await client.get(f"{API}/export/events.ndjson", params={"after": events[99]["cursor"]})
    assert [json.loads(line)["id"] for line in rest.text.splitlines()] == [
        e["id"] for e in events[100:]
    ]
    as_csv = list(csv.DictReader(io.StringIO((await client.get(f"{API}/export/events.csv")).text)))
    assert [row["hash"] for row in as_csv] == [e["hash"] for e in events]


async def test_a_second_poll_is_304_until_something_changes(client: httpx.AsyncClient) -> None:
    for path in ("/programs", "/stats/summary", "/roadmaps", "/programs/transport"):
        first = await client.get(f"{API}{path}")
        etag = first.headers["etag"]
        again = await client.get(f"{API}{path}", headers={"If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.headers["etag"] == etag
        assert again.content == b""
    etag = (await client.get(f"{API}/programs")).headers["etag"]
    await client.patch(f"{API}/programs/transport", json={"summary": "changed"})
    changed = await client.get(f"{API}/programs", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


async def test_a_transition_reaches_an_open_stream(
    live: LiveServer, api_tokens: Mapping[str, str]
) -> None:
    editor = bearer(api_tokens["editor"])
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        await http.post(f"{API}/programs", json={"code": "streamed", "title": "x"}, headers=editor)
        async with http.stream("GET", f"{API}/events/stream") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            await asyncio.sleep(0.2)
            sent = await http.post(
                f"{API}/programs/streamed/transitions",
                json={"to_status": "coordinated"},
                headers=editor,
            )
            # Streams poll the feed every POLL_SECONDS (0.3 s); speed is the benchmark's
            # business, so the bound here is only against hanging.
            event_id, data = await asyncio.wait_for(_next_message(lines), timeout=10)
        assert json.loads(data)["id"] == sent.json()["event"]["id"]

        await http.post(
            f"{API}/programs/streamed/transitions", json={"to_status": "draft"}, headers=editor
        )
        resumed = {"Last-Event-ID": event_id}
        async with http.stream("GET", f"{API}/events/stream", headers=resumed) as stream:
            _, data = await asyncio.wait_for(_next_message(stream.aiter_lines()), timeout=5)
        assert json.loads(data)["to_status"] == "draft"  # the next one, not a repeat


async def _next_message(lines: object) -> tuple[str, str]:
    event_id = data = ""
    async for line in lines:  # type: ignore[attr-defined]
        if line.startswith("id:"):
            event_id = line.removeprefix("id:").strip()
        elif line.startswith("data:"):
            data = line.removeprefix("data:").strip()
        elif line == "" and data:
            return event_id, data
    raise AssertionError("the stream ended")


async def test_metrics_scrape_cleanly(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        await http.get(f"{API}/programs/gas_market")
        await http.get(f"{API}/programs/no_such_thing")
        text = (await http.get("/metrics")).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    programs = {s.labels["status"]: s.value for s in families["roadmap_programs"].samples}
    assert programs["completed"] >= 25
    assert families["roadmap_events"].samples[0].value >= SEEDED_EVENTS
    routes = {s.labels["route"] for s in families["roadmap_http_requests"].samples}
    assert f"{API}/programs/{{code}}" in routes
    assert not any("gas_market" in route or "no_such_thing" in route for route in routes)


async def test_cors_is_off_by_default_and_follows_the_setting(settings: Settings) -> None:
    origin = {"Origin": "https://newsroom.example"}
    for origins, allowed in (("", False), ("https://newsroom.example", True)):
        app: FastAPI = create_app(settings.model_copy(update={"cors_origins": origins}))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                response = await http.get(f"{API}/workflow", headers=origin)
        assert ("access-control-allow-origin" in response.headers) == allowed


async def test_a_single_worker_reports_request_metrics(live_database: str, tmp_path: Path) -> None:
    server = start_server(live_database, tmp_path / "one.log", workers=1)
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            await http.get(f"{API}/workflow")
            text = (await http.get("/metrics")).text
        assert (
            'roadmap_http_requests_total{method="GET",route="/api/v1/workflow",status="200"}'
            in text
        )
    finally:
        assert server.stop() == 0
