"""Prometheus metrics: requests labelled by the full route template (never a raw path) and
status, latency without the live streams, the build's version, and the process_* and python_*
metrics; scraped by a real Prometheus when one is installed."""

import json
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from service.logs import RequestLog
from service.metrics import LATENCY, REQUESTS, route_template
from tests.support.builders import API
from tests.support.servers import free_port, start_server

PROGRAM = f"{API}/programs/{{code}}"


def _endpoint() -> None: ...


def scope_of(path: str, route: Route | None, **params: str) -> Scope:
    scope: Scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
    if route is not None:
        scope.update(route=route, path_params=params)
    return scope


@pytest.mark.parametrize(
    "declared",
    [
        "/programs/{code}",  # FastAPI 0.165: the route as its router declared it
        f"{API}/programs/{{code}}",  # FastAPI 0.115: with the prefix it was included with
    ],
)
def test_the_route_label_is_the_full_template_whatever_fastapi_records(declared: str) -> None:
    scope = scope_of(f"{API}/programs/gas_market", Route(declared, _endpoint), code="gas_market")
    assert route_template(scope) == PROGRAM
    behind_a_proxy = {**scope, "root_path": "/roadmap", "path": f"/roadmap{API}/programs/x"}
    assert route_template({**behind_a_proxy, "path_params": {"code": "x"}}) == PROGRAM


def test_a_path_no_route_serves_is_unmatched() -> None:
    assert route_template(scope_of(f"{API}/no/such/thing", None)) == "unmatched"


def samples(text: str, family: str) -> list[dict[str, Any]]:
    return [
        {**sample.labels, "name": sample.name, "value": sample.value}
        for metric in text_string_to_metric_families(text)
        if metric.name == family
        for sample in metric.samples
    ]


async def test_requests_are_labelled_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    await client.get(f"{API}/programs/gas_market")
    await client.head(f"{API}/programs/gas_market")
    await client.get(f"{API}/programs/no_such_programme")
    await client.get(f"{API}/no/such/path")
    text = (await client.get("/metrics")).text
    counted = {
        (s["method"], s["route"], s["status"])
        for s in samples(text, "roadmap_http_requests")
        if s["name"] == "roadmap_http_requests_total"
    }
    assert {
        ("GET", PROGRAM, "200"),
        ("HEAD", PROGRAM, "200"),
        ("GET", PROGRAM, "404"),
        ("GET", "unmatched", "404"),
    } <= counted
    timed = {
        (s["method"], s["route"], s["status"])
        for s in samples(text, "roadmap_http_request_duration_seconds")
        if s["name"] == "roadmap_http_request_duration_seconds_count"
    }
    assert ("GET", PROGRAM, "200") in timed
    assert ("GET", PROGRAM, "404") in timed
    assert not any("gas_market" in route or "no_such" in route for _, route, _ in counted)


async def test_the_build_and_the_process_are_on_metrics(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    assert samples(text, "roadmap_build_info") == [
        {"name": "roadmap_build_info", "version": metadata.version("roadmap"), "value": 1.0}
    ]
    names = {metric.name for metric in text_string_to_metric_families(text)}
    assert {"process_resident_memory_bytes", "process_start_time_seconds", "python_info"} <= names


async def test_a_live_stream_is_counted_but_not_timed() -> None:
    route = Route("/events/stream", _endpoint)

    async def streaming_app(scope: Scope, _receive: Receive, send: Send) -> None:
        scope.update(route=route, path_params={})
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b": ping\r\n\r\n"})

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(_message: Message) -> None:
        pass

    stream = ("GET", f"{API}/events/stream", "200")
    counted_before = REQUESTS.labels(*stream)._value.get()
    await RequestLog(streaming_app)(scope_of(f"{API}/events/stream", None), receive, send)
    assert REQUESTS.labels(*stream)._value.get() == counted_before + 1
    timed = {labels for labels, _ in LATENCY._metrics.items()}
    assert stream not in timed


def _prometheus_query(base: str, query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/api/v1/query", params={"query": query}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _wait_for(base: str, query: str, deadline: float) -> list[dict[str, Any]]:
    while True:
        try:
            result = _prometheus_query(base, query)
        except httpx.TransportError:
            result = []
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")
def test_prometheus_scrapes_the_pooled_workers(live_database: str, tmp_path: Path) -> None:
    server = start_server(live_database, tmp_path / "server.log", workers=2)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    target = server.base_url.removeprefix("http://")
    # JSON is YAML: one scrape a second of the server's /metrics.
    scrape = {
        "job_name": "roadmap",
        "scrape_interval": "1s",
        "static_configs": [{"targets": [target]}],
    }
    config.write_text(json.dumps({"scrape_configs": [scrape]}))
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=server.base_url) as http:
            for code in ("gas_market", "transport", "gas_market"):  # served by either worker
                assert http.get(f"{API}/programs/{code}").status_code == 200
        deadline = time.monotonic() + 30
        timed = _wait_for(
            base,
            f'roadmap_http_request_duration_seconds_count{{route="{PROGRAM}",status="200"}}',
            deadline,
        )
        assert [float(series["value"][1]) for series in timed] == [3.0], timed
        build = _wait_for(base, "roadmap_build_info", deadline)
        assert [series["metric"]["version"] for series in build] == [metadata.version("roadmap")]
        for name in ("process_resident_memory_bytes", "python_info"):
            assert _wait_for(base, name, deadline), f"{name} was not scraped"
        routes = {
            s["metric"]["route"] for s in _prometheus_query(base, "roadmap_http_requests_total")
        }
        assert PROGRAM in routes
        assert not any("gas_market" in route or "transport" in route for route in routes)
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=10)
        assert server.stop() == 0
