from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import InvalidInput
from app.deadlines.calendar import (
    CHINA_TZ,
    MAX_DAYS,
    PACKAGE_YEARS,
    DayCount,
    Deadline,
    ExtensionTooLong,
    InvalidYearSchedule,
    WorkingCalendar,
    YearSchedule,
    compute_deadline,
    extend,
    overdue,
    parse_year_schedule,
)

CALENDAR = WorkingCalendar()
WORKING, CAL = DayCount.WORKING, DayCount.CALENDAR

# FICTIONAL 2027 schedules, made up for these tests only: the State Council had not published 2027 when they were
# written. With holidays in the window of a 60-working-day deadline from 2026-11-20: New Year's Day (Fri 01-01)
# and a Spring Festival week Mon 02-08 .. Fri 02-12, with Sat 02-06 a make-up working day.
FICTIONAL_2027 = YearSchedule(
    2027,
    frozenset({date(2027, 1, 1)} | {date(2027, 2, d) for d in range(8, 13)}),
    frozenset({date(2027, 2, 6)}),
)
# FICTIONAL too: a 2027 whose only holiday is long after that window.
FICTIONAL_QUIET_2027 = YearSchedule(2027, frozenset({date(2027, 10, 1)}), frozenset())


def china(y: int, m: int, d: int, hh: int = 10, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=CHINA_TZ)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# --- what the package knows -----------------------------------------------------------------------------------


def test_the_package_ships_2004_to_2026_and_not_2027() -> None:
    # chinese-calendar 1.11.0. If a newer pin ships 2027, move the "unknown year" tests below to the next year.
    assert set(range(2004, 2027)) <= PACKAGE_YEARS
    assert 2027 not in PACKAGE_YEARS
    assert CALENDAR.knows(2026) and CALENDAR.knows(2004)
    assert not CALENDAR.knows(2027) and not CALENDAR.knows(2003)
    assert WorkingCalendar([FICTIONAL_2027]).knows(2027)


def test_every_day_the_package_knows_agrees_with_the_package() -> None:
    for day in days_between(date(2004, 1, 1), date(2026, 12, 31)):
        assert CALENDAR.is_working_day(day) == chinese_calendar.is_workday(day), day


def test_2025_national_day_and_mid_autumn() -> None:
    # Official 2025 schedule: 10-01..10-08 off; Sun 09-28 and Sat 10-11 are make-up working days.
    off = days_between(date(2025, 10, 1), date(2025, 10, 8))
    make_up = [date(2025, 9, 28), date(2025, 10, 11)]
    assert [d.weekday() for d in make_up] == [6, 5]
    for day in off:
        assert not CALENDAR.is_working_day(day) and chinese_calendar.is_holiday(day), day
    for day in make_up:
        assert CALENDAR.is_working_day(day) and chinese_calendar.is_workday(day), day
    assert not CALENDAR.is_working_day(date(2025, 9, 27))  # an ordinary Saturday
    assert CALENDAR.is_working_day(date(2025, 9, 30))
    assert CALENDAR.is_working_day(date(2025, 10, 9))
    assert not CALENDAR.is_working_day(date(2025, 10, 12))  # an ordinary Sunday


def test_2026_spring_festival() -> None:
    # Official 2026 schedule: 02-15 (Sun, 腊月二十八) .. 02-23 (Mon) off, nine days; Sat 02-14 and Sat 02-28 work.
    off = days_between(date(2026, 2, 15), date(2026, 2, 23))
    make_up = [date(2026, 2, 14), date(2026, 2, 28)]
    assert [d.weekday() for d in make_up] == [5, 5]
    for day in off:
        assert not CALENDAR.is_working_day(day) and chinese_calendar.is_holiday(day), day
    for day in make_up:
        assert CALENDAR.is_working_day(day) and chinese_calendar.is_workday(day), day
    assert CALENDAR.is_working_day(date(2026, 2, 13))
    assert CALENDAR.is_working_day(date(2026, 2, 24))
    assert chinese_calendar.get_holiday_detail(date(2026, 2, 17)) == (True, "Spring Festival")


def test_unknown_years_count_monday_to_friday() -> None:
    assert CALENDAR.is_working_day(date(2027, 1, 1))  # a Friday: New Year's Day, but 2027 is unknown
    assert not CALENDAR.is_working_day(date(2027, 1, 2))
    assert not WorkingCalendar([FICTIONAL_2027]).is_working_day(date(2027, 1, 1))
    assert WorkingCalendar([FICTIONAL_2027]).is_working_day(date(2027, 2, 6))  # fictional make-up Saturday


def test_a_loaded_schedule_overrides_the_package() -> None:
    corrected_2026 = YearSchedule(2026, frozenset({date(2026, 10, 9)}), frozenset({date(2026, 10, 11)}))
    calendar = WorkingCalendar([corrected_2026])
    assert calendar.is_working_day(date(2026, 10, 1))  # the package says holiday; the loaded schedule does not
    assert not calendar.is_working_day(date(2026, 10, 9))
    assert calendar.is_working_day(date(2026, 10, 11))
    assert not calendar.is_working_day(date(2026, 10, 10))  # the package's make-up Saturday, not in the loaded one
    assert not calendar.is_working_day(date(2025, 10, 1))  # other years still come from the package


def test_two_different_schedules_for_one_year_are_refused() -> None:
    assert WorkingCalendar([FICTIONAL_2027, FICTIONAL_2027]).loaded_years == {2027}
    with pytest.raises(InvalidYearSchedule):
        WorkingCalendar([FICTIONAL_2027, FICTIONAL_QUIET_2027])


def test_days_are_dates_not_datetimes() -> None:
    with pytest.raises(TypeError):
        CALENDAR.is_working_day(datetime(2025, 10, 1, tzinfo=UTC))
    with pytest.raises(TypeError):
        CALENDAR.add_working_days(datetime(2025, 10, 1, tzinfo=UTC), 1)


# --- counting working days ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2025, 9, 30), 1, date(2025, 10, 9)),  # the whole National Day week is skipped
        (date(2025, 9, 30), 2, date(2025, 10, 10)),
        (date(2025, 9, 30), 3, date(2025, 10, 11)),  # make-up Saturday counts
        (date(2025, 9, 30), 4, date(2025, 10, 13)),
        (date(2025, 9, 26), 1, date(2025, 9, 28)),  # make-up Sunday counts, the Saturday before does not
        (date(2025, 9, 26), 2, date(2025, 9, 29)),
        (date(2026, 2, 13), 1, date(2026, 2, 14)),  # Spring Festival 2026: make-up Saturday first
        (date(2026, 2, 13), 2, date(2026, 2, 24)),
        (date(2026, 2, 13), 6, date(2026, 2, 28)),  # 02-24..27, then the second make-up Saturday
        (date(2026, 2, 13), 7, date(2026, 3, 2)),
        (date(2026, 2, 15), 1, date(2026, 2, 24)),  # starting on a holiday: that day is not counted anyway
        (date(2025, 6, 6), 1, date(2025, 6, 9)),  # an ordinary weekend
    ],
)
def test_working_days_across_holidays(start: date, days: int, expected: date) -> None:
    assert CALENDAR.add_working_days(start, days) == (expected, False)
    if chinese_calendar.is_workday(start):
        # The package's own count agrees. (Its find_workday counts the next working day as day 0 when started on
        # a day off, so from Sunday 2026-02-15 it answers 02-25 for one day; ours is 02-24, per the rule above.)
        assert chinese_calendar.find_workday(days, start) == expected


def test_sixty_working_days_from_november_2026_end_in_an_unknown_2027() -> None:
    # 2026-11-23..12-31 holds 29 working days (no holidays left in 2026); 31 more in 2027.
    # Unknown 2027, Monday–Friday: 01-01 (Fri), 20 in 01-04..01-29, 5 in 02-01..02-05, 5 in 02-08..02-12.
    start = china(2026, 11, 20, 9, 30)
    unknown = compute_deadline(start, 60, WORKING, CALENDAR)
    assert unknown.due_day == date(2027, 2, 12)
    assert unknown.provisional is True

    # Loaded 2027 with no holiday in the window: same day, now final.
    quiet = compute_deadline(start, 60, WORKING, WorkingCalendar([FICTIONAL_QUIET_2027]))
    assert quiet.due_day == date(2027, 2, 12)
    assert quiet.provisional is False

    # FICTIONAL 2027 with holidays: 01-01 off (31 left), 01-04..01-29 (11 left), 02-01..02-05 (6 left),
    # Sat 02-06 make-up (5 left), 02-08..02-12 off, 02-15..02-19 -> due Fri 02-19, a different day.
    loaded = compute_deadline(start, 60, WORKING, WorkingCalendar([FICTIONAL_2027]))
    assert loaded.due_day == date(2027, 2, 19)
    assert loaded.provisional is False
    assert loaded.due_at == datetime(2027, 2, 19, 15, 59, 59, 999999, tzinfo=UTC)


def test_a_working_day_count_that_stays_in_known_years_is_final() -> None:
    deadline = compute_deadline(china(2026, 9, 1), 60, WORKING, CALENDAR)
    assert deadline.provisional is False
    assert deadline.due_day.year == 2026
    # Starting on the last day of a known year and counting into an unknown one is provisional from day 1.
    assert CALENDAR.add_working_days(date(2026, 12, 31), 1) == (date(2027, 1, 1), True)
    # The start day is never counted, so starting in an unknown year and counting in a known one is final.
    assert CALENDAR.add_working_days(date(2003, 12, 31), 1) == (date(2004, 1, 2), False)


def test_working_deadline_across_national_day_2025() -> None:
    deadline = compute_deadline(china(2025, 9, 30, 16), 5, WORKING, CALENDAR)
    # 10-09, 10-10, 10-11 (make-up Sat), 10-13, 10-14
    assert deadline == Deadline(datetime(2025, 10, 14, 15, 59, 59, 999999, tzinfo=UTC), False, 5, WORKING)
    assert deadline.due_at.tzinfo is UTC


# --- calendar days and the start day --------------------------------------------------------------------------


def test_the_start_day_is_taken_in_china_time() -> None:
    # 2025-09-30 15:59:59 UTC is 23:59:59 on 09-30 in China; one second later it is 10-01 in China.
    assert compute_deadline(datetime(2025, 9, 30, 15, 59, 59, tzinfo=UTC), 1, CAL, CALENDAR).due_day == date(
        2025, 10, 1
    )
    assert compute_deadline(datetime(2025, 9, 30, 16, 0, 0, tzinfo=UTC), 1, CAL, CALENDAR).due_day == date(2025, 10, 2)
    pacific = timezone(timedelta(hours=-8))
    assert compute_deadline(datetime(2025, 9, 30, 8, tzinfo=pacific), 1, CAL, CALENDAR).due_day == date(2025, 10, 2)


def test_calendar_days_do_not_move_off_holidays() -> None:
    deadline = compute_deadline(china(2025, 9, 20), 11, CAL, CALENDAR)
    assert deadline.due_day == date(2025, 10, 1)  # National Day: kept, by design
    assert deadline == Deadline(datetime(2025, 10, 1, 15, 59, 59, 999999, tzinfo=UTC), False, 11, CAL)
    assert compute_deadline(china(2025, 6, 6), 1, CAL, CALENDAR).due_day == date(2025, 6, 7)  # a Saturday


def test_calendar_day_deadlines_are_never_provisional() -> None:
    deadline = compute_deadline(china(2026, 11, 20), 60, CAL, CALENDAR)
    assert deadline.due_day == date(2027, 1, 19)
    assert deadline.provisional is False
    assert compute_deadline(china(2030, 1, 1), 400, "calendar", CALENDAR).provisional is False  # type: ignore[arg-type]


@pytest.mark.parametrize("days", [0, -1, True, MAX_DAYS + 1, 1.5])
def test_bad_day_counts_are_refused(days: object) -> None:
    for count in DayCount:
        with pytest.raises(InvalidInput) as caught:
            compute_deadline(china(2025, 1, 1), days, count, CALENDAR)  # type: ignore[arg-type]
        assert caught.value.field == "days"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_deadline(datetime(2025, 1, 1, 10), 1, CAL, CALENDAR)
    deadline = compute_deadline(china(2025, 1, 1), 1, CAL, CALENDAR)
    with pytest.raises(ValueError, match="timezone-aware"):
        overdue(deadline, datetime(2025, 1, 3))
    with pytest.raises(ValueError, match="timezone-aware"):
        Deadline(datetime(2025, 1, 3), False, 1, CAL)


def test_a_stored_deadline_round_trips() -> None:
    # As read back from a database: an offset other than UTC and the count as a plain string.
    deadline = Deadline(datetime(2025, 10, 14, 23, 59, 59, 999999, tzinfo=CHINA_TZ), False, 5, "working")  # type: ignore[arg-type]
    assert deadline.due_at == datetime(2025, 10, 14, 15, 59, 59, 999999, tzinfo=UTC)
    assert deadline.due_at.tzinfo is UTC
    assert deadline.count is DayCount.WORKING
    assert deadline.due_day == date(2025, 10, 14)


# --- extension ------------------------------------------------------------------------------------------------


def test_verification_extension_counts_on_from_the_old_due_day() -> None:
    start = china(2025, 8, 1)
    original = compute_deadline(start, 60, WORKING, CALENDAR)
    extended = extend(original, 30, CALENDAR)
    assert extended == compute_deadline(start, 90, WORKING, CALENDAR)
    assert extended.days == 90 and extended.count is WORKING and not extended.provisional
    first_after, _ = CALENDAR.add_working_days(original.due_day, 1)
    assert extend(original, 1, CALENDAR).due_day == first_after

    calendar_days = compute_deadline(start, 60, CAL, CALENDAR)
    assert extend(calendar_days, 30, CALENDAR).due_day == calendar_days.due_day + timedelta(days=30)
    assert extend(calendar_days, 30, CALENDAR).days == 90


def test_extension_into_an_unknown_year_is_provisional_and_provisional_stays_provisional() -> None:
    final = compute_deadline(china(2026, 10, 20), 40, WORKING, CALENDAR)
    assert final.due_day.year == 2026 and not final.provisional
    assert extend(final, 30, CALENDAR).provisional
    assert not extend(final, 30, WorkingCalendar([FICTIONAL_2027])).provisional

    provisional = compute_deadline(china(2026, 11, 20), 60, WORKING, CALENDAR)
    assert extend(provisional, 1, CALENDAR).provisional
    # Calendar days: the extension itself depends on no schedule, but a provisional deadline stays provisional.
    assert extend(Deadline(provisional.due_at, True, 60, CAL), 1, CALENDAR).provisional


def test_extensions_are_bounded() -> None:
    deadline = compute_deadline(china(2025, 8, 1), 60, WORKING, CALENDAR)
    with pytest.raises(ExtensionTooLong) as caught:
        extend(deadline, 31, CALENDAR)
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert (error.code, error.status, error.field) == ("extension_too_long", 422, "extra_days")
    assert error.details == {"max_extra_days": 30, "extra_days": 31}
    assert extend(deadline, 45, CALENDAR, max_extra_days=45).days == 105
    with pytest.raises(ExtensionTooLong):
        extend(deadline, 16, CALENDAR, max_extra_days=15)
    for bad in (0, -3):
        with pytest.raises(InvalidInput) as too_short:
            extend(deadline, bad, CALENDAR)
        assert not isinstance(too_short.value, ExtensionTooLong)
        assert too_short.value.field == "extra_days"


# --- overdue --------------------------------------------------------------------------------------------------


def test_overdue_turns_at_midnight_china_time() -> None:
    deadline = compute_deadline(china(2025, 9, 20), 11, CAL, CALENDAR)  # due 2025-10-01
    assert not overdue(deadline, china(2025, 10, 1, 23, 59, 59))
    assert not overdue(deadline, china(2025, 10, 1, 23, 59, 59, 999999))
    assert overdue(deadline, china(2025, 10, 2, 0, 0, 0))
    # The same instants in UTC: 15:59:59 is still the due day in China, 16:00 is the next.
    assert not overdue(deadline, datetime(2025, 10, 1, 15, 59, 59, tzinfo=UTC))
    assert overdue(deadline, datetime(2025, 10, 1, 16, 0, 0, tzinfo=UTC))
    assert not overdue(deadline, china(2025, 9, 20))


# --- schedules ------------------------------------------------------------------------------------------------


def test_year_schedule_validation() -> None:
    with pytest.raises(InvalidYearSchedule) as caught:
        YearSchedule(2027, frozenset({date(2026, 12, 31)}), frozenset())
    assert (caught.value.code, caught.value.status, caught.value.field) == ("invalid_year_schedule", 422, "holidays")
    assert caught.value.details == {"dates": ["2026-12-31"]}
    assert "2026-12-31" in str(caught.value)

    with pytest.raises(InvalidYearSchedule) as caught:
        YearSchedule(2027, frozenset(), frozenset({date(2028, 1, 1)}))
    assert caught.value.field == "workdays"

    with pytest.raises(InvalidYearSchedule) as caught:  # 2027-02-06 is a Saturday, but cannot be both
        YearSchedule(2027, frozenset({date(2027, 2, 6)}), frozenset({date(2027, 2, 6)}))
    assert caught.value.field == "workdays" and "2027-02-06" in str(caught.value)

    with pytest.raises(InvalidYearSchedule) as caught:  # 2027-02-08 is a Monday: not a make-up day
        YearSchedule(2027, frozenset(), frozenset({date(2027, 2, 8)}))
    assert caught.value.field == "workdays" and caught.value.details == {"dates": ["2027-02-08"]}

    with pytest.raises(InvalidYearSchedule) as caught:
        YearSchedule(2027, frozenset({datetime(2027, 1, 1)}), frozenset())  # type: ignore[arg-type]
    assert caught.value.field == "holidays"

    for bad_year in (True, "2027", 27):
        with pytest.raises(InvalidYearSchedule) as caught:
            YearSchedule(bad_year, frozenset(), frozenset())  # type: ignore[arg-type]
        assert caught.value.field == "year"

    with pytest.raises(ValueError):  # also a ValueError, for validators that expect one
        YearSchedule(2027, frozenset(), frozenset({date(2027, 2, 8)}))


def test_year_schedule_accepts_any_iterable_and_stores_frozensets() -> None:
    schedule = YearSchedule(2027, [date(2027, 1, 1), date(2027, 1, 1)], {date(2027, 2, 6)})  # type: ignore[arg-type]
    assert schedule.holidays == frozenset({date(2027, 1, 1)})
    assert isinstance(schedule.workdays, frozenset)
    assert hash(schedule) == hash(YearSchedule(2027, frozenset({date(2027, 1, 1)}), frozenset({date(2027, 2, 6)})))


def test_parse_year_schedule() -> None:
    data = {
        "year": 2027,
        "holidays": ["2027-01-01", "2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11", "2027-02-12"],
        "workdays": ["2027-02-06"],
    }
    assert parse_year_schedule(data) == FICTIONAL_2027
    assert parse_year_schedule({"year": 2027, "holidays": [], "workdays": []}).holidays == frozenset()


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ([], None, "JSON 对象"),
        ({"holidays": [], "workdays": []}, "year", "缺少字段 year"),
        ({"year": 2027, "workdays": []}, "holidays", "缺少字段 holidays"),
        ({"year": 2027, "holidays": []}, "workdays", "缺少字段 workdays"),
        ({"year": 2027, "holiday": [], "holidays": [], "workdays": []}, "holiday", "未知字段"),
        ({"year": "2027", "holidays": [], "workdays": []}, "year", "整数"),
        ({"year": 2027.0, "holidays": [], "workdays": []}, "year", "整数"),
        ({"year": 2027, "holidays": "2027-01-01", "workdays": []}, "holidays", "列表"),
        ({"year": 2027, "holidays": ["2027-01-01", "2027/01/02"], "workdays": []}, "holidays[1]", "YYYY-MM-DD"),
        ({"year": 2027, "holidays": ["20270101"], "workdays": []}, "holidays[0]", "YYYY-MM-DD"),
        ({"year": 2027, "holidays": [20270101], "workdays": []}, "holidays[0]", "YYYY-MM-DD"),
        ({"year": 2027, "holidays": ["2027-02-30"], "workdays": []}, "holidays[0]", "不是有效日期"),
        ({"year": 2027, "holidays": [], "workdays": ["2027-02-06", "2027-02-06"]}, "workdays[1]", "重复"),
        ({"year": 2027, "holidays": ["2028-01-01"], "workdays": []}, "holidays", "不属于该年"),
        ({"year": 2027, "holidays": [], "workdays": ["2027-02-08"]}, "workdays", "周六或周日"),
    ],
)
def test_parse_year_schedule_names_the_bad_field(data: object, field: str | None, fragment: str) -> None:
    with pytest.raises(InvalidYearSchedule) as caught:
        parse_year_schedule(data)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert fragment in str(caught.value)
    assert caught.value.body()["error"]["code"] == "invalid_year_schedule"


# --- properties -----------------------------------------------------------------------------------------------


@given(
    start=st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)),
    n=st.integers(min_value=1, max_value=400),
    calendar=st.sampled_from([CALENDAR, WorkingCalendar([FICTIONAL_2027])]),
)
def test_adding_working_days_is_monotonic_and_lands_on_working_days(
    start: date, n: int, calendar: WorkingCalendar
) -> None:
    end, provisional = calendar.add_working_days(start, n)
    following, following_provisional = calendar.add_working_days(start, n + 1)
    assert start < end < following
    assert calendar.is_working_day(end) and calendar.is_working_day(following)
    # Exactly n working days in (start, end], so nothing was skipped or counted twice.
    assert sum(calendar.is_working_day(day) for day in days_between(start + timedelta(days=1), end)) == n
    # Provisional exactly when a day counted over lies in an unknown year; counting further never undoes it.
    assert provisional == any(
        not calendar.knows(year) for year in range((start + timedelta(days=1)).year, end.year + 1)
    )
    assert following_provisional >= provisional
