"""The results: goals, verdicts and the markdown entry for bench/RESULTS.md."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from benchlib.feeds import CopyTiming, ExportCheck, FanOutResult, FollowResult
from benchlib.load import ExportResult, PageTiming, PgbenchResult, WrkResult
from benchlib.profiling import ProfileSummary
from benchlib.tools import Machine

RESULTS_MARKER = "<!-- newest results first: bench/run.py --write-results inserts below -->"

NOT_AVAILABLE = "not available yet"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def at_least(value: float, goal: float) -> str:
    """Verdict for a goal of the form value >= goal."""
    if math.isnan(value):
        return "not measured"
    if value >= goal:
        return f"**met** ({100 * (value / goal - 1):.0f}% above)"
    return f"**NOT met** ({100 * (1 - value / goal):.0f}% short; needs ×{goal / value:.2f})"


def at_most(value: float, goal: float) -> str:
    """Verdict for a goal of the form value <= goal."""
    if math.isnan(value):
        return "not measured"
    if value <= goal:
        return f"**met** ({100 * (1 - value / goal):.0f}% headroom)"
    return f"**NOT met** ({100 * (value / goal - 1):.0f}% over)"


def _ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


@dataclass
class Comparison:
    """One request type, service against anchor, alternated over rounds."""

    key: str
    title: str
    service_request: str
    anchor_request: str
    goal: float
    service: list[WrkResult] = field(default_factory=list)
    anchor: list[WrkResult] = field(default_factory=list)
    counts_responses: bool = False

    def rps(self, runs: list[WrkResult]) -> float:
        return _median([run.rps for run in runs])

    @property
    def ratio(self) -> float:
        anchor = self.rps(self.anchor)
        return self.rps(self.service) / anchor if anchor else float("nan")

    @staticmethod
    def latency(runs: list[WrkResult]) -> str:
        p50 = _median([run.p50_ms for run in runs])
        p99 = _median([run.p99_ms for run in runs])
        return f"{_ms(p50)} / {_ms(p99)}"

    @staticmethod
    def cpu(runs: list[WrkResult]) -> float:
        return _median([run.cpu_ms_per_request for run in runs])

    @staticmethod
    def non_2xx(runs: list[WrkResult]) -> int:
        return sum(run.non_2xx for run in runs)

    @property
    def clean(self) -> bool:
        runs = self.service + self.anchor
        return all(run.non_2xx == 0 and run.socket_errors == 0 and run.starved == 0 for run in runs)

    def verdict(self) -> str:
        verdict = at_least(self.ratio, self.goal)
        if self.counts_responses and not self.clean:
            verdict += " — with unexpected non-2xx/errors (the goal requires none)"
        return verdict

    def row(self) -> str:
        return (
            f"| {self.key} | {self.title} | {self.rps(self.service):,.0f} | "
            f"{self.rps(self.anchor):,.0f} | **{self.ratio:.2f}x** | ≥ {self.goal:.1f}x | "
            f"{self.verdict()} | {self.latency(self.service)} | {self.latency(self.anchor)} | "
            f"{self.non_2xx(self.service)} / {self.non_2xx(self.anchor)} | "
            f"{_ms(self.cpu(self.service))} / {_ms(self.cpu(self.anchor))} |"
        )

    def detail(self) -> str:
        def rounds(runs: list[WrkResult]) -> str:
            return ", ".join(f"{run.rps:,.0f}" for run in runs)

        extra = ""
        if self.counts_responses:
            s409 = sum(run.count_409 for run in self.service)
            sother = sum(run.count_other for run in self.service)
            starved = sum(run.starved for run in self.service)
            errors = sum(run.socket_errors for run in self.service + self.anchor)
            extra = (
                f"; service 409: {s409}, other non-2xx: {sother}, starved: {starved}, "
                f"socket errors/timeouts (both): {errors}"
            )
        return (
            f"- ({self.key}) `{self.service_request}` vs `{self.anchor_request}` — req/s per "
            f"round, service: {rounds(self.service)}; anchor: {rounds(self.anchor)}{extra}"
        )


@dataclass
class Scaling:
    """The same request over a small and a large history: time per page, large / small."""

    key: str
    title: str
    small_label: str
    large_label: str
    goal: float
    small: PageTiming | None = None
    large: PageTiming | None = None

    @property
    def available(self) -> bool:
        return bool(self.small and self.large and self.small.available and self.large.available)

    @property
    def ratio(self) -> float:
        if not self.available or self.small is None or self.large is None:
            return float("nan")
        return self.large.p50_ms / self.small.p50_ms

    def row(self) -> str:
        def cell(timing: PageTiming | None) -> str:
            if timing is None:
                return "–"
            if not timing.available:
                return f"HTTP {timing.status}" if timing.status else timing.note or "failed"
            items = f", {timing.items} items" if timing.items is not None else ""
            cpu = f", worker CPU {timing.cpu_ms:.1f} ms" if timing.cpu_ms is not None else ""
            return (
                f"{_ms(timing.p50_ms)} ms (p90 {_ms(timing.p90_ms)}, "
                f"n={len(timing.samples_ms)}{items}{cpu})"
            )

        unavailable = any(
            timing is not None and timing.status == 404 for timing in (self.small, self.large)
        )
        if unavailable:
            ratio, verdict = "–", NOT_AVAILABLE + " (404)"
        elif not self.available:
            ratio, verdict = "–", "not measured (see cells)"
        else:
            ratio, verdict = f"**{self.ratio:.2f}**", at_most(self.ratio, self.goal)
        return (
            f"| {self.key} | {self.title} | {self.small_label}: {cell(self.small)} | "
            f"{self.large_label}: {cell(self.large)} | {ratio} | ≤ {self.goal:g} | {verdict} |"
        )


@dataclass
class MemoryFigures:
    startup_peak_mb: float = float("nan")
    final_peak_mb: float = float("nan")
    final_rss_mb: float = float("nan")
    anchor_peak_mb: float = float("nan")
    export: ExportResult | None = None
    events_in_db: int = 0

    def rows(self, peak_goal: float, growth_goal: float) -> list[str]:
        rows = [
            f"| f | service worker peak RSS (VmHWM) after the run, before the fan-out (j) | "
            f"{self.final_peak_mb:.0f} MB (after start-up, migration and seed: "
            f"{self.startup_peak_mb:.0f} MB; RSS at the end {self.final_rss_mb:.0f} MB; "
            f"anchor peak {self.anchor_peak_mb:.0f} MB) | ≤ {peak_goal:g} MB | "
            f"{at_most(self.final_peak_mb, peak_goal)} |"
        ]
        export = self.export
        if export is None:
            rows.append("| f | RSS growth streaming the export | not run | – | – |")
        elif export.status == 404:
            rows.append(
                f"| f | RSS growth streaming `/api/v1/export/events.ndjson` | {NOT_AVAILABLE} "
                f"(404) | ≤ {growth_goal:g} MB | {NOT_AVAILABLE} |"
            )
        elif not export.available:
            rows.append(
                f"| f | RSS growth streaming the export | failed: HTTP {export.status} "
                f"{export.note} | ≤ {growth_goal:g} MB | not measured |"
            )
        else:
            whole = "complete" if export.complete else "STOPPED at the time budget"
            rows.append(
                f"| f | RSS growth streaming `/api/v1/export/events.ndjson` "
                f"({self.events_in_db:,} events in the database) | "
                f"+{export.growth_mb:.0f} MB ({export.rss_before_mb:.0f} → "
                f"{export.rss_peak_mb:.0f} MB; {export.lines:,} lines, "
                f"{export.megabytes:.0f} MB in {export.seconds:.1f} s, {whole}) | "
                f"≤ {growth_goal:g} MB | {at_most(export.growth_mb, growth_goal)} |"
            )
        return rows


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


@dataclass
class FeedFigures:
    """Issue 17: the exports against psql's COPY (h), following the feed (i), fan-out (j)."""

    copy: CopyTiming | None = None
    ndjson: ExportCheck | None = None
    csv: ExportCheck | None = None
    follow: FollowResult | None = None
    follow_fallback: FollowResult | None = None  # at the largest page the service takes
    fanout: FanOutResult | None = None
    export_ratio_goal: float = 3.0
    growth_goal_mb: float = 50
    follow_rate_goal: float = 50_000
    follow_ratio_goal: float = 3.0
    streams_rate_goal: float = 2.0
    delivery_p99_goal_ms: float = 2000
    streams_rss_goal_mb: float = 300

    @property
    def measured(self) -> bool:
        return any(
            part is not None
            for part in (self.copy, self.ndjson, self.csv, self.follow, self.fanout)
        )

    def copy_row(self) -> str:
        copy = self.copy
        request = "`psql \\copy (…) TO STDOUT WITH CSV`"
        if copy is None:
            return f"| h | {request} | not run | reference | – |"
        if not copy.available:
            return f"| h | {request} | failed: {copy.note} | reference | – |"
        runs = ", ".join(_seconds(s) for s in copy.seconds)
        return (
            f'| h | `psql "<dsn>" -c "\\copy (SELECT <the export\'s columns> …) TO STDOUT '
            f'WITH CSV" > /dev/null` ({copy.rows:,} rows) | **{_seconds(copy.median_s)}** '
            f"(median of {runs}; {copy.rows / copy.median_s:,.0f} rows/s) | reference | – |"
        )

    def export_rows(self, check: ExportCheck | None, name: str) -> list[str]:
        request = f"full download `GET /api/v1/export/{name}`"
        goal = f"≤ {self.export_ratio_goal:g}× psql"
        if check is None:
            return [f"| h | {request} | not run | {goal} | – |"]
        result = check.result
        if result.status == 404:
            return [f"| h | {request} | {NOT_AVAILABLE} (404) | {goal} | {NOT_AVAILABLE} |"]
        if not result.available:
            return [
                f"| h | {request} | failed: HTTP {result.status} {result.note} | {goal} | "
                "not measured |"
            ]
        if check.complete:
            whole = "complete"
        elif result.complete:
            whole = (
                f"INCOMPLETE: ended after {check.rows_read:,} of {check.expected_rows:,} rows"
                f"{'' if check.ends_at_the_end else ', not at the last event'}"
            )
        else:
            whole = (
                f"STOPPED at the time budget after {check.rows_read:,} of "
                f"{check.expected_rows:,} rows; whole download projected at "
                f"{_seconds(check.seconds_for_all)}"
            )
        psql = self.copy.median_s if self.copy and self.copy.available else float("nan")
        ratio = check.seconds_for_all / psql
        if math.isnan(ratio):
            verdict, shown = "not measured (no psql time)", "–"
        else:
            verdict = at_most(ratio, self.export_ratio_goal)
            shown = f"**{ratio:.1f}×** psql{' (projected)' if check.projected else ''}"
            if check.projected:
                verdict += " (projected from the part read)"
            if result.complete and not check.complete:
                verdict = "**NOT met** (the download was incomplete)"
        rows = [
            f"| h | {request} | {_seconds(result.seconds)} = {shown} ({result.lines:,} lines, "
            f"{result.megabytes:.0f} MB, {check.events_per_s:,.0f} events/s; {whole}) | "
            f"{goal} | {verdict} |"
        ]
        if name.endswith(".csv"):  # the NDJSON one is (f)'s row
            rows.append(
                f"| h | RSS growth streaming `/api/v1/export/{name}` | "
                f"+{result.growth_mb:.0f} MB ({result.rss_before_mb:.0f} → "
                f"{result.rss_peak_mb:.0f} MB) | ≤ {self.growth_goal_mb:g} MB | "
                f"{at_most(result.growth_mb, self.growth_goal_mb)} |"
            )
        return rows

    def follow_rows(self) -> list[str]:
        follow = self.follow
        ndjson_s = self.ndjson.seconds_for_all if self.ndjson else float("nan")
        goal = (
            f"≥ {self.follow_rate_goal:,.0f} events/s, or ≤ {self.follow_ratio_goal:g}× the "
            f"NDJSON export's time"
            + (
                f" (≤ {_seconds(self.follow_ratio_goal * ndjson_s)})"
                if ndjson_s == ndjson_s
                else ""
            )
        )
        request = "following the feed `GET /api/v1/events?limit=1000&after=…` from the start"
        if follow is None:
            return [f"| i | {request} | not run | {goal} | – |"]
        rows = []
        if not follow.available:
            if follow.status == 404:
                rows.append(f"| i | {request} | {NOT_AVAILABLE} (404) | {goal} | {NOT_AVAILABLE} |")
            else:
                refused = " (limit=1000 refused)" if follow.status == 422 else ""
                rows.append(
                    f"| i | {request} | {NOT_AVAILABLE}: HTTP {follow.status}{refused} "
                    f"{follow.note[:160]} | {goal} | **NOT met** (not available) |"
                )
        else:
            rows.append(
                f"| i | {request} | {self._follow_cell(follow)} | {goal} | "
                f"{self._follow_verdict(follow, ndjson_s)} |"
            )
        fallback = self.follow_fallback
        if fallback is not None and fallback.available:
            rows.append(
                f"| i | context: the same with `limit={fallback.limit}` (the largest page the "
                f"service takes today) | {self._follow_cell(fallback)} | – | context only: "
                f"{self._follow_verdict(fallback, ndjson_s)} |"
            )
        return rows

    @staticmethod
    def _follow_cell(follow: FollowResult) -> str:
        whole = (
            "complete"
            if follow.complete
            else f"{follow.note or 'incomplete'}; {follow.events:,} of {follow.expected:,} "
            f"events; all of them projected at {_seconds(follow.seconds_for_all)}"
        )
        return (
            f"**{follow.events_per_s:,.0f} events/s** ({follow.events:,} events in "
            f"{follow.pages:,} pages, {_seconds(follow.seconds)}; page p50 / p99 "
            f"{_ms(follow.page_p50_ms)} / {_ms(follow.page_p99_ms)} ms; {whole})"
        )

    def _follow_verdict(self, follow: FollowResult, ndjson_s: float) -> str:
        """Met if either the rate or the time (against the NDJSON export's) is; says which."""
        if follow.reached_end and not follow.complete:
            return f"**NOT met** (reached the end with {follow.events:,} of {follow.expected:,})"
        rate, rate_goal = follow.events_per_s, self.follow_rate_goal
        ratio = follow.seconds_for_all / ndjson_s if ndjson_s > 0 else float("nan")
        time_goal = self.follow_ratio_goal
        if rate >= rate_goal:
            rate_text = f"the rate is {100 * (rate / rate_goal - 1):.0f}% above {rate_goal:,.0f}"
        else:
            rate_text = (
                f"the rate is {100 * (1 - rate / rate_goal):.0f}% short of {rate_goal:,.0f} "
                f"(needs ×{rate_goal / rate:.2f})"
            )
        if math.isnan(ratio):
            time_text = "no NDJSON export time to compare with"
        else:
            time_text = f"the time is {ratio:.2f}× the NDJSON export's (goal ≤ {time_goal:g}×)"
        projected = "" if follow.complete else "; projected from the part read"
        if rate >= rate_goal:
            return f"**met** by the rate ({rate_text}; {time_text}{projected})"
        if ratio <= time_goal:
            return f"**met** by the time ({time_text}; {rate_text}{projected})"
        return f"**NOT met** ({rate_text}; {time_text}{projected})"

    def fanout_rows(self) -> list[str]:
        fan = self.fanout
        if fan is None:
            return ["| j | fan-out | not run | – | – |"]
        n = f"{fan.streams_open:,}"
        if not fan.available:
            what = f"fan-out to {fan.streams_wanted:,} streams"
            return [f"| j | {what} | failed: {fan.note} | – | not measured |"]
        ratio = fan.rate_ratio
        rate_verdict = at_most(ratio, self.streams_rate_goal)
        if fan.streams_open < fan.streams_wanted:
            rate_verdict += f" — only {n} of {fan.streams_wanted:,} streams opened"
        opened = f"{n} of {fan.streams_wanted:,} opened in {fan.open_seconds:.1f} s" + (
            f", {fan.open_failures} failed ({'; '.join(fan.open_errors)[:200]})"
            if fan.open_failures
            else ""
        )
        rows = [
            f"| j | transactions/s in the service's database (`pg_stat_database` xact_commit + "
            f"xact_rollback, {fan.window_s:g} s windows, no writes); {opened} | "
            f"0 streams: {fan.rate_idle:.1f}/s (context); 1 stream: {fan.rate_one:.1f}/s; "
            f"{n} streams: {fan.rate_many:.1f}/s = **{ratio:.2f}×** 1 stream (worker CPU "
            f"{fan.cpu_idle_pct:.1f}% / {fan.cpu_one_pct:.1f}% / {fan.cpu_many_pct:.1f}% of a "
            f"core) | ≤ {self.streams_rate_goal:g}× the 1-stream rate | {rate_verdict} |"
        ]
        expected = fan.streams_open * fan.transitions
        delivered = len(fan.latencies_ms)
        failures = ""
        if fan.transition_failures:
            failed = "; ".join(fan.transition_failures)[:200]
            failures = f"; {len(fan.transition_failures)} POSTs failed: {failed}"
        if delivered:
            p99 = fan.p99_ms
            verdict = at_most(p99, self.delivery_p99_goal_ms)
            if fan.missing or fan.duplicates or fan.streams_complete < fan.streams_open:
                verdict = (
                    f"**NOT met**: {fan.streams_open - fan.streams_complete:,} streams missed "
                    f"or repeated events (p99 alone: {verdict})"
                )
            value = (
                f"p50 **{_ms(fan.p50_ms)}** / p99 **{_ms(p99)}** / max {_ms(fan.max_ms)} ms; "
                f"{delivered:,} of {expected:,} deliveries, {fan.missing:,} missing, "
                f"{fan.duplicates:,} repeated; streams with every event once: "
                f"**{fan.streams_complete:,} / {n}**"
                + (f"; {fan.streams_ended_early} ended early" if fan.streams_ended_early else "")
            )
        else:
            verdict, value = "not measured", f"no event arrived{failures or ''}"
        rows.append(
            f"| j | {fan.transitions} transitions, {fan.spacing_s:g} s apart, with {n} streams "
            f"open: POST's response → the event's arrival on each stream{failures} | {value} | "
            f"p99 ≤ {self.delivery_p99_goal_ms / 1000:g} s, every stream every event | {verdict} |"
        )
        rows.append(
            f"| j | worker RSS with {n} streams open | **{fan.rss_open_mb:.0f} MB** (before "
            f"opening {fan.rss_before_mb:.0f} MB; peak while they were open "
            f"{fan.rss_peak_mb:.0f} MB) | ≤ {self.streams_rss_goal_mb:g} MB | "
            f"{at_most(max(fan.rss_open_mb, fan.rss_peak_mb), self.streams_rss_goal_mb)} |"
        )
        closed = "yes" if fan.closed else "**NO**"
        rows.append(
            f"| j | every stream closed afterwards (the worker's open files) | {closed}: "
            f"{fan.fds_before} before, {fan.fds_open} open, {fan.fds_after} "
            f"{fan.closed_in_s:.1f} s after closing | back to before | "
            f"{'**met**' if fan.closed else '**NOT met**'} |"
        )
        if fan.note:
            rows.append(f"| j | note | {fan.note} | – | – |")
        return rows

    def markdown(self) -> list[str]:
        if not self.measured:
            return []
        lines: list[str] = []
        if any(part is not None for part in (self.copy, self.ndjson, self.csv, self.follow)):
            lines += [
                "### Exports and the feed against the database's own COPY (one connection)",
                "",
                "| | measurement | value | goal | verdict |",
                "|---|---|---|---|---|",
                self.copy_row(),
                *self.export_rows(self.ndjson, "events.ndjson"),
                *self.export_rows(self.csv, "events.csv"),
                *self.follow_rows(),
                "",
            ]
        if self.fanout is not None:
            lines += [
                f"### Live streams: {self.fanout.streams_wanted:,} on the service's one worker",
                "",
                "| | measurement | value | goal | verdict |",
                "|---|---|---|---|---|",
                *self.fanout_rows(),
                "",
            ]
        return lines


@dataclass(frozen=True)
class Load:
    """One request type driven at a high concurrency against the service alone."""

    key: str
    request: str
    connections: int
    result: WrkResult

    def row(self) -> str:
        r = self.result
        failed = r.non_2xx + r.socket_errors
        verdict = "**met**" if failed == 0 else f"**NOT met** ({failed} failed)"
        return (
            f"| {self.key} | {self.request} | {self.connections} | {r.rps:,.0f} | "
            f"{_ms(r.p50_ms)} / {_ms(r.p99_ms)} / {_ms(r.max_ms)} | {r.non_2xx} | "
            f"{r.socket_errors} | no 5xx, no timeouts | {verdict} |"
        )


@dataclass
class Results:
    machine: Machine
    postgres: str
    settings: str
    comparisons: list[Comparison] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    scaling: list[Scaling] = field(default_factory=list)
    memory: MemoryFigures = field(default_factory=MemoryFigures)
    feeds: FeedFigures = field(default_factory=FeedFigures)
    pgbench: list[tuple[str, PgbenchResult | str]] = field(default_factory=list)
    profiles: list[ProfileSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peak_goal_mb: float = 150
    growth_goal_mb: float = 50

    def _comparison_lines(self) -> list[str]:
        if not self.comparisons:  # a partial run (--only)
            return []
        return [
            "### Service against the anchor (medians over rounds; S and A alternated)",
            "",
            "| | request | service req/s | anchor req/s | ratio | goal | verdict | "
            "service p50 / p99 ms | anchor p50 / p99 ms | non-2xx S / A | "
            "worker CPU ms/request S / A |",
            "|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|",
            *[comparison.row() for comparison in self.comparisons],
            "",
            *[comparison.detail() for comparison in self.comparisons],
            "",
        ]

    def _load_lines(self) -> list[str]:
        if not self.loads:
            return []
        return [
            "### Under load: the service's one worker at a high concurrency (one run each)",
            "",
            "| | request | connections | req/s | p50 / p99 / max ms | non-2xx | socket errors "
            "and timeouts | goal | verdict |",
            "|---|---|---:|---:|---:|---:|---:|---|---|",
            *[load.row() for load in self.loads],
            "",
        ]

    def _scaling_lines(self) -> list[str]:
        if not self.scaling:
            return []
        return [
            "### Large histories (time per page, one connection, median of sequential requests)",
            "",
            "| | request | small / start | large / end | ratio | goal | verdict |",
            "|---|---|---|---|---:|---|---|",
            *[scaling.row() for scaling in self.scaling],
            "",
        ]

    def markdown(self) -> str:
        lines = [
            f"## {self.machine.when} — {self.settings}",
            "",
            *self.machine.describe(self.postgres),
            "- the load generator (wrk, pgbench) and both servers share the same cores: read "
            "the ratios, not the absolute numbers",
            "",
            *self._comparison_lines(),
            *self._load_lines(),
            *self._scaling_lines(),
            "### Memory",
            "",
            "| | measurement | value | goal | verdict |",
            "|---|---|---|---|---|",
            *self.memory.rows(self.peak_goal_mb, self.growth_goal_mb),
            "",
        ]
        if self.pgbench:
            transitions = next((c for c in self.comparisons if c.key == "c"), None)
            lines += [
                "### The database's own limit for one transition (g: pgbench, same concurrency)",
                "",
                "| script | transactions/s | p50 / p99 ms | failed | the HTTP figure beside it |",
                "|---|---:|---:|---:|---|",
            ]
            for label, result in self.pgbench:
                if isinstance(result, str):
                    lines.append(f"| {label} | {result} | – | – | – |")
                    continue
                beside = ""
                if transitions is not None:
                    runs = transitions.service if "service" in label else transitions.anchor
                    http = transitions.rps(runs)
                    who = "service" if "service" in label else "anchor"
                    beside = f"{who} over HTTP: {http:,.0f} req/s = {http / result.tps:.0%}"
                lines.append(
                    f"| {label} | {result.tps:,.0f} | {_ms(result.p50_ms)} / "
                    f"{_ms(result.p99_ms)} | {result.failed} | {beside} |"
                )
            lines.append("")
        lines += self.feeds.markdown()
        if self.profiles:
            lines += ["### Profiles of the service worker under load (py-spy)", ""]
            for profile in self.profiles:
                lines += profile.markdown()
        if self.notes:
            lines += ["### Notes", "", *[f"- {note}" for note in self.notes], ""]
        return "\n".join(lines)


def prepend_results(path: Path, entry: str) -> None:
    """Insert `entry` above the earlier results, below the file's introduction."""
    if path.exists():
        text = path.read_text()
    else:
        text = (
            "# Benchmark results\n\nWritten by `bench/run.py --write-results`; see "
            "bench/README.md for what each row measures.\n\n" + RESULTS_MARKER + "\n"
        )
    if RESULTS_MARKER not in text:
        text = text.rstrip("\n") + "\n\n" + RESULTS_MARKER + "\n"
    head, _, tail = text.partition(RESULTS_MARKER)
    path.write_text(
        head + RESULTS_MARKER + "\n\n" + entry.rstrip("\n") + "\n\n" + tail.lstrip("\n")
    )
