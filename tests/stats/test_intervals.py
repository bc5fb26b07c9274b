from datetime import date

from service.stats.intervals import Interval, interval_end, interval_ends


def test_quarters_2021_to_2024_are_sixteen_points() -> None:
    points = interval_ends(date(2021, 1, 1), date(2024, 12, 31), Interval.QUARTER, at_most=100)
    assert len(points) == 16
    assert points[:2] == [date(2021, 3, 31), date(2021, 6, 30)]
    assert points[-1] == date(2024, 12, 31)


def test_interval_ends() -> None:
    assert interval_end(date(2024, 2, 10), Interval.MONTH) == date(2024, 2, 29)
    assert interval_end(date(2023, 11, 2), Interval.QUARTER) == date(2023, 12, 31)
    assert interval_end(date(2024, 11, 28), Interval.WEEK) == date(2024, 12, 1)  # a Sunday
    assert interval_end(date(2024, 12, 1), Interval.WEEK) == date(2024, 12, 1)
    assert interval_end(date(2022, 5, 5), Interval.YEAR) == date(2022, 12, 31)


def test_a_partial_last_interval_ends_at_end() -> None:
    points = interval_ends(date(2024, 1, 15), date(2024, 3, 10), Interval.MONTH, at_most=100)
    assert points == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 10)]
    assert interval_ends(date(2024, 1, 1), date(2024, 1, 3), Interval.DAY, at_most=100) == [
        date(2024, 1, 1),
        date(2024, 1, 2),
        date(2024, 1, 3),
    ]
    assert interval_ends(date(2024, 2, 1), date(2024, 1, 1), Interval.DAY, at_most=100) == []


def test_the_ends_are_bounded_before_they_are_built() -> None:
    # Year 1 to 9999 by day is 3.6 million points: only one past the bound is built.
    points = interval_ends(date(1, 1, 1), date(9999, 12, 30), Interval.DAY, at_most=10)
    assert len(points) == 11


def test_the_last_day_of_the_calendar_is_a_point() -> None:
    for interval in Interval:
        end = date(9999, 12, 31)
        assert interval_ends(end, end, interval, at_most=5) == [end]
        assert interval_ends(date(9999, 12, 20), end, interval, at_most=50)[-1] == end
