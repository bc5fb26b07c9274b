"""The status board's pages, read as a person's browser would get them (the live browser tests
are in test_board_browser.py): what they show, in which language, and what they refuse."""

import re
from collections.abc import Mapping
from datetime import date

import httpx
import pytest
from fastapi import FastAPI

from service.board import labels
from service.board.chart import STACK_ORDER, cumulative_flow
from service.board.labels import Language, choose_language, programmes
from service.rules.milestones import MilestoneState
from service.rules.workflow import Status
from tests.support.builders import API, create_program, history, transition

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def counts(page: str) -> dict[str, int]:
    return {
        status: int(count)
        for status, count in re.findall(
            r'<tr data-status="([a-z_]+)"[^>]*>.*?<td data-count>(\d+)</td>', page, re.S
        )
    }


def groups(page: str) -> dict[str, list[str]]:
    """The programme codes listed under each status heading."""
    found: dict[str, list[str]] = {}
    for section in page.split('<section class="status-group"')[1:]:
        status = re.match(r' data-status="([a-z_]+)"', section)
        assert status is not None
        found[status.group(1)] = re.findall(r'<li class="program" data-program="([^"]+)"', section)
    return found


async def board(client: httpx.AsyncClient, **params: str) -> str:
    response = await client.get("/", params=params, headers=HTML)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_the_board_counts_the_seeded_programmes_by_status(
    anonymous: httpx.AsyncClient,
) -> None:
    page = await board(anonymous)
    assert counts(page) == {status.value: 0 for status in Status} | {
        "completed": 25,
        "carried_over": 3,
    }
    shown = groups(page)
    assert list(shown) == ["completed", "carried_over"]
    assert len(shown["completed"]) == 25
    assert len(shown["carried_over"]) == 3
    assert '<a href="/board/programs/gas_market?lang=en">' in page
    assert (await anonymous.get("/board", headers=HTML)).text == page


async def test_as_of_shows_the_record_as_it_stood(anonymous: httpx.AsyncClient) -> None:
    page = await board(anonymous, as_of="2022-12-31")
    assert "gas_market" in groups(page)["delayed"]
    assert '<time datetime="2022-12-31">' in page
    assert "data-stream=" not in page  # a past day does not change with new events
    before = await board(anonymous, as_of="2021-09-09")
    assert sum(counts(before).values()) == 28
    assert counts(before)["coordinated"] == 28


async def test_filters_narrow_what_is_shown_and_empty_choices_do_not(
    anonymous: httpx.AsyncClient,
) -> None:
    everything = await board(anonymous)
    assert groups(await board(anonymous, status="", sector="", roadmap="", as_of="")) == groups(
        everything
    )
    assert groups(await board(anonymous, status="carried_over")) == {
        "carried_over": groups(everything)["carried_over"]
    }
    energy = groups(await board(anonymous, sector="energy"))
    assert any("gas_market" in codes for codes in energy.values())
    assert sum(len(codes) for codes in energy.values()) < 28
    assert sum(counts(await board(anonymous, roadmap="union-state-2024-2026")).values()) == 0


@pytest.mark.parametrize(
    "params", [{"status": "finished"}, {"as_of": "31.12.2022"}, {"roadmap": "no-such-roadmap"}]
)
async def test_bad_filters_are_refused_as_a_page_or_a_problem(
    anonymous: httpx.AsyncClient, params: dict[str, str]
) -> None:
    page = await anonymous.get("/", params=params, headers=HTML)
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "This page cannot be shown" in page.text
    assert 'class="program"' not in page.text
    problem = await anonymous.get("/", params=params)
    assert problem.status_code == 422
    assert problem.headers["content-type"] == "application/problem+json"


async def test_russian_from_the_query_or_accept_language(anonymous: httpx.AsyncClient) -> None:
    asked = await board(anonymous, lang="ru")
    assert '<html lang="ru">' in asked
    assert labels.STATUS_LABELS[Language.RU][Status.COMPLETED] in asked
    assert "Программы по статусам" in asked
    assert "(25 программ)" in asked
    assert "(3 программы)" in asked
    preferred = await anonymous.get("/", headers={**HTML, "Accept-Language": "ru-RU,en;q=0.5"})
    assert '<html lang="ru">' in preferred.text
    english = await anonymous.get(
        "/", params={"lang": "en"}, headers={**HTML, "Accept-Language": "ru"}
    )
    assert '<html lang="en">' in english.text
    # The way back keeps the filters: a relative link.
    filtered = await board(anonymous, lang="ru", status="completed")
    assert 'href="?lang=en&amp;status=completed" hreflang="en"' in filtered


async def test_an_english_title_on_the_russian_board_is_marked_english(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    await create_program(
        client,
        "board_english_only",
        title="Only in English",
        roadmap="union-state-2021-2023",
    )
    page = await board(anonymous, lang="ru")
    assert re.search(r'<span lang="en" class="english"[^>]*>Only in English</span>', page)
    assert "(1 программа)" in page  # the new draft
    # A programme with a Russian title shows it, unmarked.
    gas = await anonymous.get(f"{API}/programs/gas_market")
    assert f">{gas.json()['title_ru']}</a>" in page


async def test_the_page_is_validated_by_its_etag_per_language(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    first = await anonymous.get("/", headers=HTML)
    etag = first.headers["ETag"]
    again = await anonymous.get("/", headers={**HTML, "If-None-Match": etag})
    assert again.status_code == 304
    # A cache refreshes its stored headers from the 304: it must vary as the 200 did.
    assert {"Accept", "Accept-Language"} <= {
        name.strip() for name in again.headers["Vary"].split(",")
    }
    russian = await anonymous.get("/?lang=ru", headers={**HTML, "If-None-Match": etag})
    assert russian.status_code == 200
    assert "Accept-Language" in first.headers["Vary"]
    await create_program(client, "board_etag", roadmap="union-state-2021-2023")
    changed = await anonymous.get("/", headers={**HTML, "If-None-Match": etag})
    assert changed.status_code == 200
    assert 'data-program="board_etag"' in changed.text


async def test_nothing_is_loaded_from_another_host(anonymous: httpx.AsyncClient) -> None:
    for path in ("/", "/board/programs/gas_market"):
        response = await anonymous.get(path, headers=HTML)
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "http" not in policy
        loaded = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', response.text)
        assert loaded
        assert all(url.startswith(("/", "data:")) for url in loaded), loaded
        for asset in ("/board-assets/board.css", "/board-assets/board.js"):
            served = await anonymous.get(asset)
            assert served.status_code == 200, asset


async def test_the_live_board_follows_the_feed_from_where_the_page_stands(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    page = await board(anonymous)
    cursor = re.search(r'data-stream="/api/v1/events/stream\?after=([^"]+)"', page)
    assert cursor is not None
    events = await anonymous.get(f"{API}/events", params={"after": cursor.group(1)})
    assert events.json()["items"] == []
    await create_program(client, "board_live", roadmap="union-state-2021-2023")
    events = await anonymous.get(f"{API}/events", params={"after": cursor.group(1)})
    assert [event["program"] for event in events.json()["items"]] == ["board_live"]
    assert '<p id="live" aria-live="polite">' in page


async def test_a_programme_page_shows_its_history_milestones_and_sources(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    response = await anonymous.get("/board/programs/gas_market", headers=HTML)
    assert response.status_code == 200
    page = response.text
    events = await history(client, "gas_market")
    assert [int(seq) for seq in re.findall(r'<li class="event" data-seq="(\d+)"', page)] == [
        event["seq"] for event in events
    ]
    decision = await anonymous.get(f"{API}/decisions/ssc-decree-6-2021")
    assert f">{decision.json()['decision']['title']}</a>" in page
    assert "In implementation → <strong>Delayed</strong>" in page
    assert "Delayed → <strong>Carried over</strong>" in page
    milestone = (await anonymous.get(f"{API}/programs/gas_market/milestones")).json()["items"][0]
    assert f"Milestone: <span>{milestone['title']}</span>" in page
    milestones = (await anonymous.get(f"{API}/programs/gas_market/milestones")).json()["items"]
    assert len(re.findall(r"<tr data-state=", page)) == len(milestones) > 0
    program = (await anonymous.get(f"{API}/programs/gas_market")).json()
    for source in program["sources"]:
        assert f'<a href="{source}" rel="external noreferrer">' in page or (
            not source.startswith("http") and f"<cite>{source}</cite>" in page
        )
    # A citation in words (the seeded history has some) is shown, not made a broken link.
    assert "<cite>" in page
    links = re.findall(r'href="([^"]*)"', page)
    assert all(link.startswith(("/", "?", "#", "https://", "http://", "data:")) for link in links)
    russian = await anonymous.get("/board/programs/gas_market?lang=ru", headers=HTML)
    assert f'<h1 data-program="gas_market">{program["title_ru"]}</h1>' in russian.text


async def test_a_correction_and_a_transition_read_as_such(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    await create_program(client, "board_steps", roadmap="union-state-2021-2023")
    moved = await transition(client, "board_steps", "coordinated")
    assert moved.status_code == 201, moved.text
    corrected = await client.post(
        f"{API}/programs/board_steps/corrections",
        json={"event": moved.json()["event"]["seq"], "reason": "not yet"},
    )
    assert corrected.status_code == 201, corrected.text
    renamed = await client.patch(f"{API}/programs/board_steps", json={"sector": "energy"})
    assert renamed.status_code == 200, renamed.text
    page = (await anonymous.get("/board/programs/board_steps", headers=HTML)).text
    assert "Details changed: sector" in page
    assert "Draft → <strong>Coordinated by the presidents</strong>" in page
    assert "Correction: status restored to <strong>Draft</strong>" in page


async def test_an_unknown_programme_is_a_404_page_or_problem(anonymous: httpx.AsyncClient) -> None:
    page = await anonymous.get("/board/programs/no_such", headers=HTML)
    assert page.status_code == 404
    assert "no_such" in page.text
    assert page.headers["content-type"].startswith("text/html")
    problem = await anonymous.get("/board/programs/no_such")
    assert problem.status_code == 404
    assert problem.headers["content-type"] == "application/problem+json"


async def test_a_closed_service_shows_no_data_and_asks_for_nothing(
    app: FastAPI, anonymous: httpx.AsyncClient, api_tokens: Mapping[str, str]
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"require_auth_for_reads": True})
    for path in ("/", "/board/programs/gas_market"):
        page = await anonymous.get(path, headers=HTML)
        assert page.status_code == 403
        assert "WWW-Authenticate" not in page.headers
        assert "The board is not public" in page.text
        assert "gas_market" not in page.text.replace(path, "")
        assert "data-count" not in page.text
        problem = await anonymous.get(path)
        assert problem.status_code == 403
        assert problem.headers["content-type"] == "application/problem+json"


async def test_the_board_is_not_part_of_the_api_document(anonymous: httpx.AsyncClient) -> None:
    paths = (await anonymous.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if not path.startswith("/api/") and "board" in path]
    assert "/" not in paths


# Pure parts


def test_every_label_is_in_both_languages() -> None:
    for key, forms in labels.TEXT.items():
        assert set(forms) == set(Language), key
        assert all(text.strip() for text in forms.values()), key
    for language in Language:
        assert set(labels.STATUS_LABELS[language]) == set(Status)
        assert set(labels.MILESTONE_STATE_LABELS[language]) == set(MilestoneState)
    russian = labels.STATUS_LABELS[Language.RU].values()
    assert len(set(russian)) == len(Status)


@pytest.mark.parametrize(
    ("asked", "accept", "expected"),
    [
        (None, None, Language.EN),
        ("ru", None, Language.RU),
        ("de", "ru", Language.RU),
        (None, "ru-RU,ru;q=0.9,en;q=0.8", Language.RU),
        (None, "de, en;q=0.5, ru;q=0.8", Language.RU),
        (None, "de, en;q=0.9, ru;q=0.8", Language.EN),
        (None, "ru;q=0", Language.EN),
        (None, "ru;q=nonsense, en", Language.EN),
        ("en", "ru", Language.EN),
    ],
)
def test_the_language_is_chosen_as_asked(
    asked: str | None, accept: str | None, expected: Language
) -> None:
    assert choose_language(asked, accept) is expected


@pytest.mark.parametrize(
    ("count", "english", "russian"),
    [
        (0, "0 programmes", "0 программ"),
        (1, "1 programme", "1 программа"),
        (2, "2 programmes", "2 программы"),
        (5, "5 programmes", "5 программ"),
        (11, "11 programmes", "11 программ"),
        (12, "12 programmes", "12 программ"),
        (21, "21 programmes", "21 программа"),
        (23, "23 programmes", "23 программы"),
        (25, "25 programmes", "25 программ"),
        (111, "111 programmes", "111 программ"),
    ],
)
def test_counts_take_the_right_plural(count: int, english: str, russian: str) -> None:
    assert programmes(count, Language.EN) == english
    assert programmes(count, Language.RU) == russian


def test_the_chart_stacks_bands_from_the_baseline_to_the_total() -> None:
    points = [
        (date(2021, 3, 31), {"draft": 28}),
        (date(2021, 12, 31), {"in_implementation": 27, "delayed": 1}),
        (date(2024, 3, 31), {"completed": 25, "carried_over": 3}),
    ]
    chart = cumulative_flow(points)
    assert chart is not None
    shown = [band.status for band in chart.bands]
    assert shown == [status for status in STACK_ORDER if status in shown]
    assert set(shown) == {
        Status.DRAFT,
        Status.IN_IMPLEMENTATION,
        Status.DELAYED,
        Status.COMPLETED,
        Status.CARRIED_OVER,
    }

    def ys(path: str) -> list[float]:
        return [float(pair.split(",")[1]) for pair in re.findall(r"[\d.]+,[\d.]+", path)]

    # Every point's bands together reach from the baseline to the top of the plot (28 of 28).
    top = min(y for band in chart.bands for y in ys(band.path))
    assert all(min(ys(band.path)) >= top for band in chart.bands)
    assert max(y for band in chart.bands for y in ys(band.path)) == chart.baseline
    assert chart.y_max == 28
    assert [tick.label for tick in chart.x_ticks] == ["2021", "2024"]
    assert cumulative_flow([]) is None
    assert cumulative_flow([(date(2021, 1, 1), {"draft": 0})]) is None


async def test_a_shared_link_opens_whatever_its_sharer_added(
    anonymous: httpx.AsyncClient,
) -> None:
    for path in ("/?utm_source=newsletter&fbclid=x", "/board/programs/gas_market?ref=mail"):
        response = await anonymous.get(path, headers=HTML)
        assert response.status_code == 200, (path, response.text[:300])
    odd = await anonymous.get("/board/programs/%00", headers=HTML)
    assert odd.status_code == 422  # not a code: refused, not a 500


async def test_a_future_date_charts_up_to_today_only(anonymous: httpx.AsyncClient) -> None:
    page = await board(anonymous, as_of="9999-12-31")
    days = [
        date.fromisoformat(day)
        for day in re.findall(r'<th scope="row"><time datetime="([\d-]+)"', page)
    ]
    assert days
    assert max(days) <= date.today()
    assert counts(page) == counts(await board(anonymous))


async def test_a_programme_page_follows_its_own_events_only(
    anonymous: httpx.AsyncClient,
) -> None:
    page = (await anonymous.get("/board/programs/gas_market", headers=HTML)).text
    assert 'data-program="gas_market"' in re.search(r"<body[^>]*>", page).group(0)  # type: ignore[union-attr]
    assert "data-program=" not in re.search(r"<body[^>]*>", await board(anonymous)).group(0)  # type: ignore[union-attr]
