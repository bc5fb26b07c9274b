"""The status board: HTML pages rendered by the service, for people who will never write a
query. Reads only, through the same services as the API (board.service); no request leaves
for any other host (the stylesheet and the script are the package's own, and the policy below
forbids anything else)."""

from dataclasses import dataclass
from datetime import date
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from service.audit.feed import encode_feed_cursor, feed_end
from service.board import labels
from service.board.chart import cumulative_flow
from service.board.labels import Language, choose_language
from service.board.service import Filters, board, program_page, statuses_shown
from service.caching import ENCODING_VARY, check_not_modified, data_fingerprint, weak_etag
from service.clock import today_utc
from service.db import open_session
from service.errors import BoardClosed, InvalidInput, NotFound, Problem
from service.rules.workflow import Status
from service.schemas import Text

router = APIRouter(include_in_schema=False)

templates = Jinja2Templates(directory=str(files("service.board") / "templates"))

# Nothing but this host: no CDN, no web font, no inline script or style (the data the script
# needs is in data- attributes; the chart's colours are the stylesheet's).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# A page is HTML or a problem document by Accept, and in the language of Accept-Language
# unless ?lang= names one.
_PAGE_VARY = "Accept, Accept-Language"

Choice = Annotated[Text | None, Query(max_length=200)]
LanguageQuery = Annotated[Text | None, Query(alias="lang", max_length=10)]
AcceptLanguage = Annotated[Text | None, Header(max_length=1000)]
ProgramCodePath = Annotated[Text, Path(max_length=64)]


def _optional(value: str | None) -> str | None:
    """A form sends an empty value for "all": the same as not filtering."""
    return value or None


def _filters(
    roadmap: str | None, status: str | None, sector: str | None, as_of: str | None
) -> Filters:
    try:
        chosen_status = Status(status) if status else None
    except ValueError:
        raise InvalidInput(f"status {status!r} is not a programme status.") from None
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise InvalidInput(f"as_of {as_of!r} is not a date (YYYY-MM-DD).") from None
    return Filters(_optional(roadmap), chosen_status, _optional(sector), day)


def _page(
    request: Request,
    template: str,
    language: Language,
    context: dict[str, Any],
    *,
    status: int = 200,
    stream_after: str | None = None,
    data_href: str | None = None,
) -> HTMLResponse:
    """A page in `language`. With `stream_after` (a feed cursor) the page follows the live
    stream from there and reloads itself when something is recorded (static/board.js)."""
    text = {key: forms[language] for key, forms in labels.TEXT.items()}
    other = Language.RU if language is Language.EN else Language.EN
    # Relative, so it works behind any prefix a proxy adds.
    switch_href = "?" + urlencode({**request.query_params, "lang": other.value})
    stream = (
        None
        if stream_after is None
        else f"/api/v1/events/stream?{urlencode({'after': stream_after})}"
    )
    response = templates.TemplateResponse(
        request,
        template,
        {
            "lang": language.value,
            "text": text,
            "status_label": labels.STATUS_LABELS[language],
            "milestone_state_label": labels.MILESTONE_STATE_LABELS[language],
            "sector_label": lambda sector: labels.sector_label(sector, language),
            "programmes": lambda count: labels.programmes(count, language),
            "switch_href": switch_href,
            "stream": stream,
            "data_href": data_href,
            **context,
        },
        status_code=status,
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Vary"] = _PAGE_VARY
    return response


def _wants_html(request: Request) -> bool:
    """A browser asks for HTML; a script (curl sends */*) gets the API's problem documents."""
    return "text/html" in request.headers.get("accept", "")


def _refused(request: Request, language: Language, problem: Problem) -> HTMLResponse:
    if not _wants_html(request):
        raise problem
    return _page(request, "error.html", language, {"problem": problem}, status=problem.status)


@dataclass(frozen=True)
class Validated:
    etag: str
    # The feed's settled end, which the page's live stream starts after. Read before the
    # page's data: an event recorded in between reloads the page once more, rather than
    # being missed.
    feed_cursor: str


async def _closed_or_validated(request: Request, language: Language) -> HTMLResponse | Validated:
    """The closed page when reads need a key, else the page's validator (answering 304 when
    the client has it). A board is read by people, not by clients holding a key, so with
    ROADMAP_REQUIRE_AUTH_FOR_READS it asks for nothing and shows nothing."""
    if request.app.state.settings.require_auth_for_reads:
        if not _wants_html(request):
            raise BoardClosed(
                "The board is closed: this service shows its record only "
                "through the API, with a key."
            )
        return _page(request, "closed.html", language, {}, status=403)
    fingerprint = await data_fingerprint(request)
    # The feed's settled end too: a page names it as the cursor its live stream starts after,
    # and the data can stand still while the feed's end moves (on PostgreSQL an event
    # committed beside a longer transaction settles later). Without it a page would reload on
    # that event, get a 304 and the same old cursor, and reload again.
    async with open_session(request) as session:
        end = await feed_end(session)
    etag = weak_etag(f"board|{request.url.path}?{request.url.query}|{language}|{fingerprint}|{end}")
    check_not_modified(request, etag, vary=f"{_PAGE_VARY}, {ENCODING_VARY}")
    return Validated(etag, encode_feed_cursor(end))


@router.get("/", response_class=HTMLResponse)
@router.get("/board", response_class=HTMLResponse)
async def board_page(
    request: Request,
    roadmap: Choice = None,
    status: Choice = None,
    sector: Choice = None,
    as_of: Choice = None,
    lang: LanguageQuery = None,
    accept_language: AcceptLanguage = None,
) -> HTMLResponse:
    """The programmes grouped by status, with counts, filters, an as-of date and a chart."""
    language = choose_language(lang, accept_language)
    validated = await _closed_or_validated(request, language)
    if isinstance(validated, HTMLResponse):
        return validated
    try:
        filters = _filters(roadmap, status, sector, as_of)
        async with open_session(request) as session:
            shown = await board(session, filters, today_utc())
    except Problem as problem:
        return _refused(request, language, problem)
    data = {
        "roadmap": filters.roadmap,
        "status": status or None,
        "sector": filters.sector,
        "as_of": as_of or None,
    }
    response = _page(
        request,
        "board.html",
        language,
        {
            "board": shown,
            "filters": filters,
            "statuses": list(Status),
            "groups": statuses_shown(shown.counts),
            "chart": cumulative_flow(shown.chart_points),
            "live_text": labels.TEXT["live_off" if filters.as_of is None else "live_as_of"][
                language
            ],
        },
        # A past date does not change when something new is recorded.
        stream_after=validated.feed_cursor if filters.as_of is None else None,
        data_href="/api/v1/programs?"
        + urlencode({"limit": 200, **{k: v for k, v in data.items() if v}}),
    )
    response.headers["ETag"] = validated.etag
    return response


@router.get("/board/programs/{code}", response_class=HTMLResponse)
async def board_program_page(
    request: Request,
    code: ProgramCodePath,
    lang: LanguageQuery = None,
    accept_language: AcceptLanguage = None,
) -> HTMLResponse:
    """One programme: its history as a timeline, its milestones and its sources."""
    language = choose_language(lang, accept_language)
    validated = await _closed_or_validated(request, language)
    if isinstance(validated, HTMLResponse):
        return validated
    try:
        async with open_session(request) as session:
            page = await program_page(session, code)
    except NotFound as problem:
        return _refused(request, language, problem)
    response = _page(
        request,
        "program.html",
        language,
        {
            "page": page,
            "live_text": labels.TEXT["live_off"][language],
            "follows_program": page.programme.code,  # reloads for its own events only
        },
        stream_after=validated.feed_cursor,
        data_href=f"/api/v1/programs/{quote(code)}/history",
    )
    response.headers["ETag"] = validated.etag
    return response
