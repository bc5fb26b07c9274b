"""The hash chain that makes the event log tamper-evident. Pure: no database, no web.

Each programme has its own chain, so writers to different programmes never wait on each other.
An event's hash is

    hash = lowercase hex SHA-256 of canonical_bytes(event content, prev_hash)

where prev_hash is the hash of the same programme's previous event (``GENESIS_HASH`` for its
first event) and the canonical encoding is the UTF-8 bytes of a JSON object with exactly the
keys in ``HASHED_FIELDS``, plus each key of ``OPTIONAL_HASHED_FIELDS`` whose value the event
itself stores (so events recorded before such a field existed keep their hashes), keys sorted, no
insignificant white space (separators "," and ":"), non-ASCII characters written as themselves
(not \\u escapes), and these value forms:

- dates as "YYYY-MM-DD"; ``recorded_at`` as UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ" (always six digits);
- absent values as null; ``changes`` and ``sources`` as JSON with their keys sorted too.

Any program that can sort keys and compute SHA-256 can check a chain from the events' JSON.
There, an event recorded before decisions existed may show the `decision` it was attributed to
afterwards, with ``decision_attributed: true``: its hash does not cover that ``decision``.
The digest over all chains (GET /api/v1/audit/digest) is the SHA-256 of the lines
"<program code> <head hash>\\n", sorted by code, for every programme that has events.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from service.clock import format_timestamp

GENESIS_HASH = "0" * 64

HASHED_FIELDS = (
    "program",
    "seq",
    "kind",
    "from_status",
    "to_status",
    "effective_date",
    "recorded_at",
    "actor",
    "on_behalf_of",
    "note",
    "source_url",
    "sources",
    "changes",
    "prev_hash",
)
# Hashed only when set: `decision`, the act that wrote the event (service.decisions).
OPTIONAL_HASHED_FIELDS = ("decision",)


def _canonical_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def canonical_bytes(content: Mapping[str, Any]) -> bytes:
    document = {field: _canonical_value(content.get(field)) for field in HASHED_FIELDS}
    for field in OPTIONAL_HASHED_FIELDS:
        if content.get(field) is not None:
            document[field] = content[field]
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(content: Mapping[str, Any]) -> str:
    """`content` holds the event's fields including its prev_hash."""
    return hashlib.sha256(canonical_bytes(content)).hexdigest()


# Releases before the fix in lock_program (service.programs.service) could, under concurrent
# writes to one programme on PostgreSQL, store an event whose prev_hash is the genesis hash
# although it is not the programme's first. Such an event's own hash matches its content: it
# was written that way, not altered afterwards. The link stays broken (history is append-only),
# so verify names each one and says so.
GENESIS_LINK = (
    "chained to the genesis hash instead of seq {previous}'s hash; its own hash matches its "
    "content, so it was written this way, not altered since (the concurrent-write defect of "
    "releases before 0.2.0: see the README, 'Verifying the record')"
)


def broken_links(events: Iterable[Mapping[str, Any]]) -> list[tuple[Any, str]]:
    """Walk one programme's events in seq order; (event id, reason) for every bad one.

    Each event is checked against the one stored before it, so one bad event is reported once
    rather than making every later link look bad too."""
    problems: list[tuple[Any, str]] = []
    expected_prev = GENESIS_HASH
    expected_seq = 1
    for event in events:
        content_matches = event_hash(event) == event["hash"]
        if event["seq"] != expected_seq:
            problems.append((event["id"], f"seq {event['seq']} where {expected_seq} was expected"))
        elif event["prev_hash"] != expected_prev:
            if event["prev_hash"] == GENESIS_HASH and content_matches:
                problems.append((event["id"], GENESIS_LINK.format(previous=expected_seq - 1)))
            else:
                problems.append((event["id"], "prev_hash does not match the previous event's hash"))
        elif not content_matches:
            problems.append((event["id"], "hash does not match the event's content"))
        expected_prev = event["hash"]
        expected_seq = event["seq"] + 1
    return problems


def first_broken_link(events: Iterable[Mapping[str, Any]]) -> tuple[Any, str] | None:
    """The first of broken_links, or None when the chain is whole."""
    problems = broken_links(events)
    return problems[0] if problems else None


def chains_digest(heads: Mapping[str, str]) -> str:
    lines = "".join(f"{code} {head}\n" for code, head in sorted(heads.items()))
    return hashlib.sha256(lines.encode()).hexdigest()
