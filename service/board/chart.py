"""The cumulative-flow chart: programmes per status at each point, as stacked bands in an
SVG drawn on the server, so the board needs no script to show it. Pure.

The colours are the stylesheet's (static/board.css), by status; every band also has its
label in the legend and its figures in a table beside the chart."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from service.rules.workflow import Status

# Bottom to top: where programmes end up at the bottom, so the bands grow upwards as they
# move through their lifecycle.
STACK_ORDER: tuple[Status, ...] = (
    Status.COMPLETED,
    Status.CARRIED_OVER,
    Status.WITHDRAWN,
    Status.DELAYED,
    Status.IN_IMPLEMENTATION,
    Status.SUPREME_COUNCIL_APPROVED,
    Status.MINISTERIALLY_APPROVED,
    Status.COORDINATED,
    Status.DRAFT,
)

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 30
MIN_TICK_GAP = 40  # between year labels, so that they do not run into each other


@dataclass(frozen=True)
class Band:
    status: Status
    path: str  # SVG path data: the band's top edge left to right, its bottom edge back


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bands: list[Band]
    x_ticks: list[Tick]
    y_max: int
    y_ticks: list[tuple[float, int]]  # (y, count)
    baseline: float
    plot_left: int
    plot_right: int


def _x(index: int, points: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span * index / (points - 1) if points > 1 else span / 2)


def cumulative_flow(points: Sequence[tuple[date, Mapping[str, int]]]) -> Chart | None:
    """The chart for `points` (a date and programmes per status value), or None when there is
    nothing to draw."""
    if not points:
        return None
    totals = [sum(counts.values()) for _, counts in points]
    y_max = max(totals)
    if y_max == 0:
        return None
    plot_height = HEIGHT - TOP - BOTTOM

    def y(count: float) -> float:
        return round(TOP + plot_height * (1 - count / y_max), 1)

    below = [0] * len(points)
    bands: list[Band] = []
    for status in STACK_ORDER:
        counts = [counts.get(status.value, 0) for _, counts in points]
        if not any(counts):
            continue
        above = [b + c for b, c in zip(below, counts, strict=True)]
        top = [f"{_x(i, len(points)):.1f},{y(v)}" for i, v in enumerate(above)]
        bottom = [f"{_x(i, len(points)):.1f},{y(v)}" for i, v in reversed(list(enumerate(below)))]
        if len(points) == 1:  # one point: a bar rather than a line of no width
            x = _x(0, 1)
            top = [f"{x - 20:.1f},{y(above[0])}", f"{x + 20:.1f},{y(above[0])}"]
            bottom = [f"{x + 20:.1f},{y(below[0])}", f"{x - 20:.1f},{y(below[0])}"]
        bands.append(Band(status, "M" + " L".join(top + bottom) + " Z"))
        below = above
    ticks: list[Tick] = []
    seen_years: set[int] = set()
    for index, (day, _) in enumerate(points):
        x = _x(index, len(points))
        if day.year not in seen_years:
            seen_years.add(day.year)
            if ticks and x - ticks[-1].x < MIN_TICK_GAP:  # a short first year: label the next
                ticks.pop()
            ticks.append(Tick(x, str(day.year)))
    y_ticks = [(y(value), value) for value in sorted({0, y_max // 2, y_max})]
    return Chart(WIDTH, HEIGHT, bands, ticks, y_max, y_ticks, y(0), LEFT, WIDTH - RIGHT)
