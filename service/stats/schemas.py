from datetime import date

from pydantic import RootModel

from service.schemas import ReadModel


class SummaryRead(ReadModel):
    as_of: date
    total: int
    by_status: dict[str, int]
    by_sector: dict[str, int]


class TimelinePoint(ReadModel):
    date: date
    by_status: dict[str, int]


class TimelineRead(ReadModel):
    interval: str
    points: list[TimelinePoint]


class StatusCountRead(ReadModel):
    """One row of the long format: `count` programmes were in `status` at the end of `date`."""

    date: date
    status: str
    count: int


class StatusCountRows(RootModel[list[StatusCountRead]]):
    """The long format: every state at every date, zeros included, as rows that Grafana, pandas
    and spreadsheets read without reshaping."""
