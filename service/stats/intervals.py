"""Interval ends for time series. Pure."""

import calendar
from datetime import date, timedelta
from enum import StrEnum


class Interval(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


def interval_end(day: date, interval: Interval) -> date:
    """The last day of the interval that contains `day` (weeks end on Sunday, as ISO weeks)."""
    if interval is Interval.DAY:
        return day
    if interval is Interval.WEEK:
        return day + timedelta(days=6 - day.weekday())
    if interval is Interval.YEAR:
        return date(day.year, 12, 31)
    last_month = day.month if interval is Interval.MONTH else ((day.month - 1) // 3 + 1) * 3
    return date(day.year, last_month, calendar.monthrange(day.year, last_month)[1])


def interval_ends(start: date, end: date, interval: Interval) -> list[date]:
    """One point per interval overlapping [start, end]: the interval's last day, except that the
    last point is `end` itself when `end` falls inside its interval (no points in the future)."""
    points: list[date] = []
    day = start
    while day <= end:
        last = interval_end(day, interval)
        points.append(min(last, end))
        day = last + timedelta(days=1)
    return points
