"""PostgreSQL writes feed pages and event exports itself (audit.rendered); this holds that text
to what the generic path makes of the same events, event for event: NDJSON and CSV byte for
byte, feed items as the same JSON values with their keys in the same order. The history is the
seeded one (decisions, attributed events, several sources) plus events written to be awkward:
quotes, commas, line breaks, tabs, backslashes, control characters, Cyrillic, nested changes."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import rendered
from service.audit.feed import NO_FILTERS, START, FeedFilters, read_feed
from service.audit.kinds import EventKind
from service.audit.rendered import Form, feed_page_text, read_export
from service.audit.service import event_json
from service.downloads.service import laid_out
from service.errors import InvalidInput
from tests.support.builders import API, create_program, transition

AWKWARD = 'He said "yes, but"\r\nthen\tleft \\ back \u2028 — Союзное государство, «да»'


@pytest.fixture
async def session(app: FastAPI) -> AsyncIterator[AsyncSession]:
    async with app.state.sessionmaker() as session:
        if not rendered.supported(session):
            pytest.skip("PostgreSQL writes the text; SQLite has the generic path only")
        yield session


async def write_awkward_history(client: httpx.AsyncClient) -> None:
    await create_program(
        client,
        "awkward",
        title='A "quoted", comma title',
        title_ru="Программа, «в кавычках»",
        lead_bodies='Минэкономразвития, "Газпром"',
        summary="line one\nline two\r\nline three",
        note=AWKWARD,
        source_url="https://example.org/a?b=1,2&c=%22",
    )
    patched = await client.patch(
        f"{API}/programs/awkward",
        json={"summary": AWKWARD, "sector": "energy", "note": "", "actor": "Отдел, 2"},
    )
    assert patched.status_code == 200, patched.text
    moved = await transition(client, "awkward", "coordinated", note="x" * 9_000 + "\rcr")
    assert moved.status_code == 201, moved.text
    corrected = await client.post(
        f"{API}/programs/awkward/corrections",
        json={"event": moved.json()["event"]["seq"], "reason": AWKWARD},
    )
    assert corrected.status_code == 201, corrected.text
    made = await client.post(
        f"{API}/programs/awkward/milestones",
        json={"title": 'Step "one", first', "due_date": "2031-01-31", "note": AWKWARD},
    )
    assert made.status_code == 201, made.text
    changed = await client.patch(
        f"{API}/programs/awkward/milestones/{made.json()['milestone']['id']}",
        json={"due_date": None, "note": None, "title": "Шаг\nдва"},
    )
    assert changed.status_code == 200, changed.text
    # The first day Python has, which the driver stores as -infinity.
    done = await client.patch(
        f"{API}/programs/awkward/milestones/{made.json()['milestone']['id']}",
        json={"done_date": "0001-01-01"},
    )
    assert done.status_code == 200, done.text


async def both_paths(
    session: AsyncSession, form: Form, filters: FeedFilters = NO_FILTERS
) -> tuple[bytes, bytes]:
    text, position = await read_export(session, form, after=START, limit=100_000, filters=filters)
    rows, generic_position = await read_feed(session, after=START, limit=100_000, filters=filters)
    assert position == generic_position
    return text, laid_out(form, rows).encode()


async def test_ndjson_and_csv_lines_are_the_generic_paths_byte_for_byte(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await write_awkward_history(client)
    for form in (Form.NDJSON, Form.CSV):
        text, generic = await both_paths(session, form)
        assert text.count(b"\n") > 150  # the seeded history and the awkward one
        # Line by line first, for a readable failure.
        for ours, theirs in zip(text.split(b"\n"), generic.split(b"\n"), strict=True):
            assert ours == theirs
        assert text == generic, form


async def test_feed_items_are_the_same_json_with_keys_in_the_same_order(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await write_awkward_history(client)
    page = await feed_page_text(session, after=START, limit=100_000)
    items = json.loads(f"[{page.items}]")
    rows, position = await read_feed(session, after=START, limit=100_000)
    assert page.position == position
    assert len(items) == len(rows) > 150
    for ours, row in zip(items, rows, strict=True):
        theirs: dict[str, Any] = json.loads(event_json(row))
        assert ours == theirs
        assert list(ours) == list(theirs)
    assert any(item["decision_attributed"] for item in items)  # the seeded attributions


@pytest.mark.parametrize(
    "filters",
    [
        FeedFilters(program="awkward"),
        FeedFilters(kind=EventKind.STATUS_CHANGED),
        FeedFilters(roadmap="union-state-2021-2023", as_of=date(2022, 12, 31)),
    ],
)
async def test_filters_select_the_same_events(
    client: httpx.AsyncClient, session: AsyncSession, filters: FeedFilters
) -> None:
    await write_awkward_history(client)
    for form in (Form.NDJSON, Form.CSV):
        text, generic = await both_paths(session, form, filters)
        assert text
        assert text == generic


async def test_known_at_selects_the_same_events(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    seeded_by = datetime.now(UTC)
    await write_awkward_history(client)
    for form in (Form.NDJSON, Form.CSV):
        text, generic = await both_paths(session, form, FeedFilters(known_at=seeded_by))
        assert text
        assert b"awkward" not in text
        assert text == generic


async def test_a_filter_is_a_value_in_the_statement_never_sql(session: AsyncSession) -> None:
    """COPY takes no parameters, so filter values are written into the statement: quotes and
    backslashes stay characters of the value."""
    for form in (Form.NDJSON, Form.CSV):
        with pytest.raises(InvalidInput):
            await read_export(
                session, form, after=START, limit=10, filters=FeedFilters(program="it's \\ x'--")
            )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE event_texts SET body = replace(body, 'draft', 'completed')",
        "DELETE FROM event_texts WHERE event_id = 1",
        "TRUNCATE event_texts",
    ],
)
async def test_the_texts_refuse_change_like_the_events(
    session: AsyncSession, statement: str
) -> None:
    """The texts are what the feed and exports serve: edited or removed behind the service's
    back, they would serve a forgery or skip an event with nobody the wiser."""
    with pytest.raises(DBAPIError, match="event_texts follows events"):
        await session.execute(text(statement))


async def test_the_functions_do_not_depend_on_the_callers_search_path(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """A data-only restore (pg_dump sets an empty search_path) fires the triggers too."""
    await session.execute(text("SET search_path = ''"))
    value = {"b": {"d": 1, "c": [{"f": 2, "e": 3}]}, "a": 0}
    nested = await session.scalar(
        text("SELECT public.roadmap_sorted_json(CAST(:value AS jsonb))"),
        {"value": json.dumps(value)},
    )
    assert nested == json.dumps(value, sort_keys=True, ensure_ascii=False)
    await session.rollback()


async def test_the_csv_field_function_can_be_inlined(session: AsyncSession) -> None:
    """roadmap_csv_field runs for every field of every appended event's CSV line. A SET clause
    would keep PostgreSQL from inlining it (migration 0011): a function call per field, which
    cost more than the rest of a transition's statements."""
    config = await session.scalar(
        text("SELECT proconfig FROM pg_proc WHERE proname = 'roadmap_csv_field'")
    )
    assert config is None
