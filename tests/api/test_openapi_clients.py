"""The OpenAPI document works for the tools that read it: a client generated from it as it is
(openapi-python-client) reads the public record without a key and revalidates with ETags; the
document's security, conditional requests, media types and operation ids say what the server
does."""

import importlib
import inspect
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.config import Settings
from service.main import API_PREFIX, create_app
from tests.support.builders import bearer

API = API_PREFIX
BEARER_REQUIRED: list[dict[str, list[str]]] = [{"HTTPBearer": []}]
# Path parameters and required query parameters that name something in the seeded database.
EXAMPLE_PATHS = {"{code}": "gas_market"}
EXAMPLE_ROADMAP = "union-state-2021-2023"
REQUIRED_QUERY = {"/stats/timeline": "start=2024-01-01", "/stats/timeline.csv": "start=2024-01-01"}
NEVER_ENDS = f"{API}/events/stream"


def document(**settings: Any) -> dict[str, Any]:
    return create_app(Settings(**settings)).openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    ]


def test_operation_ids_are_the_route_function_names() -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document())]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert not [i for i in ids if "api_v1" in i]
    assert {"list_programs", "get_program", "transition_program", "get_workflow"} <= set(ids)


def test_reads_need_no_key_unless_the_settings_say_so() -> None:
    public = {(m, p): op.get("security") for m, p, op in operations(document())}
    assert public["get", f"{API}/programs"] == []
    assert public["get", f"{API}/export/events.csv"] == []
    # Writes and key administration (a GET too) keep the key required.
    assert public["post", f"{API}/programs/{{code}}/transitions"] == BEARER_REQUIRED
    assert public["post", f"{API}/roadmaps"] == BEARER_REQUIRED
    assert public["get", f"{API}/keys"] == BEARER_REQUIRED
    assert public["get", "/healthz"] is None

    closed = {
        (m, p): op.get("security") for m, p, op in operations(document(require_auth_for_reads=True))
    }
    assert closed["get", f"{API}/programs"] == BEARER_REQUIRED
    assert closed["get", f"{API}/export/events.csv"] == BEARER_REQUIRED


def test_every_json_answer_has_a_named_schema() -> None:
    unnamed = []
    for method, path, operation in operations(document()):
        for status, response in operation["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                continue
            branches = schema.get("anyOf", [schema])
            if not all("$ref" in branch for branch in branches):
                unnamed.append(f"{method.upper()} {path} {status}")
    assert not unnamed


def test_exports_and_the_stream_declare_their_media_types() -> None:
    paths = document()["paths"]
    expected = {
        "/export/programs.csv": "text/csv",
        "/export/events.csv": "text/csv",
        "/export/events.ndjson": "application/x-ndjson",
        "/events/stream": "text/event-stream",
    }
    for path, media_type in expected.items():
        assert list(paths[API + path]["get"]["responses"]["200"]["content"]) == [media_type]


def test_writes_taking_if_match_declare_its_failures_and_the_new_etag() -> None:
    for method, path, operation in operations(document()):
        names = {p["name"] for p in operation.get("parameters", [])}
        if "If-Match" in names:
            responses = operation["responses"]
            assert {"412", "428"} <= set(responses), f"{method} {path}"
            success = [r for status, r in responses.items() if status.startswith("2")]
            assert all("ETag" in r.get("headers", {}) for r in success), f"{method} {path}"


EXAMPLE_CODES = {"roadmaps": EXAMPLE_ROADMAP, "decisions": "ssc-decree-6-2021"}


def example_url(path: str, webhook_id: int | None = None) -> str:
    collection = path.removeprefix(API).split("/")[1]
    url = path.replace("{code}", EXAMPLE_CODES.get(collection, "gas_market"))
    url = url.replace("{webhook_id}", str(webhook_id))
    query = REQUIRED_QUERY.get(path.removeprefix(API))
    return f"{url}?{query}" if query else url


async def test_conditional_reads_are_declared_exactly_where_the_server_answers_304(
    app: FastAPI, api_tokens: Mapping[str, str]
) -> None:
    """Every GET of the document, called twice (as an admin, to reach them all): a read
    declares If-None-Match and 304 if and only if its ETag, sent back, gets a 304."""
    transport = httpx.ASGITransport(app=app)
    admin = httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=bearer(api_tokens["admin"])
    )
    webhook = await admin.post(f"{API}/webhooks", json={"url": "https://receiver.example/"})
    assert webhook.status_code == 201, webhook.text
    wrong = []
    for method, path, operation in operations(app.openapi()):
        if method != "get" or path == NEVER_ENDS:
            continue
        declared = "304" in operation["responses"]
        parameters = operation.get("parameters", [])
        assert declared == any(p["name"] == "If-None-Match" for p in parameters), path
        first = await admin.get(example_url(path, webhook.json()["id"]))
        assert first.status_code == 200, (path, first.text[:300])
        etag = first.headers.get("etag")
        again = await admin.get(example_url(path), headers={"If-None-Match": etag or '"x"'})
        honoured = etag is not None and again.status_code == 304
        if declared != honoured:
            wrong.append(f"{path}: declared {declared}, ETag {etag}, then {again.status_code}")
        if declared:
            assert "ETag" in operation["responses"]["200"]["headers"]
    await admin.aclose()
    assert not wrong


# --- a generated client --------------------------------------------------------------------------

PACKAGE = "roadmap_client"


def generate_client(doc: dict[str, Any], where: Path) -> Path:
    """Runs openapi-python-client as a user would, without the formatting hooks (speed)."""
    (where / "openapi.json").write_text(json.dumps(doc))
    (where / "config.json").write_text(
        json.dumps({"package_name_override": PACKAGE, "post_hooks": []})
    )
    out = where / "client"
    paths = ["--path", f"{where}/openapi.json", "--config", f"{where}/config.json"]
    generated = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", *paths, "--output-path", out],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return out


@pytest.mark.live  # openapi-python-client generates the client in a process of its own
async def test_a_generated_client_reads_without_a_key_and_revalidates(
    app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(generate_client(app.openapi(), tmp_path)))
    client_module = importlib.import_module(PACKAGE)
    list_programs = importlib.import_module(f"{PACKAGE}.api.programs.list_programs")
    get_program = importlib.import_module(f"{PACKAGE}.api.programs.get_program")
    # A plain Client (no key) is what the generated reads take, not only an AuthenticatedClient.
    for operation in (list_programs, get_program):
        annotation = inspect.signature(operation.asyncio_detailed).parameters["client"].annotation
        assert client_module.Client in getattr(annotation, "__args__", (annotation,))

    client = client_module.Client(
        base_url="http://test",
        raise_on_unexpected_status=True,  # an undeclared status raises
        httpx_args={"transport": httpx.ASGITransport(app=app)},
    )
    async with client:
        page = await list_programs.asyncio(client=client, limit=100)
        assert len(page.items) >= 28
        code = page.items[0].code
        first = await get_program.asyncio_detailed(code, client=client)
        assert first.status_code == 200
        assert first.parsed.code == code
        etag = first.headers["etag"]
        again = await get_program.asyncio_detailed(code, client=client, if_none_match=etag)
        assert again.status_code == 304
        assert again.headers["etag"] == etag
