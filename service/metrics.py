"""Prometheus metrics: requests by route template (never raw paths), status and method, with
latency histograms; programmes by status and events in total, read from the database at scrape
time so every worker reports the same truth; the build's version; and the process_* and
python_* metrics of the process that answers the scrape; webhook deliveries by outcome
(counted by the dispatchers) and each subscription's lag (read at scrape time).

Under `roadmap serve` the request metrics of all workers are aggregated through
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set up by the CLI).
"""

import os
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from importlib import metadata

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.routing import replace_params
from starlette.types import Scope

from service.db import open_session
from service.edges import route_path
from service.models.programs import Program
from service.rules.workflow import STATES
from service.webhooks.dispatch import lag_by_webhook

REQUESTS = Counter("roadmap_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "roadmap_http_request_duration_seconds",
    "HTTP request duration (live streams excluded: they last as long as the client listens)",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

UNMATCHED = "unmatched"

router = APIRouter(tags=["operations"])


def route_template(scope: Scope) -> str:
    """The matched route's full template, e.g. /api/v1/programs/{code}; "unmatched" if none.

    Not simply scope["route"].path_format: FastAPI 0.115 gave an included route the template
    with every prefix, FastAPI 0.165 gives the route as its router declared it
    (/programs/{code}) and keeps the prefix it was included with (/api/v1) elsewhere. So the
    prefix is read off the request: the route's template, filled with the request's path
    parameters, is the tail of the path, and whatever precedes it is the prefix, the same under
    either version. The prefixes are fixed strings (service.main), so no raw value reaches a
    label; a prefix with parameters of its own would leave parameters unused, and the route's
    own template is then used as it is.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str) or not template:
        return UNMATCHED
    convertors = getattr(route, "param_convertors", None) or {}
    try:
        concrete, unused = replace_params(template, convertors, dict(scope.get("path_params", {})))
    except (KeyError, TypeError, ValueError):
        return template
    path = route_path(scope)
    if unused or not path.endswith(concrete):
        return template
    return path[: len(path) - len(concrete)] + template


def record_request(
    method: str, route: str, status: int, seconds: float, *, observe_latency: bool = True
) -> None:
    _requests(method, route, status).inc()
    if observe_latency:
        _latency(method, route, status).observe(seconds)


# labels() costs as much as the rest of recording a request; the label sets are few (routes are
# templates), and a method no route knows only ever costs a miss.
@lru_cache(maxsize=1024)
def _requests(method: str, route: str, status: int) -> Counter:
    return REQUESTS.labels(method, route, str(status))


@lru_cache(maxsize=1024)
def _latency(method: str, route: str, status: int) -> Histogram:
    return LATENCY.labels(method, route, str(status))


@cache
def _version() -> str:
    try:
        return metadata.version("roadmap")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _Snapshot(Collector):
    def __init__(
        self, by_status: dict[str, int], events: int, webhook_lag: Sequence[tuple[int, int]]
    ) -> None:
        self.by_status, self.events, self.webhook_lag = by_status, events, webhook_lag

    def collect(self) -> list[Metric]:
        programs = GaugeMetricFamily("roadmap_programs", "Programmes by status", labels=["status"])
        for status, count in self.by_status.items():
            programs.add_metric([status], count)
        events = GaugeMetricFamily("roadmap_events", "Events in the history, in total")
        events.add_metric([], self.events)
        # An info metric as Prometheus has them: the value is 1, the label says it all.
        build = GaugeMetricFamily("roadmap_build_info", "The running version", labels=["version"])
        build.add_metric([_version()], 1)
        lag = GaugeMetricFamily(
            "roadmap_webhook_lag_events",
            "Events in the feed after a webhook subscription's cursor: not yet delivered "
            "(or not yet passed over, if its filters do not take them)",
            labels=["webhook"],
        )
        for webhook_id, behind in self.webhook_lag:
            lag.add_metric([str(webhook_id)], behind)
        return [programs, events, build, lag]


@cache
def _multiprocess_registry() -> CollectorRegistry:
    """The request metrics of every worker, summed from their files, and beside them the
    process_* and python_* metrics of the one worker answering this scrape (its memory, CPU,
    open files, start time, garbage collections; the pool's other workers and the supervising
    process are not in them): those collectors read /proc and the running interpreter, which
    the multiprocess files cannot aggregate."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    collectors: Iterable[Collector] = (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR)
    for collector in collectors:
        registry.register(collector)
    return registry


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
        webhook_lag = await lag_by_webhook(session)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        body = generate_latest(_multiprocess_registry())
    else:  # prometheus_client's default registry: our metrics, process_* and python_*
        body = generate_latest(REGISTRY)
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot(by_status, int(events), webhook_lag))
    return Response(body + generate_latest(snapshot), media_type=CONTENT_TYPE_LATEST)
