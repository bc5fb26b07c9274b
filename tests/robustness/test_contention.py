"""Many writers, the same programmes, no If-Match: the record must stay whole.

Against a real `serve --workers 4`: 24 writers change 4 shared programmes at once without
If-Match (descriptive patches, status changes, new milestones and milestone edits, mixed) while
a consumer follows the feed; CONTENTION_SECONDS=60 makes it a minute's soak. Afterwards every
chain verifies link by link, every acknowledged event is stored as it was answered, and the
feed gave each programme's events in `seq` order.

Then decisions (POST /decisions), which lock several programmes in one transaction: writers
record decisions that share programmes, each listing them in its own order, beside single
transitions and corrections of the same programmes. Locking in one order (by code) lets them
queue; in request order two of them would deadlock. Afterwards each decision is all or nothing.
"""

import asyncio
import itertools
import os
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.builders import bearer
from tests.support.servers import LiveServer

API = "/api/v1"
SHARED = [f"shared-{n}" for n in range(4)]
WRITERS = 24
ROUNDS = 12

pytestmark = pytest.mark.live


def editor_client(
    live: LiveServer, api_tokens: Mapping[str, str], limits: httpx.Limits
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=live.base_url, timeout=60, headers=bearer(api_tokens["editor"]), limits=limits
    )


@pytest.fixture
async def http(live: LiveServer, api_tokens: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with editor_client(live, api_tokens, httpx.Limits(max_connections=WRITERS + 4)) as client:
        yield client


@pytest.fixture
async def http_unpooled(
    live: LiveServer, api_tokens: Mapping[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """A connection per request. After a 500 the server closes its connection; when that is
    under test, it must fail its own request only, not whichever request reuses it next."""
    limits = httpx.Limits(max_connections=WRITERS + 4, max_keepalive_connections=0)
    async with editor_client(live, api_tokens, limits) as client:
        yield client


async def create_programmes(http: httpx.AsyncClient, codes: Iterable[str]) -> None:
    for code in codes:
        response = await http.post(f"{API}/programs", json={"code": code, "title": code})
        assert response.status_code == 201, response.text


async def feed_end(http: httpx.AsyncClient) -> str | None:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["after"] = cursor
        page = (await http.get(f"{API}/events", params=params)).json()
        if not page["items"]:
            return cursor
        cursor = page["next_cursor"]


async def follow_feed(
    http: httpx.AsyncClient,
    cursor: str | None,
    done: asyncio.Event,
    acknowledged: Mapping[int, Any],
    *,
    give_up: float,
) -> list[dict[str, Any]]:
    """The feed from `cursor` in small pages, polled while the writers write, until they are
    done and it has delivered as many events as they were answered with."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    while loop.time() < give_up:
        params: dict[str, Any] = {"limit": 13}
        if cursor:
            params["after"] = cursor
        page = (await http.get(f"{API}/events", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not page["items"]:
            if done.is_set() and len(seen) >= len(acknowledged):
                return seen
            await asyncio.sleep(0.02)
    return seen


async def history(http: httpx.AsyncClient, code: str) -> list[dict[str, Any]]:
    """A programme's every event, oldest first."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        page = (await http.get(f"{API}/programs/{code}/history", params=params)).json()
        events += page["items"]
        if page["next_cursor"] is None:
            return events
        params["cursor"] = page["next_cursor"]


async def assert_chains_whole(
    http: httpx.AsyncClient, codes: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """The whole database verifies, and each programme's chain is whole link by link: seq
    without gaps, each event naming its predecessor's hash, the first one genesis. Returns the
    histories."""
    report = (await http.get(f"{API}/audit/verify")).json()
    assert report["ok"], report["mismatches"][:5]
    histories = {}
    for code in codes:
        events = histories[code] = await history(http, code)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), code
        assert events[0]["prev_hash"] == "0" * 64
        for before, after in itertools.pairwise(events):
            assert after["prev_hash"] == before["hash"], (code, after["seq"])
    return histories


def assert_fed_once_as_acknowledged(
    seen: list[dict[str, Any]], codes: list[str], acknowledged: Mapping[int, dict[str, Any]]
) -> None:
    """The feed (followed from after the programmes' creation) gave every acknowledged event
    exactly once, as it was answered, and each programme's events in seq order."""
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert {e["id"] for e in seen if e["program"] in codes} == set(acknowledged)
    for event in seen:
        if event["id"] in acknowledged:
            assert event["hash"] == acknowledged[event["id"]]["hash"]
    last_seq = dict.fromkeys(codes, 1)
    for event in seen:
        assert event["seq"] == last_seq[event["program"]] + 1, (
            f"{event['program']}: seq {event['seq']} delivered after seq "
            f"{last_seq[event['program']]}"
        )
        last_seq[event["program"]] = event["seq"]


async def one_change(http: httpx.AsyncClient, rng: random.Random, writer: int, n: int) -> Any:
    """One unconditional write to a shared programme; the event it was answered with, if any."""
    code = rng.choice(SHARED)
    action = rng.randrange(4)
    if action == 0:
        response = await http.patch(f"{API}/programs/{code}", json={"summary": f"w{writer}-{n}"})
        assert response.status_code == 200, response.text
        return response.json()["event"]
    if action == 1:
        target = rng.choice(["coordinated", "draft"])
        response = await http.post(f"{API}/programs/{code}/transitions", json={"to_status": target})
        assert response.status_code in (201, 409), response.text
        return response.json()["event"] if response.status_code == 201 else None
    if action == 2:
        response = await http.post(
            f"{API}/programs/{code}/milestones", json={"title": f"m w{writer}-{n}"}
        )
        assert response.status_code == 201, response.text
        return response.json()["event"]
    listed = (await http.get(f"{API}/programs/{code}/milestones")).json()["items"]
    if not listed:
        return None
    milestone = rng.choice(listed)
    response = await http.patch(
        f"{API}/programs/{code}/milestones/{milestone['id']}",
        json={"title": f"edited w{writer}-{n}"},
    )
    assert response.status_code == 200, response.text
    return response.json()["event"]


async def test_unconditional_writers_on_shared_programmes_keep_every_chain_whole(
    http: httpx.AsyncClient,
) -> None:
    await create_programmes(http, SHARED)
    cursor = await feed_end(http)
    acknowledged: dict[int, dict[str, Any]] = {}
    done = asyncio.Event()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + float(os.environ.get("CONTENTION_SECONDS", "0"))

    async def writer(n: int) -> None:
        rng = random.Random(n)
        round_ = 0
        # ROUNDS each, or for CONTENTION_SECONDS when set (a longer soak by hand).
        while round_ < ROUNDS or loop.time() < deadline:
            event = await one_change(http, rng, n, round_)
            if event is not None:
                acknowledged[event["id"]] = event
            round_ += 1

    async def writers() -> None:
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        done.set()

    seen, _ = await asyncio.gather(
        follow_feed(http, cursor, done, acknowledged, give_up=deadline + 120), writers()
    )
    assert len(acknowledged) > WRITERS, "the load did not get going"
    await assert_chains_whole(http, SHARED)
    assert_fed_once_as_acknowledged(seen, SHARED, acknowledged)


# Reads beside the writers: answered from the workers' caches (service.cached_answers) or by
# the routes, never older than a write acknowledged before the read began.
READ_SHARED = [f"read-{n}" for n in range(3)]
READERS = 8
READ_WRITERS = 8


async def test_reads_beside_unconditional_writers_are_never_older_than_an_acknowledged_write(
    http: httpx.AsyncClient, live: LiveServer
) -> None:
    await create_programmes(http, READ_SHARED)
    # The newest version each programme was answered with, as a writer saw its answer.
    floor = dict.fromkeys(READ_SHARED, 1)
    done = asyncio.Event()
    stale: list[str] = []
    answered: Counter[str] = Counter()

    async def writer(n: int) -> None:
        rng = random.Random(n)
        for round_ in range(ROUNDS):
            code = rng.choice(READ_SHARED)
            response = await http.patch(
                f"{API}/programs/{code}", json={"summary": f"r{n}-{round_}"}
            )
            assert response.status_code == 200, response.text
            floor[code] = max(floor[code], response.json()["program"]["version"])

    async def writers() -> None:
        await asyncio.gather(*(writer(n) for n in range(READ_WRITERS)))
        done.set()

    async def reader(n: int, anonymous: httpx.AsyncClient) -> None:
        rng = random.Random(1000 + n)
        held: dict[str, str] = {}  # ETags this reader holds, sent back as If-None-Match
        while not done.is_set():
            code = rng.choice(READ_SHARED)
            before = dict(floor)  # acknowledged before this read began
            if rng.random() < 0.3:
                page = await anonymous.get(f"{API}/programs", params={"limit": 500})
                answered[f"list {page.status_code}"] += 1
                versions = {p["code"]: p["version"] for p in page.json()["items"]}
                stale.extend(
                    f"list: {c} at {versions[c]} < {before[c]}"
                    for c in READ_SHARED
                    if versions[c] < before[c]
                )
                continue
            headers = {"If-None-Match": held[code]} if code in held and rng.random() < 0.5 else {}
            one = await anonymous.get(f"{API}/programs/{code}", headers=headers)
            answered[f"one {one.status_code}"] += 1
            assert one.status_code in (200, 304), one.text
            version = int(one.headers["etag"].strip('"'))
            if one.status_code == 200:
                assert one.json()["version"] == version
            if version < before[code]:
                stale.append(f"{code}: {one.status_code} at {version} < {before[code]}")
            held[code] = one.headers["etag"]

    limits = httpx.Limits(max_connections=READERS)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=60, limits=limits) as anonymous:
        await asyncio.gather(writers(), *(reader(n, anonymous) for n in range(READERS)))
    assert not stale, stale[:10]
    # Both answers were given under load, and from the caches: a reader re-read what it held.
    assert answered["one 304"] > 0, answered
    assert answered["one 200"] > 0, answered
    assert answered["list 200"] > 0, answered


# Decisions: the programmes they share, and who writes to them at once.
DECIDED = [f"decided-{n}" for n in range(6)]
DECIDERS = 10
DECISIONS_EACH = 10
TRANSITIONERS = 4
CORRECTORS = 3
STATUS_ROUNDS = 8


def toggled(status: str) -> str:
    """The other end of draft ⇄ coordinated, the one cycle the workflow allows."""
    return "draft" if status == "coordinated" else "coordinated"


@dataclass
class Outcomes:
    """What the writers of the decisions test were answered."""

    acknowledged: dict[int, dict[str, Any]] = field(default_factory=dict)
    # A recorded decision's code: the steps it asked for and the events it was answered with.
    decided: dict[str, tuple[list[dict[str, str]], list[dict[str, Any]]]] = field(
        default_factory=dict
    )
    refused: set[str] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)

    async def post(
        self, http: httpx.AsyncClient, write: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        """POSTs the write and counts the answer; its body if it was made (201), whose events
        are acknowledged. Anything but 201 or 409 is unexpected: a 5xx (a deadlock, a lock
        timeout), or the server dropping the connection, which it does after a 500."""
        try:
            response = await http.post(f"{API}{path}", json=body)
        except httpx.TransportError as error:
            self.answers[f"{write} {type(error).__name__}"] += 1
            self.unexpected.append(f"{write} → {type(error).__name__}")
            return None
        self.answers[f"{write} {response.status_code}"] += 1
        if response.status_code not in (201, 409):
            self.unexpected.append(f"{write} → {response.status_code}: {response.text[:300]}")
        if response.status_code == 409 and write == "decision":
            self.refused.add(body["code"])
        if response.status_code != 201:
            return None
        made: dict[str, Any] = response.json()
        for event in made.get("events") or [made["event"]]:
            self.acknowledged[event["id"]] = event
        return made

    def summary(self) -> str:
        return f"answers {dict(sorted(self.answers.items()))}; first unexpected: " + "\n".join(
            self.unexpected[:5]
        )


async def one_decision(
    http: httpx.AsyncClient, rng: random.Random, code: str, today: str, outcomes: Outcomes
) -> None:
    """A decision moving 2-4 of the programmes, listed in a random order (sorted only by
    chance). Most are meant to be valid as the programmes stood a moment ago, so many are
    recorded; the rest guess, and some step the same programme there and back."""
    chosen = rng.sample(DECIDED, rng.randint(2, 4))
    standing = {}
    if rng.random() < 0.7:
        for program in chosen:
            standing[program] = (await http.get(f"{API}/programs/{program}")).json()["status"]
    steps = [
        {
            "program": program,
            "to_status": toggled(standing[program])
            if program in standing
            else rng.choice(["coordinated", "draft"]),
        }
        for program in chosen
    ]
    if rng.random() < 0.25:
        steps.append({"program": chosen[0], "to_status": toggled(steps[0]["to_status"])})
    decision = {
        "code": code,
        "title": f"Decision {code}",
        "body": "Council of Ministers",
        "date": today,
        "transitions": steps,
    }
    if made := await outcomes.post(http, "decision", "/decisions", decision):
        outcomes.decided[code] = (steps, made["events"])


async def one_transition(http: httpx.AsyncClient, rng: random.Random, outcomes: Outcomes) -> None:
    program, target = rng.choice(DECIDED), rng.choice(["coordinated", "draft"])
    await outcomes.post(
        http, "transition", f"/programs/{program}/transitions", {"to_status": target}
    )


async def one_correction(http: httpx.AsyncClient, rng: random.Random, outcomes: Outcomes) -> None:
    """Voids the programme's latest status change as last read; a decision or a transition
    may have come in between (409), or it may be the creation or a correction (409 too)."""
    program = rng.choice(DECIDED)
    latest = (await history(http, program))[-1]
    correction = {"event": latest["seq"], "reason": "recorded by mistake"}
    await outcomes.post(http, "correction", f"/programs/{program}/corrections", correction)


async def write_concurrently(http: httpx.AsyncClient, outcomes: Outcomes) -> None:
    today = datetime.now(UTC).date().isoformat()  # every programme is created today too

    async def decider(n: int) -> None:
        rng = random.Random(f"decider {n}")
        for round_ in range(DECISIONS_EACH):
            await one_decision(http, rng, f"d-{n}-{round_}", today, outcomes)

    async def transitioner(n: int) -> None:
        rng = random.Random(f"transitioner {n}")
        for _round in range(STATUS_ROUNDS):
            await one_transition(http, rng, outcomes)

    async def corrector(n: int) -> None:
        rng = random.Random(f"corrector {n}")
        for _round in range(STATUS_ROUNDS):
            await one_correction(http, rng, outcomes)

    await asyncio.gather(
        *(decider(n) for n in range(DECIDERS)),
        *(transitioner(n) for n in range(TRANSITIONERS)),
        *(corrector(n) for n in range(CORRECTORS)),
    )


def assert_status_changes_follow_one_another(events: list[dict[str, Any]]) -> None:
    """Each status event starts where the one before it left the programme (no lost update);
    a correction voids its direct predecessor and restores the status that one left."""
    for before, after in itertools.pairwise(events):
        assert after["from_status"] == before["to_status"], (after["program"], after["seq"])
        if after["kind"] == "corrected":
            assert after["changes"] == {"voids": before["seq"]}
            assert before["kind"] == "status_changed"
            assert after["to_status"] == before["from_status"]


async def assert_each_decision_all_or_nothing(
    http: httpx.AsyncClient, histories: Mapping[str, list[dict[str, Any]]], outcomes: Outcomes
) -> None:
    """A recorded decision's every step is stored, in its order, naming it; a refused one
    left no event and no decision."""
    stored: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in itertools.chain.from_iterable(histories.values()):
        if event["decision"] is not None:
            stored[event["decision"]].append(event)
    for code, (steps, answered) in outcomes.decided.items():
        made = sorted(stored.pop(code, []), key=lambda event: event["id"])
        assert [(e["program"], e["to_status"]) for e in made] == [
            (step["program"], step["to_status"]) for step in steps
        ], code
        assert made == answered, code
        recorded = (await http.get(f"{API}/decisions/{code}")).json()
        assert recorded["events"] == answered, code
    assert not stored, f"events name decisions that were not recorded: {sorted(stored)}"
    for code in sorted(outcomes.refused):
        assert (await http.get(f"{API}/decisions/{code}")).status_code == 404, code


async def test_decisions_sharing_programmes_queue_and_stay_all_or_nothing(
    http_unpooled: httpx.AsyncClient, live: LiveServer
) -> None:
    http = http_unpooled
    await create_programmes(http, DECIDED)
    cursor = await feed_end(http)
    log_start = live.log.stat().st_size
    outcomes = Outcomes()
    done = asyncio.Event()

    async def writers() -> None:
        await write_concurrently(http, outcomes)
        done.set()

    give_up = asyncio.get_running_loop().time() + 120
    seen, _ = await asyncio.gather(
        follow_feed(http, cursor, done, outcomes.acknowledged, give_up=give_up), writers()
    )
    print(outcomes.summary())
    assert not outcomes.unexpected, outcomes.summary()
    with live.log.open(encoding="utf-8", errors="replace") as log:
        log.seek(log_start)
        written = log.read()
    assert "deadlock" not in written.lower(), written[-3000:]
    # Both kinds of answer, or the test proved little: decisions recorded and refused.
    assert len(outcomes.decided) >= 5, outcomes.summary()
    assert len(outcomes.refused) >= 5, outcomes.summary()

    histories = await assert_chains_whole(http, DECIDED)
    for code, events in histories.items():
        assert_status_changes_follow_one_another(events)
        program = (await http.get(f"{API}/programs/{code}")).json()
        assert program["status"] == events[-1]["to_status"], code
        assert program["version"] == len(events), code
    await assert_each_decision_all_or_nothing(http, histories, outcomes)
    assert_fed_once_as_acknowledged(seen, DECIDED, outcomes.acknowledged)
