"""What Grafana (and pandas) send and read: days as dates, ISO 8601 moments or epoch
milliseconds; stats in long format and as CSV; the bundled dashboard's queries."""

import csv
import io
import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.support.builders import API, create_program

DASHBOARD = Path(__file__).resolve().parents[2] / "grafana" / "roadmap-dashboard.json"
PROBLEM = "application/problem+json"

# gas_market was delayed on 2022-12-16: the day before answers differently everywhere.
DAY = date(2022, 12, 16)
DAY_BEFORE = DAY - timedelta(days=1)


def epoch_ms(moment: datetime) -> str:
    return str((moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1))


def forms_of(day: date) -> list[str]:
    """Ways a client may write `day` (as a UTC calendar day), the plain date aside."""
    midnight = datetime.combine(day, time(), tzinfo=UTC)
    return [
        f"{day}T12:00:00Z",
        f"{day}T12:00:00.000Z",
        f"{day}T23:59:59.999999+00:00",
        f"{day + timedelta(days=1)}T01:00:00+03:00",  # 22:00 UTC the day before
        f"{day - timedelta(days=1)}T22:00:00-05:00",  # 03:00 UTC the day after
        epoch_ms(midnight),
        epoch_ms(midnight + timedelta(days=1) - timedelta(milliseconds=1)),
    ]


def as_of_reads(app: FastAPI) -> list[str]:
    """Every read that takes `as_of`, from the OpenAPI document, with a programme's code."""
    return [
        path.removeprefix(API).replace("{code}", "gas_market")
        for path, operations in app.openapi()["paths"].items()
        if any(p["name"] == "as_of" for p in operations.get("get", {}).get("parameters", []))
    ]


async def test_every_as_of_read_takes_each_form_of_a_day(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    reads = as_of_reads(app)
    assert {"/programs", "/programs/gas_market", "/stats/summary", "/stats/summary.csv"} <= set(
        reads
    )
    for path in reads:
        plain = await client.get(f"{API}{path}", params={"as_of": DAY.isoformat()})
        before = await client.get(f"{API}{path}", params={"as_of": DAY_BEFORE.isoformat()})
        assert plain.status_code == before.status_code == 200, (path, plain.text)
        assert plain.content != before.content, path  # so that equal answers mean something
        for form in forms_of(DAY):
            answer = await client.get(f"{API}{path}", params={"as_of": form})
            assert (answer.status_code, answer.content) == (200, plain.content), (path, form)


@pytest.mark.parametrize("path", ["/stats/timeline", "/stats/timeline.csv"])
async def test_timeline_start_and_end_take_each_form_of_a_day(
    client: httpx.AsyncClient, path: str
) -> None:
    start = date(2022, 1, 1)

    async def timeline(start: str, end: str) -> httpx.Response:
        params = {"start": start, "end": end, "interval": "month"}
        response = await client.get(f"{API}{path}", params=params)
        assert response.status_code == 200, (start, end, response.text)
        return response

    plain = await timeline(start.isoformat(), DAY.isoformat())
    assert plain.content != (await timeline(start.isoformat(), DAY_BEFORE.isoformat())).content
    for start_form, end_form in zip(forms_of(start), forms_of(DAY), strict=True):
        assert (await timeline(start_form, end_form)).content == plain.content


FIRST_MS = epoch_ms(datetime(1, 1, 1, tzinfo=UTC))
LAST_MS = epoch_ms(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
NOT_DAYS = [
    "",
    "yesterday",
    "16/12/2022",
    "2022-12-32",
    "2022-12-16T25:00:00Z",
    "2022-12-16T12:00:00+25:00",
    "20221216",  # a basic ISO date, not 20 million milliseconds
    epoch_ms(datetime(2022, 12, 16, tzinfo=UTC))[:-3],  # epoch seconds
    "1.6711488e12",
    str(int(FIRST_MS) - 1),
    str(int(LAST_MS) + 1),
    "9" * 40,
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-01:00",  # after 9999 in UTC
]


@pytest.mark.parametrize("value", NOT_DAYS)
async def test_anything_else_is_refused_naming_the_forms(
    client: httpx.AsyncClient, value: str
) -> None:
    for path, name in [
        ("/stats/summary", "as_of"),
        ("/programs", "as_of"),
        ("/stats/timeline", "start"),
        ("/stats/timeline.csv", "end"),
    ]:
        params = {"start": "2022-01-01"} if "timeline" in path else {}
        params[name] = value
        response = await client.get(f"{API}{path}", params=params)
        assert response.status_code == 422, (path, value, response.text)
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert [error["loc"] for error in problem["errors"]] == [["query", name]]
        for form in ("2024-01-29", "2024-01-29T12:00:00Z", "epoch milliseconds"):
            assert form in problem["detail"], (value, problem["detail"])


async def test_the_bounds_of_the_calendar_are_answered(client: httpx.AsyncClient) -> None:
    for value in (FIRST_MS, LAST_MS, "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"):
        response = await client.get(f"{API}/stats/summary", params={"as_of": value})
        assert response.status_code == 200, (value, response.text)


def test_the_document_names_the_accepted_forms(app: FastAPI) -> None:
    parameters = app.openapi()["paths"][f"{API}/stats/timeline"]["get"]["parameters"]
    start = next(p for p in parameters if p["name"] == "start")
    assert {form.get("format") for form in start["schema"]["anyOf"]} == {"date", "date-time", None}
    assert "epoch milliseconds" in start["description"]


# --- long format and CSV ------------------------------------------------------------------------


def long_rows_of(wide: list[tuple[str, dict[str, int]]]) -> list[dict[str, Any]]:
    return [
        {"date": day, "status": status, "count": count}
        for day, by_status in wide
        for status, count in by_status.items()
    ]


async def get_json(client: httpx.AsyncClient, path: str, **params: str) -> Any:
    response = await client.get(f"{API}{path}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_long_summary_is_the_wide_one_row_per_status(client: httpx.AsyncClient) -> None:
    wide = await get_json(client, "/stats/summary", as_of="2023-06-30")
    long = await get_json(client, "/stats/summary", as_of="2023-06-30", format="long")
    assert long == long_rows_of([(wide["as_of"], wide["by_status"])])
    assert await get_json(client, "/stats/summary", as_of="2023-06-30", format="wide") == wide


async def test_long_timeline_is_the_wide_one_row_per_point_and_status(
    client: httpx.AsyncClient,
) -> None:
    params = {"start": "2021-01-01", "end": "2024-12-31", "interval": "quarter"}
    wide = await get_json(client, "/stats/timeline", **params)
    long = await get_json(client, "/stats/timeline", **params, format="long")
    assert long == long_rows_of([(p["date"], p["by_status"]) for p in wide["points"]])
    assert len(long) == len(wide["points"]) * len(wide["points"][0]["by_status"])


def read_csv(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    reader = csv.DictReader(io.StringIO(response.content.decode("utf-8")))
    assert reader.fieldnames == ["date", "status", "count"]
    return [{**row, "count": int(row["count"])} for row in reader]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/stats/summary", {"as_of": "2023-06-30", "roadmap": "union-state-2021-2023"}),
        ("/stats/timeline", {"start": "2021-01-01", "interval": "quarter"}),
        ("/stats/timeline", {"start": "2022-12-01", "end": "2022-12-31", "interval": "week"}),
    ],
)
async def test_csv_is_the_long_json(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    long = await get_json(client, path, **params, format="long")
    assert long
    assert read_csv(await client.get(f"{API}{path}.csv", params=params)) == long


async def test_csv_is_refused_like_the_json(client: httpx.AsyncClient) -> None:
    for path, params in [
        ("/stats/timeline.csv", {"start": "2024-01-02", "end": "2024-01-01"}),
        ("/stats/timeline.csv", {"start": "1900-01-01", "interval": "day"}),
        ("/stats/summary.csv", {"format": "long"}),  # the path says the format
        ("/stats/summary.csv", {"roadmap": "no-such-roadmap"}),
        ("/stats/summary", {"format": "tall"}),
    ]:
        response = await client.get(f"{API}{path}", params=params)
        assert response.status_code == 422, (path, params, response.text)
        assert response.headers["content-type"] == PROBLEM


async def test_csv_is_cached_and_revalidated_like_the_json(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    address = f"{API}/stats/timeline.csv?start=2021-01-01&interval=year"
    cached = len(app.state.view_cache)
    first = await client.get(address)
    assert len(app.state.view_cache) == cached + 1
    again = await client.get(address)  # from this worker's cache
    assert (again.content, again.headers["etag"]) == (first.content, first.headers["etag"])
    assert again.headers["content-type"] == first.headers["content-type"]
    etag = first.headers["etag"]
    long = await client.get(f"{API}/stats/timeline?start=2021-01-01&interval=year&format=long")
    assert long.headers["etag"] != etag  # another representation, another tag
    unchanged = await client.get(address, headers={"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["etag"] == etag

    await create_program(client, "grafana_check")  # a draft today: the last point moves
    changed = await client.get(address, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert read_csv(changed) != read_csv(first)


# --- the dashboard ------------------------------------------------------------------------------


def dashboard_targets() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_asks_for_an_infinity_data_source_on_import() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    (source,) = dashboard["__inputs"]
    assert (source["type"], source["pluginId"]) == ("datasource", "yesoreyeram-infinity-datasource")
    uses = [panel["datasource"] for panel in dashboard["panels"]] + [
        target["datasource"] for target in dashboard_targets()
    ]
    assert {use["uid"] for use in uses} == {f"${{{source['name']}}}"}
    assert {panel["type"] for panel in dashboard["panels"]} == {"piechart", "timeseries", "table"}


def grafana_url(url: str, *, start: datetime, end: datetime) -> str:
    """The URL as Grafana sends it: the time range as epoch milliseconds."""
    url = url.replace("${__from}", epoch_ms(start)).replace("${__to}", epoch_ms(end))
    assert "$" not in url, f"a variable the test does not know: {url}"
    return url


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2021, 1, 1, tzinfo=UTC), datetime.now(UTC)),  # the dashboard's default
        (datetime(2023, 3, 5, 7, 30, tzinfo=UTC), datetime(2023, 3, 5, 13, tzinfo=UTC)),
    ],
)
async def test_every_panel_query_is_answered(
    app: FastAPI, client: httpx.AsyncClient, start: datetime, end: datetime
) -> None:
    paths = app.openapi()["paths"]
    for target in dashboard_targets():
        url = grafana_url(target["url"], start=start, end=end)
        parts = urlsplit(url)
        assert parts.path in paths, url
        assert "get" in paths[parts.path], url
        declared = {p["name"] for p in paths[parts.path]["get"].get("parameters", [])}
        assert {name for name, _ in parse_qsl(parts.query)} <= declared, url
        response = await client.get(url)
        assert response.status_code == 200, (url, response.text)
        rows = response.json()
        if target["root_selector"]:
            rows = rows[target["root_selector"]]
        assert rows, url
        for column in target["columns"]:
            assert column["selector"] in rows[0], (url, column)
            if column.get("timestampFormat") == "2006-01-02":  # Go's layout for a plain date
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rows[0][column["selector"]])
