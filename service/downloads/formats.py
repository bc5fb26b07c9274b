"""How exports lay values out: CSV cells and lines, and the columns of each CSV. Pure.

audit.rendered writes the same text for events on PostgreSQL; tests/exports/test_rendered.py
holds the two to each other."""

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from service.programs.schemas import ProgressRead

PROGRAM_COLUMNS = (
    "code", "number", "title", "title_ru", "title_official", "sector", "lead_bodies", "summary",
    "roadmap", "status", "status_label", "status_effective_date", *ProgressRead.model_fields,
    "version", "created_at", "updated_at", "sources",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "program", "seq", "kind", "from_status", "to_status", "effective_date", "recorded_at",
    "actor", "on_behalf_of", "note", "source_url", "sources", "changes", "decision",
    "decision_attributed", "prev_hash", "hash", "cursor",
)  # fmt: skip
PROGRESS_REPORT_COLUMNS = (
    "id", "roadmap", "date", "measures_done_pct", "measures_total", "programs_completed",
    "statement", "source_url", "sources", "recorded_by", "created_at", "corrects",
)  # fmt: skip
MILESTONE_COLUMNS = (
    "id", "program", "title", "set_on", "due_date", "done_date", "state", "source_url",
    "sources", "note", "created_at", "updated_at",
)  # fmt: skip


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: lists joined with " | ", objects as JSON with sorted keys."""
    if isinstance(value, list):
        return " | ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


def csv_lines(rows: Iterable[Iterable[Any]]) -> str:
    """Rows as CSV lines ending in LF, as PostgreSQL's COPY writes them (audit.rendered), with a
    value holding a comma, a quote, a CR or an LF quoted. csv.writer quotes a lone CR only when
    it is in the line terminator, so each row is written with CRLF and the CR taken off."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    lines = []
    for row in rows:
        writer.writerow(row)
        lines.append(buffer.getvalue()[:-2] + "\n")
        buffer.seek(0)
        buffer.truncate()
    return "".join(lines)
