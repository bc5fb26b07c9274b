"""The OpenAPI document, made to say what the service does, so that generated clients work as
they are: every error is problem+json; reads declare their optional key, their conditional
requests and their media types; operation ids are the route functions' names. And the pages
that render it, /docs and /redoc, served from the package so that they work offline."""

from collections.abc import Callable, Iterator
from copy import deepcopy
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from service.auth.dependencies import get_caller, require_reader
from service.caching import computed_view
from service.errors import PROBLEM_MEDIA_TYPE, ProblemDocument

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

# Reads that answer 304 to a current If-None-Match without taking a ComputedView dependency
# (those are found by it): they work out their ETag in the route itself. The conditional
# requests test checks every GET of the document against the server, both ways.
_CONDITIONAL_IN_ROUTE = frozenset(
    {
        "get_program",
        "list_events",
        "programs_csv",
        "progress_reports_csv",
        "milestones_csv",
        "events_csv",
        "events_ndjson",
    }
)
# Writes that answer with the programme's new ETag besides those taking If-Match.
_WRITES_WITH_ETAG = frozenset({"create_program"})
# Answers that are not JSON, by path: kept here rather than on the routes so the document is
# described in one place.
_MEDIA_TYPES = {
    "/api/v1/export/programs.csv": "text/csv",
    "/api/v1/export/progress_reports.csv": "text/csv",
    "/api/v1/export/milestones.csv": "text/csv",
    "/api/v1/export/events.csv": "text/csv",
    "/api/v1/export/events.ndjson": "application/x-ndjson",
    "/api/v1/events/stream": "text/event-stream",
}

_ETAG_HEADER = {
    "ETag": {
        "description": "The entity tag of this answer: send it back in If-None-Match "
        "(or, for a programme, in If-Match on a change).",
        "schema": {"type": "string"},
    }
}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of the copy the client has: 304 without a body if it is current.",
    "schema": {"type": "string"},
}
_NOT_MODIFIED = {
    "description": "Not Modified: the client's copy is current",
    "headers": _ETAG_HEADER,
}


def operation_id(route: APIRoute) -> str:
    """The route function's name (`list_programs`): short, stable and what the code calls it.
    Function names are unique across the routers; a test keeps them so."""
    return route.name


def _describe_errors(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "requestBody" in operation:
        # A body that is not JSON at all is refused before validation; one over the size limit
        # before it is even read (service.limits).
        responses.setdefault("400", {"description": "Bad Request"})
        responses.setdefault("413", {"description": "Content Too Large"})
    if operation.get("parameters") or "requestBody" in operation:
        responses.setdefault("422", {"description": "Unprocessable Content"})
    for status, response in responses.items():
        if status[0] in "45":
            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def _caller_checks(dependant: Dependant) -> set[Callable[..., Any] | None]:
    """The dependencies that decide on the caller: those that take get_caller."""
    checks = set()
    for dependency in dependant.dependencies:
        if dependency.call is get_caller:
            checks.add(dependant.call)
        checks |= _caller_checks(dependency)
    return checks


def _key_optional(route: APIRoute, app: FastAPI) -> bool:
    """Whether the route works without a key. The rule is the code's own: a route whose only
    check on the caller is require_reader is a read, public unless the settings say otherwise;
    any other check (require(role), which writes and key administration take) needs a key."""
    if app.state.settings.require_auth_for_reads:
        return False
    return _caller_checks(route.dependant) == {require_reader}


def _is_conditional_read(route: APIRoute) -> bool:
    return computed_view in _calls(route.dependant) or route.name in _CONDITIONAL_IN_ROUTE


def _takes_if_match(operation: dict[str, Any]) -> bool:
    return any(p["name"] == "If-Match" for p in operation.get("parameters", []))


def _declare_conditional_read(operation: dict[str, Any]) -> None:
    operation.setdefault("parameters", []).append(deepcopy(_IF_NONE_MATCH))
    responses = operation["responses"]
    responses["200"]["headers"] = deepcopy(_ETAG_HEADER)
    responses["304"] = deepcopy(_NOT_MODIFIED)


def _declare_etag_on_write(operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    for status, response in responses.items():
        if status.startswith("2"):
            response["headers"] = deepcopy(_ETAG_HEADER)
    if _takes_if_match(operation):
        responses.setdefault("412", {"description": "Precondition Failed"})
        responses.setdefault("428", {"description": "Precondition Required"})


def _describe_route(route: APIRoute, method: str, operation: dict[str, Any], app: FastAPI) -> None:
    if _key_optional(route, app):
        # No requirement: a key is still checked if one is sent (a bad one is a 401), but none
        # is needed. Not `[{}, {"HTTPBearer": []}]` ("this key or none"), which says the same
        # but makes openapi-python-client demand an AuthenticatedClient (its issue 1372).
        operation["security"] = []
    if method == "get" and _is_conditional_read(route):
        _declare_conditional_read(operation)
    if route.name in _WRITES_WITH_ETAG or _takes_if_match(operation):
        _declare_etag_on_write(operation)
    media_type = _MEDIA_TYPES.get(route.path_format)
    if media_type is not None:
        operation["responses"]["200"]["content"] = {media_type: {"schema": {"type": "string"}}}


def _api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every API route with its full path and the dependencies it was included with. FastAPI
    0.165 keeps included routers whole and gives their routes in context; 0.115 copied them."""
    iter_route_contexts = getattr(routing, "iter_route_contexts", None)
    if iter_route_contexts is None:
        yield from (route for route in app.routes if isinstance(route, APIRoute))
        return
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context  # not an APIRoute, but it answers for one


def _operations(
    app: FastAPI, document: dict[str, Any]
) -> Iterator[tuple[APIRoute, str, dict[str, Any]]]:
    paths = document.get("paths", {})
    for route in _api_routes(app):
        for method, operation in paths.get(route.path_format, {}).items():
            if method.upper() in (route.methods or ()):
                yield route, method, operation


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    for route, method, operation in _operations(app, document):
        _describe_route(route, method, operation, app)
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            _describe_errors(operation)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = ProblemDocument.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    app.openapi_schema = document
    return document


DOCS_ASSETS = "/docs-assets"


def _install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from the copies fastapi-offline ships, not from a CDN:
    the pages name no other host, so they work on a disconnected network. The app is built
    with docs_url=None and redoc_url=None."""
    assets = str(files("fastapi_offline") / "static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    favicon = f"{DOCS_ASSETS}/favicon.png"
    # A string, not the app: an endpoint that closed over its app would keep it alive for as
    # long as FastAPI's caches of endpoint callables hold the endpoint.
    title = f"{app.title} – API"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=favicon,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=title,
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )


def install_openapi(app: FastAPI) -> None:
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    _install_docs(app)
