"""The stats in long format, one row per date and status, and as CSV. Pure.

The wide answers keep one object per date with a count per status, which reads well as JSON;
tools that chart or pivot (Grafana, pandas, spreadsheets) want one row per observation instead.
"""

import csv
import io
from collections.abc import Iterable
from enum import StrEnum

from service.stats.schemas import StatusCountRead, SummaryRead, TimelineRead

LONG_COLUMNS = ("date", "status", "count")


class StatsFormat(StrEnum):
    WIDE = "wide"
    LONG = "long"


def summary_rows(summary: SummaryRead) -> list[StatusCountRead]:
    """One row per status (every state, zeros included) at the summary's as_of."""
    return [
        StatusCountRead(date=summary.as_of, status=status, count=count)
        for status, count in summary.by_status.items()
    ]


def timeline_rows(timeline: TimelineRead) -> list[StatusCountRead]:
    """One row per point and status, points in order, statuses in the workflow's order."""
    return [
        StatusCountRead(date=point.date, status=status, count=count)
        for point in timeline.points
        for status, count in point.by_status.items()
    ]


def rows_csv(rows: Iterable[StatusCountRead]) -> str:
    """The rows as CSV with a `date,status,count` header (no byte-order mark: it is ASCII)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(LONG_COLUMNS)
    writer.writerows((row.date.isoformat(), row.status, row.count) for row in rows)
    return buffer.getvalue()
