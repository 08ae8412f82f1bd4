"""Splitting a period into whole months (read from the rollups) and the days at either end (read from the reports)."""

from __future__ import annotations

from datetime import date

import pytest

from app.statistics.facts import bucket_hours, split


@pytest.mark.parametrize(
    ("first", "last", "months", "edges"),
    [
        (date(2026, 1, 1), date(2026, 12, 31), (date(2026, 1, 1), date(2026, 12, 1)), []),
        (
            date(2025, 11, 28),
            date(2026, 11, 27),
            (date(2025, 12, 1), date(2026, 10, 1)),
            [(date(2025, 11, 28), date(2025, 11, 30)), (date(2026, 11, 1), date(2026, 11, 27))],
        ),
        (date(2026, 2, 1), date(2026, 2, 28), (date(2026, 2, 1), date(2026, 2, 1)), []),
        (date(2024, 2, 1), date(2024, 2, 28), None, [(date(2024, 2, 1), date(2024, 2, 28))]),  # leap year
        (date(2026, 3, 5), date(2026, 3, 20), None, [(date(2026, 3, 5), date(2026, 3, 20))]),
        (
            date(2026, 3, 5),
            date(2026, 4, 30),
            (date(2026, 4, 1), date(2026, 4, 1)),
            [(date(2026, 3, 5), date(2026, 3, 31))],
        ),
        (date(2025, 12, 31), date(2026, 1, 1), None, [(date(2025, 12, 31), date(2026, 1, 1))]),
    ],
)
def test_split(first: date, last: date, months: tuple[date, date] | None, edges: list[tuple[date, date]]) -> None:
    assert split(first, last) == (months, edges)


def test_every_day_is_counted_once() -> None:
    from datetime import timedelta

    start = date(2025, 12, 20)
    for length in range(0, 120, 7):
        first, last = start, start + timedelta(days=length)
        months, edges = split(first, last)
        days = set()
        if months:
            day = months[0]
            while day <= last and day <= months[1].replace(day=28) + timedelta(days=4):
                if day.replace(day=1) <= months[1]:
                    days.add(day)
                day += timedelta(days=1)
        for a, b in edges:
            day = a
            while day <= b:
                assert day not in days
                days.add(day)
                day += timedelta(days=1)
        assert days == {first + timedelta(days=i) for i in range(length + 1)}


def test_bucket_midpoints() -> None:
    assert bucket_hours(0) == 0.05 and bucket_hours(239) == 23.95
    assert bucket_hours(240) == 24.5 and bucket_hours(455) == 239.5
    assert bucket_hours(465) == 252
