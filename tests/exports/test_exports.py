"""Exports for spreadsheets and notebooks: the same filters as the lists, resumable feed
exports, dates that pandas parses, conditional GET and gzip."""

import asyncio
import csv
import gc
import gzip
import io
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from isal import isal_zlib
from starlette.types import Message

from service.audit.feed import START, decode_feed_cursor, read_feed
from service.compression import LEVEL
from service.rules.workflow import Status
from tests.support.builders import API, create_program, transition, walk_to

EXPORTS = ("programs.csv", "events.csv", "events.ndjson", "progress_reports.csv", "milestones.csv")
ROADMAP = "union-state-2021-2023"


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode())  # for spreadsheets
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def ndjson_lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


async def listed_programs(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/programs", params={**params, "limit": 500})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def feed(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await client.get(
            f"{API}/events",
            params={**params, "limit": 500, **({"after": cursor} if cursor else {})},
        )
        assert page.status_code == 200, page.text
        if not page.json()["items"]:
            return events
        events += page.json()["items"]
        cursor = page.json()["next_cursor"]


async def create_probe(client: httpx.AsyncClient) -> None:
    """A programme that is not seeded, in the other roadmap (the seeded ones are all in one)."""
    roadmaps = (await client.get(f"{API}/roadmaps")).json()["items"]
    other = next(roadmap["code"] for roadmap in roadmaps if roadmap["code"] != ROADMAP)
    await create_program(client, "export_probe", sector="energy", roadmap=other)
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    overdue = await client.post(
        f"{API}/programs/export_probe/milestones", json={"title": "late", "due_date": yesterday}
    )
    assert overdue.status_code == 201, overdue.text


async def some_writes(client: httpx.AsyncClient) -> None:
    """Events from every path that writes one: create, backdated and default transitions,
    descriptive change, milestones added and done."""
    await create_probe(client)
    await walk_to(client, "export_probe", Status.IN_IMPLEMENTATION)
    patched = await client.patch(f"{API}/programs/export_probe", json={"summary": "probe"})
    assert patched.status_code == 200, patched.text
    added = await client.post(
        f"{API}/programs/export_probe/milestones", json={"title": "m", "due_date": "2030-01-01"}
    )
    assert added.status_code == 201, added.text
    milestone = added.json()["milestone"]["id"]
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    done = await client.patch(  # its event is effective on the done date, a backdated one
        f"{API}/programs/export_probe/milestones/{milestone}", json={"done_date": yesterday}
    )
    assert done.status_code == 200, done.text


async def test_programs_csv_as_of_the_end_of_2022_delayed_is_the_gas_market(
    client: httpx.AsyncClient,
) -> None:
    params = {"as_of": "2022-12-31", "status": "delayed"}
    rows = csv_rows(await client.get(f"{API}/export/programs.csv", params=params))
    assert [(row["code"], row["status"]) for row in rows] == [("gas_market", "delayed")]


PROGRAM_FILTERS: list[dict[str, str]] = [
    {},
    {"status": "completed"},
    {"roadmap": ROADMAP},
    {"q": "gas"},
    {"sector": "energy"},
    {"overdue": "true"},
    {"overdue": "false"},
    {"as_of": "2022-06-30"},
    {"as_of": "2022-06-30", "status": "in_implementation", "roadmap": ROADMAP},
    {"as_of": "2023-12-31", "known_at": "2024-01-01T00:00:00Z"},
]


def query_id(params: dict[str, str]) -> str:
    return "&".join(f"{key}={value}" for key, value in params.items()) or "all"


@pytest.mark.parametrize("params", PROGRAM_FILTERS, ids=query_id)
async def test_programs_csv_lists_what_the_list_lists(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await create_probe(client)
    listed = await listed_programs(client, **params)
    rows = csv_rows(await client.get(f"{API}/export/programs.csv", params=params))
    assert [row["code"] for row in rows] == [item["code"] for item in listed]
    for row, item in zip(rows, listed, strict=True):
        flat = {**item, **item["progress"]}
        for column in ("title", "status", "status_effective_date", "roadmap", "version"):
            assert row[column] == str(flat[column]), (row["code"], column)
        for column in item["progress"]:
            assert row[column] == ("" if flat[column] is None else str(flat[column]))


async def test_the_program_filter_values_are_real(client: httpx.AsyncClient) -> None:
    """The parametrised filters above must each select something and leave something out, or
    they prove nothing."""
    await create_probe(client)
    everything = len(await listed_programs(client))
    for params in PROGRAM_FILTERS[1:-1]:
        assert 0 < len(await listed_programs(client, **params)) < everything, params


def event_filters(events: list[dict[str, Any]], roadmap_of: dict[str, str]) -> list[Any]:
    """(params, the feed's events those params keep), each derived from the feed itself."""
    cutoff = events[len(events) // 2]["recorded_at"]
    return [
        ({"program": "gas_market"}, lambda e: e["program"] == "gas_market"),
        ({"kind": "status_changed"}, lambda e: e["kind"] == "status_changed"),
        ({"roadmap": ROADMAP}, lambda e: roadmap_of[e["program"]] == ROADMAP),
        ({"as_of": "2021-09-09"}, lambda e: e["effective_date"] <= "2021-09-09"),
        ({"known_at": cutoff}, lambda e: e["recorded_at"] <= cutoff),
        (
            {"kind": "status_changed", "roadmap": ROADMAP, "as_of": "2022-12-31"},
            lambda e: (
                e["kind"] == "status_changed"
                and roadmap_of[e["program"]] == ROADMAP
                and e["effective_date"] <= "2022-12-31"
            ),
        ),
    ]


async def test_event_exports_keep_what_the_filters_say_in_feed_order(
    client: httpx.AsyncClient,
) -> None:
    await some_writes(client)
    events = await feed(client)
    roadmap_of = {p["code"]: p["roadmap"] for p in await listed_programs(client)}
    assert len(set(roadmap_of.values())) > 1  # the roadmap filter leaves some out
    for params, keep in event_filters(events, roadmap_of):
        expected = [e["id"] for e in events if keep(e)]
        assert 0 < len(expected) < len(events), params
        lines = ndjson_lines(await client.get(f"{API}/export/events.ndjson", params=params))
        assert [e["id"] for e in lines] == expected, params
        rows = csv_rows(await client.get(f"{API}/export/events.csv", params=params))
        assert [int(row["id"]) for row in rows] == expected, params
        assert [row["cursor"] for row in rows] == [e["cursor"] for e in lines]
    # program and kind are the very filters of GET /events
    for params in ({"program": "gas_market"}, {"kind": "milestone_added"}):
        lines = ndjson_lines(await client.get(f"{API}/export/events.ndjson", params=params))
        assert lines == [
            {**e, "cursor": line["cursor"]}
            for e, line in zip(await feed(client, **params), lines, strict=True)
        ]


async def test_a_filtered_export_resumes_after_a_cursor(client: httpx.AsyncClient) -> None:
    params = {"roadmap": ROADMAP, "kind": "status_changed"}
    lines = ndjson_lines(await client.get(f"{API}/export/events.ndjson", params=params))
    assert len(lines) > 10
    for name in ("events.ndjson", "events.csv"):
        rest = await client.get(
            f"{API}/export/{name}", params={**params, "after": lines[9]["cursor"]}
        )
        if name.endswith(".csv"):
            resumed = [int(row["id"]) for row in csv_rows(rest)]
        else:
            resumed = [e["id"] for e in ndjson_lines(rest)]
        assert resumed == [e["id"] for e in lines[10:]], name
    # ...and of the events written since the last cursor, it has those that match
    await create_probe(client)  # another roadmap
    await create_program(client, "resume_probe")  # created: another kind
    assert (await transition(client, "resume_probe", "coordinated")).status_code == 201
    newer = await client.get(
        f"{API}/export/events.ndjson", params={**params, "after": lines[-1]["cursor"]}
    )
    assert [(e["program"], e["to_status"]) for e in ndjson_lines(newer)] == [
        ("resume_probe", "coordinated")
    ]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("programs.csv", {"roadmap": "nope"}),
        ("programs.csv", {"status": "nope"}),
        ("programs.csv", {"known_at": "2024-01-01T00:00:00Z"}),  # needs as_of, as on the list
        ("programs.csv", {"as_of": "2022-02-30"}),
        ("progress_reports.csv", {"roadmap": "nope"}),
        ("events.csv", {"roadmap": "nope"}),
        ("events.csv", {"program": "nope"}),
        ("events.ndjson", {"program": "nope", "kind": "created"}),
        ("events.ndjson", {"kind": "nope"}),
        ("events.ndjson", {"known_at": "2024-01-01T00:00:00"}),  # no zone
        ("events.ndjson", {"after": "nope"}),
        ("events.ndjson", {"colour": "red"}),
    ],
)
async def test_a_bad_filter_is_422_before_the_stream_starts(
    client: httpx.AsyncClient, name: str, params: dict[str, str]
) -> None:
    response = await client.get(f"{API}/export/{name}", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_progress_reports_csv_holds_every_report_with_its_roadmap(
    client: httpx.AsyncClient,
) -> None:
    roadmaps = (await client.get(f"{API}/roadmaps")).json()["items"]
    expected: list[dict[str, Any]] = []
    for roadmap in roadmaps:
        progress = await client.get(f"{API}/roadmaps/{roadmap['code']}/progress")
        expected += progress.json()["items"]
    assert len({report["roadmap"] for report in expected}) > 1
    rows = csv_rows(await client.get(f"{API}/export/progress_reports.csv"))
    assert sorted(int(row["id"]) for row in rows) == sorted(r["id"] for r in expected)
    by_id = {int(row["id"]): row for row in rows}
    for report in expected:
        row = by_id[report["id"]]
        for column in ("roadmap", "date", "measures_done_pct", "statement", "created_at"):
            assert row[column] == str(report[column]), column
    one = csv_rows(
        await client.get(f"{API}/export/progress_reports.csv", params={"roadmap": ROADMAP})
    )
    assert [row["id"] for row in one] == [row["id"] for row in rows if row["roadmap"] == ROADMAP]


async def test_ndjson_dates_are_iso_dates_and_zoned_timestamps(client: httpx.AsyncClient) -> None:
    await some_writes(client)
    lines = ndjson_lines(await client.get(f"{API}/export/events.ndjson"))
    assert {e["kind"] for e in lines} >= {
        "created", "status_changed", "updated", "milestone_added", "milestone_updated"
    }  # fmt: skip
    for event in lines:
        assert date.fromisoformat(event["effective_date"]).isoformat() == event["effective_date"]
        recorded = datetime.fromisoformat(event["recorded_at"])
        assert recorded.utcoffset() == timedelta(0), event["recorded_at"]
    rows = csv_rows(await client.get(f"{API}/export/events.csv"))
    assert [(r["effective_date"], r["recorded_at"]) for r in rows] == [
        (e["effective_date"], e["recorded_at"]) for e in lines
    ]


@pytest.mark.parametrize("name", EXPORTS)
async def test_if_none_match_is_304_without_a_body(client: httpx.AsyncClient, name: str) -> None:
    first = await client.get(f"{API}/export/{name}")
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    again = await client.get(f"{API}/export/{name}", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    head = await client.head(f"{API}/export/{name}")
    assert (head.status_code, head.headers["etag"], head.content) == (200, etag, b"")
    # The query string is part of the tag: a filtered export is another one.
    other = await client.get(f"{API}/export/{name}", params={"roadmap": ROADMAP})
    assert other.status_code == 200
    assert other.headers["etag"] != etag


async def test_export_etags_move_after_a_write(client: httpx.AsyncClient) -> None:
    async def etags() -> dict[str, str]:
        return {n: (await client.get(f"{API}/export/{n}")).headers["etag"] for n in EXPORTS}

    before = await etags()
    assert await etags() == before  # stable while nothing changes
    patched = await client.patch(f"{API}/programs/transport", json={"summary": "changed"})
    assert patched.status_code == 200
    after_patch = await etags()
    changed = {n for n in EXPORTS if after_patch[n] != before[n]}
    # The progress reports' data did not change, but the fingerprint is shared: a spare 200.
    assert changed >= {"programs.csv", "events.csv", "events.ndjson"}
    report = {"date": "2023-01-01", "measures_done_pct": 50, "statement": "half"}
    posted = await client.post(f"{API}/roadmaps/{ROADMAP}/progress", json=report)
    assert posted.status_code == 201, posted.text
    assert (await etags())["progress_reports.csv"] != after_patch["progress_reports.csv"]
    for name, etag in before.items():
        stale = await client.get(f"{API}/export/{name}", headers={"If-None-Match": etag})
        assert stale.status_code == 200, name


async def test_an_export_ends_at_the_feed_end_its_etag_names(
    client: httpx.AsyncClient,
) -> None:
    lines = ndjson_lines(await client.get(f"{API}/export/events.ndjson"))
    assert lines[-1]["id"] == (await feed(client))[-1]["id"]


async def raw_get(client: httpx.AsyncClient, url: str, encoding: str) -> httpx.Response:
    """The response with its body as sent (httpx decodes a gzip body for .content)."""
    async with client.stream("GET", url, headers={"Accept-Encoding": encoding}) as response:
        response._content = b"".join([chunk async for chunk in response.aiter_raw()])
    return response


@pytest.mark.parametrize("name", [*EXPORTS, "../programs?limit=500", "../events?limit=500"])
async def test_gzip_round_trip(client: httpx.AsyncClient, name: str) -> None:
    url = f"{API}/export/{name}"
    plain = await raw_get(client, url, "identity")
    packed = await raw_get(client, url, "gzip")
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in packed.headers["vary"].lower()
    assert gzip.decompress(packed.content) == plain.content
    assert len(packed.content) < len(plain.content)
    assert packed.headers["etag"] == plain.headers["etag"]
    again = await client.get(url, headers={"If-None-Match": packed.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/programs?limit=500", "/events?limit=500"])
async def test_answers_are_compressed_by_isa_l(client: httpx.AsyncClient, path: str) -> None:
    """service.compression: the gzip is ISA-L's (five times faster than zlib), which Starlette's
    middleware would quietly stop using if the hook it overrides went away."""
    plain = await raw_get(client, f"{API}{path}", "identity")
    packed = await raw_get(client, f"{API}{path}", "gzip")
    compressor = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS)
    assert packed.content == compressor.compress(plain.content) + compressor.flush()


async def test_a_replay_is_the_same_answer_under_gzip(client: httpx.AsyncClient) -> None:
    await create_program(client, "gzip_replay")
    headers = {"Idempotency-Key": "gzip-1", "Accept-Encoding": "gzip"}
    body = {"to_status": "coordinated", "note": "agreed " * 100}
    first = await client.post(f"{API}/programs/gzip_replay/transitions", json=body, headers=headers)
    second = await client.post(
        f"{API}/programs/gzip_replay/transitions", json=body, headers=headers
    )
    assert first.status_code == second.status_code == 201
    assert first.headers["content-encoding"] == second.headers["content-encoding"] == "gzip"
    assert second.headers["idempotent-replayed"] == "true"
    assert second.content == first.content  # decoded: the representation, byte for byte
    assert second.headers["etag"] == first.headers["etag"] == '"2"'  # strong, as If-Match needs
    ok = await client.patch(
        f"{API}/programs/gzip_replay",
        json={"summary": "x"},
        headers={"If-Match": first.headers["etag"], "Accept-Encoding": "gzip"},
    )
    assert ok.status_code == 200, ok.text


async def test_the_live_stream_is_never_gzipped(
    app: FastAPI, api_tokens: Mapping[str, str]
) -> None:
    """A compressor would hold the SSE headers and events back until it has enough to pack."""
    started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    async def receive() -> Message:
        await started
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"{API}/events/stream",
        "raw_path": f"{API}/events/stream".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"accept-encoding", b"gzip")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "state": {},
    }
    served = asyncio.create_task(app(scope, receive, send))
    start = await asyncio.wait_for(started, timeout=10)
    await asyncio.wait_for(served, timeout=10)
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    assert headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in headers


async def test_a_head_cuts_no_page_read_short(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """HEAD hangs up once the headers are out, which cancels the stream while it may be reading
    its first page: a read cut mid-query leaves its connection's close pending for ever."""
    gc.collect()  # what earlier tests left behind is theirs
    caplog.clear()
    for _ in range(5):
        for name in EXPORTS:
            assert (await client.head(f"{API}/export/{name}")).status_code == 200
    await asyncio.sleep(0.1)
    gc.collect()
    await asyncio.sleep(0.1)
    assert "Task was destroyed" not in caplog.text


async def test_the_feed_read_stops_at_until(app: FastAPI, client: httpx.AsyncClient) -> None:
    """An export reads up to the feed's end when it began, so under a steady stream of writes
    it still ends, and holds exactly what its ETag names."""
    lines = ndjson_lines(await client.get(f"{API}/export/events.ndjson"))
    until = decode_feed_cursor(lines[9]["cursor"])
    async with app.state.sessionmaker() as session:
        rows, position = await read_feed(session, after=START, limit=500, until=until)
    assert [row.event.id for row in rows] == [e["id"] for e in lines[:10]]
    assert position == until


@pytest.mark.parametrize(
    "params",
    [{}, {"state": "missed"}, {"program": "gas_market"}, {"due_before": "2023-01-01"},
     {"roadmap": "union-state-2024-2026"}],
)  # fmt: skip
async def test_milestones_csv_lists_what_the_list_lists(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await create_probe(client)  # an overdue milestone besides the seeded ones
    listed = (await client.get(f"{API}/milestones", params={**params, "limit": 500})).json()
    rows = csv_rows(await client.get(f"{API}/export/milestones.csv", params=params))
    assert [(r["id"], r["program"], r["state"], r["set_on"], r["due_date"]) for r in rows] == [
        (str(m["id"]), m["program"], m["state"], m["set_on"], m["due_date"] or "")
        for m in listed["items"]
    ]


async def test_milestones_csv_refuses_a_programme_that_does_not_exist(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/export/milestones.csv", params={"program": "nope"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
