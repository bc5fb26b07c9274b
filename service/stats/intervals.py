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
        to_sunday = timedelta(days=6 - day.weekday())
        # The calendar ends on Friday 9999-12-31, inside its last week.
        return date.max if day > date.max - to_sunday else day + to_sunday
    if interval is Interval.YEAR:
        return date(day.year, 12, 31)
    last_month = day.month if interval is Interval.MONTH else ((day.month - 1) // 3 + 1) * 3
    return date(day.year, last_month, calendar.monthrange(day.year, last_month)[1])


def interval_ends(start: date, end: date, interval: Interval, *, at_most: int) -> list[date]:
    """One point per interval overlapping [start, end]: the interval's last day, except that the
    last point is `end` itself when `end` falls inside its interval (no points in the future).

    Stops after `at_most` + 1 points, so the caller can refuse a range that is too long without
    building it first (days from year 1 to 9999 are 3.6 million points)."""
    points: list[date] = []
    day = start
    while day <= end and len(points) <= at_most:
        last = interval_end(day, interval)
        points.append(min(last, end))
        if last >= end:  # also keeps `last + 1 day` from running past 9999-12-31
            break
        day = last + timedelta(days=1)
    return points
