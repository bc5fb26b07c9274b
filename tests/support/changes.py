"""Builders for the writes of issue 15 (decisions, corrections, previews) and a snapshot of the
record, to show that a write which must write nothing did not."""

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from service.audit.chain import HASHED_FIELDS
from tests.support.builders import API

PROBLEM = "application/problem+json"
SOURCE = "https://example.org/acts/1"

# The acts behind the bundled history's package-wide steps (service/seed/decisions.json), by date.
SEEDED_DECISIONS = [
    "presidents-2021-09-09",
    "council-of-ministers-2021-09-10",
    "ssc-decree-6-2021",
    "ssc-2024-01-29",
]


def today() -> date:
    return datetime.now(UTC).date()


def yesterday() -> date:
    return today() - timedelta(days=1)


def tomorrow() -> date:
    return today() + timedelta(days=1)


def decision_body(
    code: str, moves: Iterable[tuple[str, str]], *, day: date | None = None, **fields: Any
) -> dict[str, Any]:
    """A decision dated `day` (default today) making the (programme, to_status) `moves`."""
    return {
        "code": code,
        "title": f"Decision {code}",
        "body": "Supreme State Council",
        "date": (day or today()).isoformat(),
        "transitions": [{"program": program, "to_status": status} for program, status in moves],
        **fields,
    }


async def record_decision(
    client: httpx.AsyncClient,
    body: Mapping[str, Any],
    *,
    dry_run: bool = False,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    params = {"dry_run": "true"} if dry_run else {}
    return await client.post(f"{API}/decisions", json=body, params=params, headers=headers)


async def correct(
    client: httpx.AsyncClient,
    code: str,
    event: int,
    *,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    body = {"event": event, "reason": "recorded in error", **fields}
    return await client.post(f"{API}/programs/{code}/corrections", json=body, headers=headers)


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(f"{API}{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def status_on(
    client: httpx.AsyncClient, code: str, day: str, known_at: str | None = None
) -> str:
    """The programme's status at the end of `day`, as recorded by `known_at` (default now)."""
    params = {"as_of": day} | ({"known_at": known_at} if known_at else {})
    program = await get_json(client, f"/programs/{code}", **params)
    status: str = program["status"]
    return status


@dataclass(frozen=True)
class RecordState:
    """What any write changes: the feed, the digest over the chains, the decisions, and the
    programmes' versions and ETags."""

    feed: list[int]
    digest: dict[str, Any]
    decisions: list[str]
    programs: dict[str, tuple[str, int, str]]


async def whole_feed(client: httpx.AsyncClient) -> list[int]:
    feed: list[int] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500} | ({"after": after} if after else {})
        page = await get_json(client, "/events", **params)
        feed += [event["id"] for event in page["items"]]
        if not page["items"]:
            return feed
        after = page["next_cursor"]


async def settled_feed(client: httpx.AsyncClient) -> tuple[list[int], dict[str, Any]]:
    """The feed and the digest once every committed event is in them. On PostgreSQL an event
    reaches the feed a moment after its commit when a transaction elsewhere on the server holds
    the horizon back (service.audit.feed), so a snapshot taken too early would differ from a
    later one although nothing was written in between."""
    for _ in range(200):
        recorded = (await get_json(client, "/audit/verify"))["events_checked"]
        feed = await whole_feed(client)
        if len(feed) == recorded:
            return feed, await get_json(client, "/audit/digest")
        await asyncio.sleep(0.05)
    raise AssertionError(f"the feed shows {len(feed)} of {recorded} events after 10 s")


async def record_state(client: httpx.AsyncClient, programs: Iterable[str] = ()) -> RecordState:
    feed, digest = await settled_feed(client)
    decisions = await get_json(client, "/decisions", limit=500)
    versions = {}
    for code in programs:
        response = await client.get(f"{API}/programs/{code}")
        assert response.status_code == 200, response.text
        body = response.json()
        versions[code] = (body["status"], body["version"], response.headers["etag"])
    return RecordState(
        feed=feed,
        digest=digest,
        decisions=[decision["code"] for decision in decisions["items"]],
        programs=versions,
    )


def readme_hash(event: Mapping[str, Any]) -> str:
    """The README's recipe for checking a chain from the JSON, written without the service's
    code: the hashed fields, plus `decision` when it is set and was not attributed afterwards."""
    document = {field: event[field] for field in HASHED_FIELDS}
    if event["decision"] is not None and not event["decision_attributed"]:
        document["decision"] = event["decision"]
    body = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()
