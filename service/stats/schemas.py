from datetime import date

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
