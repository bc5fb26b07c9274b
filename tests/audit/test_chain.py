"""The hash chain: pure, so it is checked exhaustively here without a database."""

from datetime import UTC, date, datetime
from typing import Any

from service.audit.chain import (
    GENESIS_HASH,
    broken_links,
    canonical_bytes,
    chains_digest,
    event_hash,
    first_broken_link,
)


def make_chain(length: int, *, genesis_at: int | None = None) -> list[dict[str, Any]]:
    """A whole chain; with `genesis_at`, the event with that seq is linked to the genesis hash
    as the concurrent-write defect of releases before 0.2.0 wrote it (and the rest follow)."""
    events: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for seq in range(1, length + 1):
        if seq == genesis_at:
            prev = GENESIS_HASH
        event: dict[str, Any] = {
            "id": 100 + seq,
            "program": "gas_market",
            "seq": seq,
            "kind": "status_changed",
            "from_status": "a",
            "to_status": "b",
            "effective_date": date(2024, 1, seq),
            "recorded_at": datetime(2026, 1, 1, 12, 0, seq, 5, tzinfo=UTC),
            "actor": "editor",
            "on_behalf_of": None,
            "note": "Газ",
            "source_url": None,
            "sources": [],
            "changes": {"b": 1, "a": 2},
            "prev_hash": prev,
        }
        event["hash"] = event_hash(event)
        prev = event["hash"]
        events.append(event)
    return events


def test_canonical_encoding_is_sorted_compact_utf8() -> None:
    encoded = canonical_bytes(make_chain(1)[0]).decode()
    assert encoded.startswith(
        '{"actor":"editor","changes":{"a":2,"b":1},"effective_date":"2024-01-01"'
    )
    assert '"recorded_at":"2026-01-01T12:00:01.000005Z"' in encoded
    assert "Газ" in encoded
    assert ": " not in encoded


def test_naive_and_aware_utc_timestamps_hash_alike() -> None:
    event = make_chain(1)[0]
    naive = dict(event, recorded_at=event["recorded_at"].replace(tzinfo=None))
    assert event_hash(naive) == event["hash"]


def test_an_intact_chain_verifies() -> None:
    assert first_broken_link(make_chain(5)) is None


def test_an_edited_event_is_named() -> None:
    events = make_chain(5)
    events[2]["note"] = "rewritten"
    assert first_broken_link(events) == (103, "hash does not match the event's content")


def test_a_rehashed_edit_breaks_the_next_link() -> None:
    events = make_chain(5)
    events[2]["note"] = "rewritten"
    events[2]["hash"] = event_hash(events[2])
    broken = first_broken_link(events)
    assert broken is not None
    assert broken[0] == 104


def test_a_missing_event_is_found() -> None:
    events = make_chain(5)
    del events[1]
    assert first_broken_link(events) == (103, "seq 3 where 2 was expected")


def test_events_chained_to_genesis_by_the_old_defect_are_each_named_and_explained() -> None:
    events = make_chain(6, genesis_at=3)
    events[4]["prev_hash"] = GENESIS_HASH  # a second one, further on
    events[4]["hash"] = event_hash(events[4])
    events[5]["prev_hash"] = events[4]["hash"]
    events[5]["hash"] = event_hash(events[5])
    problems = broken_links(events)
    assert [event_id for event_id, _ in problems] == [103, 105]
    assert "instead of seq 2's hash" in problems[0][1]
    assert "written this way, not altered" in problems[0][1]
    assert "instead of seq 4's hash" in problems[1][1]


def test_a_genesis_link_whose_content_was_also_edited_is_not_excused() -> None:
    events = make_chain(4, genesis_at=3)
    events[2]["note"] = "rewritten"
    assert broken_links(events) == [(103, "prev_hash does not match the previous event's hash")]


def test_digest_depends_on_every_head() -> None:
    heads = {"a": "1" * 64, "b": "2" * 64}
    assert chains_digest(heads) == chains_digest(dict(reversed(list(heads.items()))))
    assert chains_digest(heads) != chains_digest({"a": "1" * 64, "b": "3" * 64})
