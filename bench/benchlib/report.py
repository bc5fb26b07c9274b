"""The results: goals, verdicts and the markdown entry for bench/RESULTS.md."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

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
            f"| f | service worker peak RSS (VmHWM) after the whole run | "
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


@dataclass
class Results:
    machine: Machine
    postgres: str
    settings: str
    comparisons: list[Comparison] = field(default_factory=list)
    scaling: list[Scaling] = field(default_factory=list)
    memory: MemoryFigures = field(default_factory=MemoryFigures)
    pgbench: list[tuple[str, PgbenchResult | str]] = field(default_factory=list)
    profiles: list[ProfileSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peak_goal_mb: float = 150
    growth_goal_mb: float = 50

    def markdown(self) -> str:
        lines = [
            f"## {self.machine.when} — {self.settings}",
            "",
            *self.machine.describe(self.postgres),
            "- the load generator (wrk, pgbench) and both servers share the same cores: read "
            "the ratios, not the absolute numbers",
            "",
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
            "### Large histories (time per page, one connection, median of sequential requests)",
            "",
            "| | request | small / start | large / end | ratio | goal | verdict |",
            "|---|---|---|---|---:|---|---|",
            *[scaling.row() for scaling in self.scaling],
            "",
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
