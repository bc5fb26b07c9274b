"""Small builders the tests share: make a programme, walk it through the workflow, send a key."""

from collections import deque
from typing import Any

import httpx

from service.rules.workflow import INITIAL_STATUS, TRANSITIONS, Status

API = "/api/v1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# The seeded history: 27 programmes of 6 steps, gas_market of 7, and the 9 seeded milestones.
SEEDED_EVENTS = 27 * 6 + 7 + 9


def path_to(target: Status) -> list[Status]:
    """The shortest sequence of statuses leading from draft to `target` (excluding draft)."""
    previous: dict[Status, Status | None] = {INITIAL_STATUS: None}
    queue = deque([INITIAL_STATUS])
    while queue:
        current = queue.popleft()
        for transition in TRANSITIONS:
            if transition.source == current and transition.target not in previous:
                previous[transition.target] = current
                queue.append(transition.target)
    steps: list[Status] = []
    node: Status | None = target
    while node is not None and node != INITIAL_STATUS:
        steps.append(node)
        node = previous[node]
    return list(reversed(steps))


async def create_program(client: httpx.AsyncClient, code: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/programs", json={"code": code, "title": code, **fields})
    assert response.status_code == 201, response.text
    program: dict[str, Any] = response.json()["program"]
    return program


async def transition(
    client: httpx.AsyncClient, code: str, to_status: str, **fields: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/programs/{code}/transitions", json={"to_status": to_status, **fields}
    )


async def walk_to(client: httpx.AsyncClient, code: str, target: Status) -> None:
    for status in path_to(target):
        response = await transition(client, code, status.value)
        assert response.status_code == 201, response.text


async def history(client: httpx.AsyncClient, code: str) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/programs/{code}/history", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def feed_after(http: httpx.AsyncClient, cursor: str) -> list[dict[str, Any]]:
    """Every event of the feed after `cursor`, in feed order."""
    events: list[dict[str, Any]] = []
    while True:
        response = await http.get(f"{API}/events", params={"after": cursor, "limit": 500})
        assert response.status_code == 200, response.text
        page = response.json()
        if not page["items"]:
            return events
        events += page["items"]
        cursor = page["next_cursor"]
