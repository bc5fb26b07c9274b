import datetime as dt

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, CachedReads, cached_reads
from service.types import JSONDocument, UTCDateTime


class Roadmap(Base):
    """A package of union programmes, such as the Main Directions for 2021–2023."""

    __tablename__ = "roadmaps"
    __table_args__ = (cached_reads(CachedReads.APPENDED),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    title_ru: Mapped[str | None] = mapped_column(String(500))
    period: Mapped[str | None] = mapped_column(String(32))
    official_program_count: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ProgressReport(Base):
    """A dated statement of how much of a roadmap is done, as an official reported it."""

    __tablename__ = "progress_reports"
    __table_args__ = (cached_reads(CachedReads.APPENDED),)  # corrections are new reports

    id: Mapped[int] = mapped_column(primary_key=True)
    roadmap_id: Mapped[int] = mapped_column(ForeignKey("roadmaps.id"), index=True)
    date: Mapped[dt.date] = mapped_column(Date)
    measures_done_pct: Mapped[int] = mapped_column(Integer)
    measures_total: Mapped[int | None] = mapped_column(Integer)
    programs_completed: Mapped[int | None] = mapped_column(Integer)
    statement: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(String(2000))
    sources: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    recorded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # A report is never edited: a correction is a new report that names the one it corrects.
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("progress_reports.id"), unique=True)


class SeedLoad(Base):
    """Which part of which bundled roadmap file has been loaded, so that a part added to the
    files later (milestones, progress reports) is loaded once into databases seeded earlier."""

    __tablename__ = "seed_loads"
    __table_args__ = (
        UniqueConstraint("roadmap_code", "part", name="uq_seed_loads_roadmap_part"),
        cached_reads(CachedReads.NOT_READ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    roadmap_code: Mapped[str] = mapped_column(String(64))
    part: Mapped[str] = mapped_column(String(32))
    loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
