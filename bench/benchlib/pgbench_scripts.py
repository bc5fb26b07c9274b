"""pgbench scripts: one transition as the service and as the anchor send it to PostgreSQL.

The service's statements were copied from the PostgreSQL log (`ALTER DATABASE … SET
log_statement = 'all'` before the service starts, then one POST …/transitions) on 2026-11-28;
schema revisions 0004 and 0005 send the same: the key lookup in its own transaction, then the
programme locked with its roadmap code, its progress over milestones and its newest event's
hash, the event inserted, the programme updated, commit. If the service's queries change, log
them again the same way and update this file.

Each pgbench client owns its own programmes (client_id + clients × n), like the wrk script's
connections, so the database sees the same lock pattern: none shared between clients.
"""

_KEY_LOOKUP = (
    "SELECT api_keys.id, api_keys.key_id, api_keys.name, api_keys.role, api_keys.secret_hash, "
    "api_keys.created_at, api_keys.last_used_at, api_keys.revoked_at "
    "FROM api_keys WHERE api_keys.key_id = :keyid;"
)

_PROGRAMME_COLUMNS = (
    "programs.id, programs.code, programs.roadmap_id, programs.number, programs.title, "
    "programs.title_ru, programs.title_official, programs.sector, programs.lead_bodies, "
    "programs.summary, programs.sources, programs.status, programs.status_effective_date, "
    "programs.version, programs.created_at, programs.updated_at, roadmaps.code AS code_1"
)

_PROGRESS_JOIN = (
    "LEFT OUTER JOIN (SELECT milestones.program_id AS program_id, count(*) AS total, "
    "count(milestones.done_date) AS done, count(CASE WHEN (milestones.done_date IS NULL AND "
    "milestones.due_date < current_date) THEN 1 END) AS overdue, min(CASE WHEN "
    "(milestones.done_date IS NULL AND milestones.due_date >= current_date) THEN "
    "milestones.due_date END) AS next_due_date FROM milestones GROUP BY milestones.program_id) "
    "AS progress ON progress.program_id = programs.id "
)

_INSERT_EVENT = (
    "INSERT INTO events (program_id, seq, kind, from_status, to_status, effective_date, "
    "recorded_at, actor, on_behalf_of, note, source_url, sources, changes, prev_hash, hash) "
    "VALUES (:p_id, :p_version + 1, 'status_changed', :p_status, "
    "CASE WHEN :p_status = 'draft' THEN 'coordinated' ELSE 'draft' END, current_date, now(), "
    "'bench', NULL, NULL, NULL, '[]'::jsonb, 'null'::jsonb, :p_hash, :newhash) "
    "RETURNING events.id, events.txid;"
)

_UPDATE_PROGRAMME = (
    "UPDATE programs SET status = CASE WHEN :p_status = 'draft' THEN 'coordinated' "
    "ELSE 'draft' END, version = :p_version + 1, updated_at = now() "
    "WHERE programs.id = :p_id;"
)


def service_transition(*, with_milestones: bool) -> str:
    """Variables: clients, per (programmes per client), keyid, newhash."""
    progress_columns = (
        ", progress.total, progress.done, progress.overdue, progress.next_due_date"
        if with_milestones
        else ""
    )
    lock = (
        f"SELECT {_PROGRAMME_COLUMNS}{progress_columns}, events.hash "  # noqa: S608 - constants
        "FROM programs JOIN roadmaps ON roadmaps.id = programs.roadmap_id "
        f"{_PROGRESS_JOIN if with_milestones else ''}"
        "LEFT OUTER JOIN events ON events.program_id = programs.id "
        "AND events.seq = programs.version "
        "WHERE programs.code = 'bench_' || lpad(:idx::text, 4, '0') "
        "FOR UPDATE OF programs \\gset p_"
    )
    return "\n".join(
        [
            "\\set n random(0, :per - 1)",
            "\\set idx 1 + :client_id + :clients * :n",
            "BEGIN;",
            _KEY_LOOKUP,
            "COMMIT;",
            "BEGIN;",
            lock,
            _INSERT_EVENT,
            _UPDATE_PROGRAMME,
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
