"""A programme's progress in SQL: the state rule of service.rules.milestones for each of its
milestones, and the counts per programme, evaluated at the end of a day given as the `day`
parameter (today, or an as-of date). It lives with programmes because progress is a programme's
figure (service.programs.service joins it to every programme read); milestones import it."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    SQLColumnExpression,
    Subquery,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
)

from service.models.milestones import Milestone
from service.models.programs import Program
from service.rules.milestones import CLOSED_STATUSES, MilestoneState

DAY = bindparam("day", type_=Date())


def is_closed(status: SQLColumnExpression[Any]) -> ColumnElement[bool]:
    # Equalities rather than IN: IN's list is rendered only at execution, which a statement
    # run on the driver (db.first_row_of) cannot have.
    return or_(*(status == closed for closed in sorted(CLOSED_STATUSES)))


def _done_by(day: ColumnElement[Any]) -> ColumnElement[bool]:
    return and_(Milestone.done_date.is_not(None), Milestone.done_date <= day)


def _open_at(day: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(Milestone.done_date.is_(None), Milestone.done_date > day)


def state_at(day: ColumnElement[Any], status: SQLColumnExpression[Any]) -> ColumnElement[str]:
    """rules.milestones.milestone_state, for a milestone of a programme in `status`."""
    return case(
        (_done_by(day), MilestoneState.DONE.value),
        (is_closed(status), MilestoneState.MISSED.value),
        (Milestone.due_date < day, MilestoneState.OVERDUE.value),  # NULL: no due date
        else_=MilestoneState.PLANNED.value,
    )


def progress_by_program(
    *, code: ColumnElement[str] | None = None, known_at: datetime | None = None
) -> Subquery:
    """Per programme, its milestones that existed at the end of DAY (set on or before it, and
    recorded by `known_at` when given), grouped: total, done, and the open ones (all, past their
    due date, and the next due date). Only for the programme with `code` when given, so a
    single read does not count everyone's. Whether open means overdue or missed depends on the
    programme's status then, which progress_columns adds."""
    open_ = _open_at(DAY)
    query = (
        select(
            Milestone.program_id.label("program_id"),
            func.count().label("total"),
            func.count(case((_done_by(DAY), 1))).label("done"),
            func.count(case((open_, 1))).label("open"),
            func.count(case((and_(open_, Milestone.due_date < DAY), 1))).label("past_due"),
            func.min(case((and_(open_, Milestone.due_date >= DAY), Milestone.due_date))).label(
                "next_due_date"
            ),
        )
        .where(Milestone.set_on <= DAY)
        .group_by(Milestone.program_id)
    )
    if code is not None:
        program_id = select(Program.id).where(Program.code == code).scalar_subquery()
        query = query.where(Milestone.program_id == program_id)
    if known_at is not None:
        query = query.where(Milestone.created_at <= known_at)
    return query.subquery("progress")


def progress_columns(progress: Subquery, status: SQLColumnExpression[Any]) -> tuple[Any, ...]:
    """total, done, overdue, missed and next due date, for a programme in `status`: a closed
    programme's open milestones are missed, and nothing of it is due any more."""
    closed = is_closed(status)
    return (
        progress.c.total,
        progress.c.done,
        case((closed, 0), else_=progress.c.past_due).label("overdue"),
        case((closed, progress.c.open), else_=0).label("missed"),
        case((closed, None), else_=progress.c.next_due_date).label("next_due_date"),
    )
