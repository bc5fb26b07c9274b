"""Query strings say exactly what a route understands, or are refused.

A dashboard with a typo (`?statuss=completed`) would otherwise get every programme and show
wrong numbers that nobody notices; a parameter given twice (`?status=a&status=b`) would quietly
mean only the last one. Both are refused with a 422 problem that names the parameter.

Parameters whose name starts with "_" are the exception: clients append them to defeat caches
(`_=1700000000000` from browser libraries, `_bench=N` from the benchmark), and the service
ignores them.
"""

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from service.errors import InvalidInput


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {field.alias for field in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return frozenset(names)


_ACCEPTED: dict[Callable[..., Any], frozenset[str]] = {}


def accepted_query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters `route` declares, through all its dependencies (worked out once
    per endpoint: a route object is not hashable, its endpoint function is)."""
    names = _ACCEPTED.get(route.endpoint)
    if names is None:
        names = _ACCEPTED[route.endpoint] = _query_names(route.dependant)
    return names


def unexpected_query(received: list[tuple[str, str]], accepted: frozenset[str]) -> dict[str, str]:
    """What is wrong with a query string: a reason per offending parameter. Pure."""
    problems: dict[str, str] = {}
    seen: set[str] = set()
    for name, _value in received:
        if name.startswith("_") or name in problems:
            continue
        if name not in accepted:
            known = ", ".join(sorted(accepted)) or "none"
            problems[name] = f"unknown query parameter (this route takes: {known})"
        elif name in seen:
            problems[name] = "given more than once; give it once"
        seen.add(name)
    return problems


async def refuse_unexpected_query(request: Request) -> None:
    """An app-wide dependency: 422 for a query parameter the route does not take, or one given
    twice."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    if not route.include_in_schema:
        # Pages for people (the board): a shared link carries whatever its sharer's tools
        # added (utm_source, fbclid…), and a page must still open.
        return
    problems = unexpected_query(request.query_params.multi_items(), accepted_query_names(route))
    if problems:
        raise InvalidInput(
            "The query is not valid: "
            + "; ".join(f"{name}: {reason}" for name, reason in problems.items())[:1000],
            errors=[
                {"loc": ["query", name], "msg": reason, "type": "query_parameter"}
                for name, reason in problems.items()
            ],
        )
