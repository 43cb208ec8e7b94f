"""Schedules (interval or cron) and retention spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from drkit.plan.models import Retention
from drkit.plan.schedule import CronSchedule, IntervalSchedule, Schedule

SCHEDULE: TypeAdapter[IntervalSchedule | CronSchedule] = TypeAdapter(Schedule)
HOUR = 3600.0


@pytest.mark.parametrize(
    ("text", "kind", "gap_hours"),
    [
        ("1h", IntervalSchedule, 1),
        ("1h30m", IntervalSchedule, 1.5),
        (90, IntervalSchedule, 90 / 3600),
        ({"every": "2h"}, IntervalSchedule, 2),
        ("0 * * * *", CronSchedule, 1),
        ("*/15 * * * *", CronSchedule, 0.25),
        ("0 3 * * *", CronSchedule, 24),
        ("0 3 * * 1-5", CronSchedule, 72),  # Friday 03:00 to Monday 03:00
        ("0 0,12 * * *", CronSchedule, 12),
        ("0 0 1 */3 *", CronSchedule, 92 * 24),  # quarterly: the longest quarter
        ("0 0 29 2 *", CronSchedule, None),  # checked below
        ("@daily", CronSchedule, 24),
        ("30 2 * jan,jul sun", CronSchedule, None),
        ({"cron": "0 * * * *"}, CronSchedule, 1),
    ],
)
def test_schedules_parse_with_their_longest_gap(
    text: object, kind: type, gap_hours: float | None
) -> None:
    schedule = SCHEDULE.validate_python(text)
    assert isinstance(schedule, kind)
    if text == "0 0 29 2 *":
        # leap days: 2024-02-29 to 2028-02-29 is 1461 days
        assert schedule.max_gap() == 1461 * 24 * HOUR
    elif gap_hours is not None:
        assert schedule.max_gap() == pytest.approx(gap_hours * HOUR)
    assert SCHEDULE.validate_python(SCHEDULE.dump_python(schedule, mode="json")) == schedule


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("5 mins", "invalid duration '5 mins'"),
        ("0s", "longer than zero"),
        ("* * *", "must have 5 fields"),
        ("61 * * * *", "outside 0-59"),
        ("0 24 * * *", "outside 0-23"),
        ("0 0 0 * *", "outside 1-31"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 30 2 *", "never fires"),
        ("x y z w v", "is not a number"),
        ([1], "valid dictionary"),
    ],
)
def test_bad_schedules_are_rejected(text: object, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        SCHEDULE.validate_python(text)
    assert words in str(info.value)


def test_next_after() -> None:
    cron = SCHEDULE.validate_python("30 2 * * *")
    assert cron.next_after(datetime(2026, 1, 1, 3, 0, tzinfo=UTC)) == datetime(
        2026, 1, 2, 2, 30, tzinfo=UTC
    )
    assert cron.next_after(datetime(2026, 1, 1, 2, 0)) == datetime(2026, 1, 1, 2, 30, tzinfo=UTC)
    weekdays = SCHEDULE.validate_python("0 9 * * mon-fri")
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert weekdays.next_after(saturday) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    interval = SCHEDULE.validate_python("6h")
    assert interval.next_after(saturday) == datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


def test_day_of_month_or_day_of_week() -> None:
    # cron's rule: when both are restricted, either matches (the 1st, and every Monday)
    cron = SCHEDULE.validate_python("0 0 1 * mon")
    assert cron.max_gap() <= 7 * 24 * HOUR


def test_a_day_field_starting_with_a_star_means_and() -> None:
    # Debian cron (cronsim): "*/2" restricts the day of month but starts with "*", so both
    # day fields must match: odd days of the month that are Mondays
    cron = SCHEDULE.validate_python("0 0 */2 * mon")
    monday_the_2nd = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # even day: not a match
    assert cron.next_after(monday_the_2nd - timedelta(minutes=1)) == datetime(
        2026, 11, 9, 0, 0, tzinfo=UTC
    )
    assert cron.max_gap() > 7 * 24 * HOUR


def test_retention_span() -> None:
    assert Retention(keep_daily=30).span() == 30 * 24 * HOUR
    assert Retention(keep_within=90 * 24 * HOUR, keep_daily=7).span() == 90 * 24 * HOUR
    assert Retention(keep_last=48).span(1800.0) == 24 * HOUR
    assert Retention(keep_last=48).span() == 0.0
    assert Retention(keep_monthly=12).span() == 360 * 24 * HOUR
    with pytest.raises(ValidationError, match="at least one keep_"):
        Retention()
    with pytest.raises(ValidationError):
        Retention(keep_daily=-1)
