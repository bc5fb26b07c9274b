"""pgbench scripts: one transition as the service and as the anchor send it to PostgreSQL.

The service's statements are its lean path's own (service.programs.lean_transitions), compiled
here as the service compiles them, with pgbench's variables and expressions in place of the
values a request supplies: the key lookup that takes the programme's write lock, the read of
the programme with its roadmap, progress and newest event's hash, and the event's insert with
the programme's update in one statement, between BEGIN and COMMIT. So the script follows the
service when its statements change.

Each pgbench client owns its own programmes (client_id + clients × n), like the wrk script's
connections, so the database sees the same lock pattern: none shared between clients.
"""

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects import postgresql

from service.db import compiled_for_driver
from service.programs.lean_transitions import KEY_AND_LOCK, WRITE_STATUS_CHANGE
from service.programs.service import PROGRAM_WITH_HEAD_BY_CODE

_CODE = "('bench_' || lpad(:idx::text, 4, '0'))"
_TO_STATUS = "(CASE WHEN :p_status = 'draft' THEN 'coordinated' ELSE 'draft' END)"
# What a bench transition sends (bench/lua/service_transition.lua), as pgbench expressions.
_VALUES = {
    "key_id": ":keyid",
    "secret_hash": ":secrethash",
    "code": _CODE,
    "day": "current_date",
    "program_id": ":p_id",
    "program_status": _TO_STATUS,
    "program_status_effective_date": "current_date",
    "program_version": "(:p_version + 1)",
    "program_updated_at": "now()",
    "event_program_id": ":p_id",
    "event_seq": "(:p_version + 1)",
    "event_kind": "'status_changed'",
    "event_from_status": ":p_status",
    "event_to_status": _TO_STATUS,
    "event_effective_date": "current_date",
    "event_recorded_at": "now()",
    "event_actor": "'bench'",
    "event_on_behalf_of": "NULL",
    "event_note": "NULL",
    "event_source_url": "'https://example.org/bench'",
    "event_sources": "'[\"https://example.org/bench\"]'",
    "event_changes": "NULL",
    "event_decision": "NULL",
    "event_prev_hash": ":p_hash",
    "event_hash": ":newhash",
}


def _literal(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _pgbench_sql(statement: Any, values: Mapping[str, str]) -> str:
    """The statement as the service's driver runs it, its $n parameters replaced by pgbench
    expressions (`values`, by parameter name) or by the literals the statement holds."""
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    sql, names, literals = compiled_for_driver(statement, dialect)

    def replace(match: re.Match[str]) -> str:
        name = names[int(match.group(1)) - 1]
        return values[name] if name in values else _literal(literals[name])

    return " ".join(re.sub(r"\$(\d+)", replace, sql).split())


def service_transition() -> str:
    """Variables: clients, per (programmes per client), keyid and secrethash (the bench key's),
    newhash."""
    return "\n".join(
        [
            "\\set n random(0, :per - 1)",
            "\\set idx 1 + :client_id + :clients * :n",
            "BEGIN;",
            _pgbench_sql(KEY_AND_LOCK, _VALUES) + ";",
            _pgbench_sql(PROGRAM_WITH_HEAD_BY_CODE, _VALUES) + " \\gset p_",
            _pgbench_sql(WRITE_STATUS_CHANGE, _VALUES) + ";",
            "COMMIT;",
            "",
        ]
    )


def anchor_transition() -> str:
    """The anchor's /transition_raw statements, over its 28 rows (variables: newhash)."""
    return "\n".join(
        [
            "\\set pid random(1, 28)",
            "BEGIN;",
            "SELECT status, version, head_hash FROM anchor_program WHERE id = :pid "
            "FOR UPDATE \\gset a_",
            "UPDATE anchor_program SET status = CASE WHEN :a_status = 'a' THEN 'b' ELSE 'a' END, "
            "version = version + 1, head_hash = :newhash WHERE id = :pid;",
            "INSERT INTO anchor_event(program_id, from_status, to_status, hash) VALUES (:pid, "
            ":a_status, CASE WHEN :a_status = 'a' THEN 'b' ELSE 'a' END, :newhash) RETURNING id;",
            "COMMIT;",
            "",
        ]
    )
