"""Filters must name something that exists: `?roadmap=nope` is a typo to report, not an empty
result to show as zeros on a dashboard."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import InvalidInput
from service.models.programs import Program
from service.models.roadmaps import Roadmap


def _unknown(parameter: str, what: str, value: str) -> InvalidInput:
    detail = f"{parameter}: there is no {what} with code {value!r}."
    return InvalidInput(
        detail, errors=[{"loc": ["query", parameter], "msg": detail, "type": "unknown_value"}]
    )


async def require_known(
    session: AsyncSession, *, roadmap: str | None = None, program: str | None = None
) -> None:
    """Raise a 422 problem naming the filter whose value names nothing. Uncached reads run it
    only when a filtered result came back empty, so a normal read pays nothing for it."""
    if roadmap is not None:
        found = await session.scalar(select(Roadmap.id).where(Roadmap.code == roadmap))
        if found is None:
            raise _unknown("roadmap", "roadmap", roadmap)
    if program is not None:
        found = await session.scalar(select(Program.id).where(Program.code == program))
        if found is None:
            raise _unknown("program", "programme", program)
