"""Schemathesis over the service's own OpenAPI document, against a real server: no 5xx, every
response conforms to its declared status codes and schema, and every error is problem+json."""

from collections.abc import Mapping
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.config import Settings
from service.main import create_app
from tests.support.builders import bearer
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live  # against a real server (the `live` fixture)

# The document comes from the application itself (building it needs no database); the calls
# go to a real server started by the `live` fixture.
# The live stream never ends, so it cannot be called and checked like the rest:
# test_dashboards reads it from a real server.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).exclude(
    path="/api/v1/events/stream"
)


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_keeps_its_contract(
    case: schemathesis.Case[Any], live: LiveServer, api_tokens: Mapping[str, str]
) -> None:
    # As an admin, so that writes and key management are exercised, not just refused.
    response = case.call(base_url=live.base_url, headers=bearer(api_tokens["admin"]))
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    if response.status_code >= 400:
        assert response.headers["content-type"] == ["application/problem+json"]


def test_the_document_declares_problem_responses(live: LiveServer) -> None:
    document = httpx.get(f"{live.base_url}/openapi.json").json()
    transitions = document["paths"]["/api/v1/programs/{code}/transitions"]["post"]["responses"]
    assert {"201", "404", "409", "412", "422", "428"} <= set(transitions)
    assert "application/problem+json" in transitions["409"]["content"]
