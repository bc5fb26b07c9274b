"""A Hypothesis state machine drives a real server with random transitions, patches, retries and
stale writes, and checks every answer against a model of the workflow."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from service.rules.workflow import Status, is_allowed
from tests.support.builders import bearer
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live  # against a real server (the `live` fixture)

REFUSED_CONTROLS = "".join(chr(code) for code in range(32) if chr(code) not in "\t\n\r")
API = "/api/v1"


@dataclass
class ModelProgram:
    status: Status
    version: int
    summary: str | None = None


class WorkflowMachine(RuleBasedStateMachine):
    base_url = ""
    token = ""
    programs = Bundle("programs")

    def __init__(self) -> None:
        super().__init__()
        self.http = httpx.Client(base_url=self.base_url, timeout=30, headers=bearer(self.token))
        self.model: dict[str, ModelProgram] = {}

    def teardown(self) -> None:
        self.http.close()

    @initialize(target=programs)
    def create_first(self) -> str:
        return self._create()

    @rule(target=programs)
    def create(self) -> str:
        return self._create()

    def _create(self) -> str:
        code = f"sm-{uuid.uuid4().hex[:12]}"
        response = self.http.post(f"{API}/programs", json={"code": code, "title": code})
        assert response.status_code == 201, response.text
        self.model[code] = ModelProgram(Status.DRAFT, 1)
        return code

    def _record_status_change(self, code: str, target: Status, response: httpx.Response) -> None:
        expected = self.model[code]
        if is_allowed(expected.status, target):
            assert response.status_code == 201, response.text
            event = response.json()["event"]
            assert event["from_status"] == expected.status.value
            assert event["seq"] == expected.version + 1
            expected.status, expected.version = target, expected.version + 1
        else:
            assert response.status_code == 409, response.text

    @rule(code=programs, to_status=st.sampled_from(list(Status)))
    def transition(self, code: str, to_status: Status) -> None:
        response = self.http.post(
            f"{API}/programs/{code}/transitions", json={"to_status": to_status.value}
        )
        self._record_status_change(code, to_status, response)

    @rule(code=programs, to_status=st.sampled_from(list(Status)), retries=st.integers(1, 3))
    def transition_retried(self, code: str, to_status: Status, retries: int) -> None:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        body = {"to_status": to_status.value}
        first = self.http.post(f"{API}/programs/{code}/transitions", json=body, headers=headers)
        self._record_status_change(code, to_status, first)
        for _ in range(retries):
            again = self.http.post(f"{API}/programs/{code}/transitions", json=body, headers=headers)
            assert again.status_code == first.status_code
            assert again.content == first.content

    @rule(
        code=programs,
        # Any text the service stores: no C0 controls but tab and line breaks, no surrogates.
        summary=st.text(
            st.characters(codec="utf-8", exclude_characters=REFUSED_CONTROLS),
            min_size=1,
            max_size=40,
        ),
    )
    def patch(self, code: str, summary: str) -> None:
        response = self.http.patch(f"{API}/programs/{code}", json={"summary": summary})
        assert response.status_code == 200, response.text
        expected = self.model[code]
        if summary != expected.summary:
            expected.summary, expected.version = summary, expected.version + 1
        assert response.json()["program"]["version"] == expected.version

    @rule(code=programs)
    def stale_write_is_refused(self, code: str) -> None:
        stale = f'"{self.model[code].version - 1}"'
        response = self.http.patch(
            f"{API}/programs/{code}", json={"summary": "stale"}, headers={"If-Match": stale}
        )
        assert response.status_code == 412

    @invariant()
    def server_agrees_with_the_model(self) -> None:
        for code, expected in self.model.items():
            program = self.http.get(f"{API}/programs/{code}").json()
            assert program["status"] == expected.status.value
            assert program["version"] == expected.version
            assert program["summary"] == expected.summary


def test_random_walks_agree_with_the_workflow_model(
    live: LiveServer, api_tokens: Mapping[str, str]
) -> None:
    WorkflowMachine.base_url = live.base_url
    WorkflowMachine.token = api_tokens["editor"]
    run = WorkflowMachine.TestCase
    run.settings = settings(
        max_examples=12,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    run().runTest()
