"""Schedules: an interval (``1h``) or a 5-field cron expression (``0 * * * *``).

A plan writes a schedule as a plain string; it is validated into one of two tagged
models. Both answer the two questions the rest of drkit asks: the longest gap between
two runs (:meth:`max_gap`, which bounds the achievable RPO) and the next run after a
moment (:meth:`next_after`, for the scheduler).
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from drkit.types import Duration, format_duration


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("a duration must be a finite number of seconds")
    return value


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("must be longer than zero")
    return value


def _duration_input(value: Any) -> Any:
    # parse_duration expects text or a number; anything else is a type error, not a crash
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        kind = {type(None): "null", dict: "mapping"}.get(type(value), type(value).__name__)
        raise ValueError(f"expected a duration like 30s, 15m, 1h, 7d, not a {kind}")
    return value


_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w|y))+$"},
        {"type": "number", "minimum": 0},
    ],
    "description": "a duration: 30s, 15m, 1h, 1h30m, 7d, 2w, 1y (or seconds)",
}

#: A finite, non-negative duration in seconds (``drkit.types.Duration`` plus finiteness).
Dur = Annotated[
    Duration,
    AfterValidator(_finite),
    BeforeValidator(_duration_input),  # runs before parse_duration (outermost first)
    WithJsonSchema(_DURATION_SCHEMA),
]
#: A finite duration longer than zero.
PositiveDur = Annotated[
    Duration,
    AfterValidator(_finite),
    AfterValidator(_positive),
    BeforeValidator(_duration_input),
    WithJsonSchema(_DURATION_SCHEMA),
]

# --- cron ------------------------------------------------------------------------------
# Parsing and day matching are cronsim's (a maintained parser that follows Debian cron,
# including its rule for day-of-month with day-of-week); drkit adds the macros, the
# 5-field restriction, field-naming error messages and the longest gap.

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
#: cronsim names a bad field ("Bad minute"); these give its range and names for the message
_FIELDS: dict[str, tuple[str, int, int, dict[str, int]]] = {
    "Bad minute": ("minute", 0, 59, {}),
    "Bad hour": ("hour", 0, 23, {}),
    "Bad day-of-month": ("day of month", 1, 31, {}),
    "Bad month": ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    "Bad day-of-week": ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
}
_FIELD_INDEX = {"Bad minute": 0, "Bad hour": 1, "Bad day-of-month": 2, "Bad month": 3}
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# Fire times repeat at the latest after 28 years (the Gregorian weekday/leap cycle, between
# century exceptions); 8 years is enough to see every Feb 29 and weekday combination twice.
_HORIZON_DAYS = 8 * 366
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def _why(text: str, lo: int, hi: int, names: dict[str, int]) -> str | None:
    """Why cronsim rejected the field ``text`` (only called after it did), for the message."""
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return f"step {step!r} must be a positive number"
        bounds = [] if base == "*" else base.split("-", 1)
        for value in bounds:
            if value.lower() in names:
                continue
            if not value.isdigit():
                return f"{value!r} is not a number in {lo}-{hi}"
            if not lo <= int(value) <= hi:
                return f"{int(value)} is outside {lo}-{hi}"
        if len(bounds) == 2:
            a, b = (names.get(v.lower(), int(v) if v.isdigit() else 0) for v in bounds)
            if a > b:
                return f"range {base!r} runs backwards"
    return None


def _parse_cron(text: str) -> CronSim:
    """The expression ``text`` (or its macro) parsed by cronsim; ``ValueError`` naming the field."""
    expr = _MACROS.get(text.strip().lower(), text)
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(
            f"cron {text!r} must have 5 fields (minute hour day-of-month month "
            "day-of-week), e.g. '0 * * * *'"
        )
    try:
        return CronSim(expr, _EPOCH)
    except CronSimError as exc:
        field = _FIELDS.get(str(exc))
        if field is None:
            raise ValueError(f"cron {text!r}: {exc}") from None
        what, lo, hi, names = field
        index = _FIELD_INDEX.get(str(exc), 4)
        why = _why(parts[index], lo, hi, names)
        if why is None:  # every value is in range, but no month has such a day
            raise ValueError(f"cron {text!r} never fires") from None
        raise ValueError(f"cron {what}: {why}") from None


class CronSchedule(BaseModel):
    """Runs at the times matched by a standard 5-field cron expression (UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["cron"] = "cron"
    cron: str = Field(description="5 fields: minute hour day-of-month month day-of-week")

    @field_validator("cron")
    @classmethod
    def _parse(cls, value: str) -> str:
        _parse_cron(value)
        return value.strip()

    @model_validator(mode="after")
    def _fires(self) -> CronSchedule:
        if self._max_gap_minutes is None:
            raise ValueError(f"cron {self.cron!r} never fires")
        return self

    @cached_property
    def _cron(self) -> CronSim:
        return _parse_cron(self.cron)

    def _day_matches(self, day: date) -> bool:
        return day.month in self._cron.months and self._cron.match_day(day)

    @cached_property
    def _day_minutes(self) -> list[int]:
        return sorted(h * 60 + m for h in self._cron.hours for m in self._cron.minutes)

    @cached_property
    def _max_gap_minutes(self) -> int | None:
        # from the parsed fields, a day at a time: iterating fire times instead would take
        # seconds for */15 over the 8-year horizon (cronsim: ~40 µs per fire time)
        day_minutes = self._day_minutes
        gap = max(
            (b - a for a, b in itertools.pairwise(day_minutes)),
            default=0,
        )
        start = _EPOCH.date()
        previous: int | None = None
        for offset in range(_HORIZON_DAYS):
            if self._day_matches(start + timedelta(days=offset)):
                if previous is not None:
                    gap = max(gap, (offset - previous) * 1440 + day_minutes[0] - day_minutes[-1])
                previous = offset
        if previous is None:
            return None
        if gap == 0:  # fires once a day every day: the gap between days is a day
            gap = 1440
        return gap

    def max_gap(self) -> float:
        """The longest time between two runs, in seconds."""
        gap = self._max_gap_minutes
        assert gap is not None  # checked at validation
        return gap * 60.0

    def next_after(self, moment: datetime) -> datetime:
        """The first run strictly after ``moment`` (naive datetimes are taken as UTC)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        expr = _MACROS.get(self.cron.lower(), self.cron)
        return next(CronSim(expr, moment.astimezone(UTC)))

    def __str__(self) -> str:
        return self.cron


class IntervalSchedule(BaseModel):
    """Runs every ``every`` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["interval"] = "interval"
    every: PositiveDur

    def max_gap(self) -> float:
        """The longest time between two runs, in seconds."""
        return self.every

    def next_after(self, moment: datetime) -> datetime:
        """``moment`` plus the interval (the scheduler anchors it on the last run)."""
        return moment + timedelta(seconds=self.every)

    def __str__(self) -> str:
        return format_duration(self.every)


def _coerce_schedule(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("@") or "*" in text or len(text.split()) >= 3:
            return {"kind": "cron", "cron": text}
        return {"kind": "interval", "every": text}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"kind": "interval", "every": value}
    if isinstance(value, dict) and "kind" not in value:
        if "cron" in value:
            return {"kind": "cron", **value}
        if "every" in value:
            return {"kind": "interval", **value}
    return value


def _schedule_str(value: IntervalSchedule | CronSchedule) -> str:
    return str(value)


#: ``1h`` (an interval) or ``0 * * * *`` (cron); also ``{every: 1h}`` / ``{cron: "..."}``.
Schedule = Annotated[
    IntervalSchedule | CronSchedule,
    Field(discriminator="kind"),
    BeforeValidator(_coerce_schedule),
    PlainSerializer(_schedule_str, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "description": "an interval like 1h or 1d, or a 5-field cron expression "
            "like '0 * * * *' (UTC)",
        }
    ),
]
