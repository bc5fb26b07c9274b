"""Prometheus metrics: requests by route template (never raw paths), status and method, with
latency histograms; programmes by status and events in total, read from the database at scrape
time so every worker reports the same truth.

Under `roadmap serve` the request metrics of all workers are aggregated through
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set up by the CLI).
"""

import os

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import Scope

from service.db import open_session
from service.programs.models import Program
from service.workflow import STATES

REQUESTS = Counter("roadmap_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "roadmap_http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

router = APIRouter(tags=["operations"])


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


class _Snapshot(Collector):
    def __init__(self, by_status: dict[str, int], events: int) -> None:
        self.by_status, self.events = by_status, events

    def collect(self) -> list[GaugeMetricFamily]:
        programs = GaugeMetricFamily("roadmap_programs", "Programmes by status", labels=["status"])
        for status, count in self.by_status.items():
            programs.add_metric([status], count)
        events = GaugeMetricFamily("roadmap_events", "Events in the history, in total")
        events.add_metric([], self.events)
        return [programs, events]


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    by_status = {state.name.value: 0 for state in STATES}
    async with open_session(request) as session:
        for status, count in await session.execute(
            select(Program.status, func.count()).group_by(Program.status)
        ):
            by_status[status] = count
        # Every event bumps its programme's version: the sum counts events without scanning
        # them.
        events = await session.scalar(select(func.coalesce(func.sum(Program.version), 0))) or 0
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot(by_status, int(events)))
    return Response(body + generate_latest(snapshot), media_type=CONTENT_TYPE_LATEST)
