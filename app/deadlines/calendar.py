"""Case deadlines on the official Chinese calendar. Pure: no I/O, no clock, no database.

Acceptance, verification (60 days by law, extendable once by at most 30 days) and rectification deadlines are
counted in calendar days or in working days (:class:`DayCount`), as configured per department and category.

Counting rule (法定期限 counting, as in 民法典 第二百零一条: the day the period starts is not counted):

* The start moment is converted to China time (UTC+8, fixed: China has no DST); its date is the *start day*.
* Day 1 is the first day (CALENDAR) or the first working day (WORKING) *after* the start day.
* CALENDAR: the due day is ``start day + days``. If that day is a weekend or a public holiday it is **not** moved:
  calendar days are calendar days. This is deliberately stricter than 民法典 第二百零三条 (a period whose last day
  is a statutory holiday ends on the day after the holiday): a department that wants holidays respected configures
  working days instead. Calendar-day deadlines never depend on the holiday schedule, so they are never provisional.
* WORKING: the due day is the ``days``-th working day after the start day, so it is always a working day.
* A deadline ends at the end of its due day in China time, 23:59:59.999999 (the period's "二十四时"), stored as an
  aware UTC datetime. It is overdue from 00:00 China time of the following day.

Working days follow the State Council's schedule, including 调休 make-up working days (a Saturday or Sunday that is
a working day). The schedule of a year comes from, in this order:

1. a :class:`YearSchedule` loaded by an admin (it overrides the package for that year, e.g. to correct it);
2. the ``chinese-calendar`` package, for the years it ships (:data:`PACKAGE_YEARS`; 1.11.0 ships 2004–2026);
3. otherwise Monday–Friday are working days, and any working-day count that passes through such a year is marked
   ``provisional=True``, to be recomputed once the year is loaded. The State Council publishes next year's schedule
   only late in the year, so a 60-working-day deadline set in November routinely ends in an unknown year. This
   never raises.

Extensions count on from the old due day with the same counting, so ``extend(compute_deadline(s, 60, c), 30)``
ends where ``compute_deadline(s, 90, c)`` does, and ``Deadline.days`` is the total. Whether a case may still be
extended (the law allows one extension) is the workflow's business, not this module's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Any

from chinese_calendar import constants as _package

from app.core.errors import InvalidInput

CHINA_TZ = timezone(timedelta(hours=8), "UTC+08:00")
"""China Standard Time. Fixed offset on purpose: China has observed no daylight saving time since 1991."""

END_OF_DAY = time(23, 59, 59, 999999)
MAX_EXTENSION_DAYS = 30
MAX_DAYS = 3660
"""Upper bound for any count of days (about ten years): a misconfigured period must not spin a worker."""

PACKAGE_YEARS: frozenset[int] = frozenset(day.year for day in _package.holidays)
"""The years whose schedule the installed ``chinese-calendar`` ships (2004–2026 for 1.11.0)."""

_ONE_DAY = timedelta(days=1)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MIN_YEAR, _MAX_YEAR = 1900, 2199


class InvalidYearSchedule(InvalidInput, ValueError):
    """A holiday schedule that cannot be right. Also a ValueError, so validators that expect one can use it."""

    code = "invalid_year_schedule"
    message = "节假日安排不合法"


class ExtensionTooLong(InvalidInput):
    code = "extension_too_long"
    message = "延期天数超过上限"


class DayCount(StrEnum):
    CALENDAR = "calendar"
    WORKING = "working"


def _iso(days: Iterable[date]) -> list[str]:
    return sorted(day.isoformat() for day in days)


def _as_dates(value: Any, field: str, year: int) -> frozenset[date]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidYearSchedule(f"{year} 年节假日安排的 {field} 必须是日期集合", field=field)
    days = frozenset(value)
    for day in days:
        # datetime is a subclass of date but never equals one, so a datetime here would silently match nothing.
        if not isinstance(day, date) or isinstance(day, datetime):
            raise InvalidYearSchedule(f"{year} 年节假日安排的 {field} 中有非日期的值：{day!r}", field=field)
    return days


@dataclass(frozen=True)
class YearSchedule:
    """One year of the State Council's schedule.

    ``holidays``: official days off, whether they fall on weekdays or weekends (weekend ones change nothing but are
    allowed, so the announcement can be copied as it is). ``workdays``: make-up working days, which must be
    Saturdays or Sundays. Any iterable of dates is accepted and stored as a frozenset.
    """

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]

    def __post_init__(self) -> None:
        if isinstance(self.year, bool) or not isinstance(self.year, int) or not _MIN_YEAR <= self.year <= _MAX_YEAR:
            raise InvalidYearSchedule(
                f"节假日安排的年份必须是 {_MIN_YEAR}–{_MAX_YEAR} 之间的整数，收到 {self.year!r}", field="year"
            )
        holidays = _as_dates(self.holidays, "holidays", self.year)
        workdays = _as_dates(self.workdays, "workdays", self.year)
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "workdays", workdays)
        for field, days in (("holidays", holidays), ("workdays", workdays)):
            outside = [day for day in days if day.year != self.year]
            if outside:
                raise InvalidYearSchedule(
                    f"{self.year} 年节假日安排的 {field} 中有不属于该年的日期：{'、'.join(_iso(outside))}",
                    field=field,
                    dates=_iso(outside),
                )
        both = holidays & workdays
        if both:
            raise InvalidYearSchedule(
                f"{self.year} 年节假日安排中这些日期既是放假日又是调休上班日：{'、'.join(_iso(both))}",
                field="workdays",
                dates=_iso(both),
            )
        weekdays = [day for day in workdays if day.weekday() < 5]
        if weekdays:
            raise InvalidYearSchedule(
                f"{self.year} 年节假日安排的调休上班日必须是周六或周日，这些日期不是：{'、'.join(_iso(weekdays))}",
                field="workdays",
                dates=_iso(weekdays),
            )

    def is_working_day(self, day: date) -> bool:
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)


@cache
@functools.cache  # immutable per year; rebuilding it for every counted day would cost a scan of the package
def _package_schedule(year: int) -> YearSchedule | None:
    if year not in PACKAGE_YEARS:
        return None
    return YearSchedule(
        year,
        frozenset(day for day in _package.holidays if day.year == year),
        frozenset(day for day in _package.workdays if day.year == year),
    )


def _check_day(day: date, name: str = "day") -> None:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"{name} must be a date (the day in China time), not {type(day).__name__}")


def _check_days(days: int, field: str, minimum: int = 1, maximum: int = MAX_DAYS) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not minimum <= days <= maximum:
        raise InvalidInput(f"天数必须是 {minimum}–{maximum} 之间的整数，收到 {days!r}", field=field)


class WorkingCalendar:
    """Which days are working days: loaded schedules first, then the package, then Monday–Friday.

    Immutable: when an admin loads a year, build a new calendar with all loaded schedules. Loading two different
    schedules for the same year is an error; the same schedule twice is not.
    """

    def __init__(self, loaded: Iterable[YearSchedule] = ()) -> None:
        schedules: dict[int, YearSchedule] = {}
        for schedule in loaded:
            if not isinstance(schedule, YearSchedule):
                raise TypeError(f"expected YearSchedule, got {type(schedule).__name__}")
            if schedules.get(schedule.year, schedule) != schedule:
                raise InvalidYearSchedule(f"{schedule.year} 年的节假日安排被加载了两份且内容不同", field="year")
            schedules[schedule.year] = schedule
        self._loaded = MappingProxyType(schedules)

    @property
    def loaded_years(self) -> frozenset[int]:
        return frozenset(self._loaded)

    def schedule(self, year: int) -> YearSchedule | None:
        """The schedule in force for ``year``: the loaded one, else the package's, else None (unknown year)."""
        return self._loaded.get(year) or _package_schedule(year)

    def knows(self, year: int) -> bool:
        """Whether ``year``'s schedule is loaded or shipped by the package."""
        return year in self._loaded or year in PACKAGE_YEARS

    def is_working_day(self, day: date) -> bool:
        _check_day(day)
        schedule = self.schedule(day.year)
        if schedule is None:
            return day.weekday() < 5
        return schedule.is_working_day(day)

    def add_working_days(self, start: date, days: int) -> tuple[date, bool]:
        """The ``days``-th working day after ``start`` (``start`` itself is never counted), and whether any day
        counted over lies in a year whose schedule is unknown (then Monday–Friday were assumed: provisional)."""
        _check_day(start, "start")
        _check_days(days, "days")
        day, remaining, provisional = start, days, False
        while remaining:
            day += _ONE_DAY
            schedule = self.schedule(day.year)
            if schedule is None:
                provisional = True
                working = day.weekday() < 5
            else:
                working = schedule.is_working_day(day)
            if working:
                remaining -= 1
        return day, provisional


def _require_aware(moment: datetime, name: str) -> None:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def china_day(moment: datetime) -> date:
    """The date in China time of an aware moment."""
    _require_aware(moment, "moment")
    return moment.astimezone(CHINA_TZ).date()


def end_of_china_day(day: date) -> datetime:
    """23:59:59.999999 China time on ``day``, as an aware UTC datetime."""
    _check_day(day)
    return datetime.combine(day, END_OF_DAY, CHINA_TZ).astimezone(UTC)


@dataclass(frozen=True)
class Deadline:
    """``due_at`` is the end of the due day in China time, in UTC. ``days`` is the total counted (an extension
    adds to it). ``provisional`` means a year with an unknown schedule was counted through: recompute it from the
    original start once that year is loaded."""

    due_at: datetime
    provisional: bool
    days: int
    count: DayCount

    def __post_init__(self) -> None:
        _require_aware(self.due_at, "due_at")
        object.__setattr__(self, "due_at", self.due_at.astimezone(UTC))
        object.__setattr__(self, "count", DayCount(self.count))

    @property
    def due_day(self) -> date:
        """The due day in China time."""
        return self.due_at.astimezone(CHINA_TZ).date()


def _count_from(day: date, days: int, count: DayCount, calendar: WorkingCalendar) -> tuple[date, bool]:
    if count is DayCount.CALENDAR:
        return day + timedelta(days=days), False
    return calendar.add_working_days(day, days)


def compute_deadline(start: datetime, days: int, count: DayCount, calendar: WorkingCalendar) -> Deadline:
    """The deadline ``days`` calendar or working days after ``start`` (an aware datetime); see the module doc."""
    count = DayCount(count)
    _check_days(days, "days")
    due_day, provisional = _count_from(china_day(start), days, count, calendar)
    return Deadline(end_of_china_day(due_day), provisional, days, count)


def extend(
    deadline: Deadline, extra_days: int, calendar: WorkingCalendar, *, max_extra_days: int = MAX_EXTENSION_DAYS
) -> Deadline:
    """Extend by ``extra_days`` (1..``max_extra_days``), counted on from the old due day in the same way.

    The result is provisional if the old deadline was or if the extra days pass through an unknown year.
    """
    if not isinstance(extra_days, bool) and isinstance(extra_days, int) and extra_days > max_extra_days:
        raise ExtensionTooLong(
            f"延期天数不能超过 {max_extra_days} 天，收到 {extra_days} 天",
            field="extra_days",
            max_extra_days=max_extra_days,
            extra_days=extra_days,
        )
    _check_days(extra_days, "extra_days")
    due_day, provisional = _count_from(deadline.due_day, extra_days, deadline.count, calendar)
    return Deadline(
        end_of_china_day(due_day), deadline.provisional or provisional, deadline.days + extra_days, deadline.count
    )


def overdue(deadline: Deadline, now: datetime) -> bool:
    """True once ``now`` (aware) is past the end of the due day in China time."""
    _require_aware(now, "now")
    return now > deadline.due_at


_SCHEDULE_KEYS = ("year", "holidays", "workdays")


def _parse_dates(value: Any, field: str) -> list[date]:
    if not isinstance(value, list | tuple):
        raise InvalidYearSchedule(f"{field} 必须是日期字符串列表（YYYY-MM-DD）", field=field)
    days: list[date] = []
    seen: set[date] = set()
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if isinstance(item, date) and not isinstance(item, datetime):
            day = item
        elif isinstance(item, str) and _ISO_DATE.fullmatch(item):
            try:
                day = date.fromisoformat(item)
            except ValueError:
                raise InvalidYearSchedule(f"{where} 不是有效日期：{item!r}", field=where) from None
        else:
            raise InvalidYearSchedule(f"{where} 必须是 YYYY-MM-DD 格式的日期，收到 {item!r}", field=where)
        if day in seen:
            raise InvalidYearSchedule(f"{where} 重复：{day.isoformat()}", field=where)
        seen.add(day)
        days.append(day)
    return days


def parse_year_schedule(data: Mapping[str, Any]) -> YearSchedule:
    """A schedule from JSON such as ``{"year": 2027, "holidays": ["2027-01-01", ...], "workdays": [...]}``.

    All three keys are required (an empty list is fine); unknown keys are rejected so a typo such as ``"holiday"``
    cannot silently load a year without holidays. Errors are :class:`InvalidYearSchedule` naming the field, down
    to the list index (``holidays[3]``).
    """
    if not isinstance(data, Mapping):
        raise InvalidYearSchedule("节假日安排必须是 JSON 对象")
    unknown = sorted(str(key) for key in data if key not in _SCHEDULE_KEYS)
    if unknown:
        raise InvalidYearSchedule(f"节假日安排中有未知字段：{'、'.join(unknown)}", field=unknown[0])
    for key in _SCHEDULE_KEYS:
        if key not in data:
            raise InvalidYearSchedule(f"节假日安排缺少字段 {key}", field=key)
    year = data["year"]
    if isinstance(year, bool) or not isinstance(year, int):
        raise InvalidYearSchedule(f"year 必须是整数，收到 {year!r}", field="year")
    return YearSchedule(
        year,
        frozenset(_parse_dates(data["holidays"], "holidays")),
        frozenset(_parse_dates(data["workdays"], "workdays")),
    )
