"""DataSync's task `Schedule`: EventBridge-style `rate(...)` and `cron(...)` expressions (UTC),
checked as DataSync checks them and turned into a Temporal `ScheduleSpec`.

Unlike DataSync, intervals shorter than an hour are allowed, down to `rate(1 second)`. Cron's
`L`, `W` and `#` are not supported: a Temporal calendar spec has no way to say them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.client import (
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleRange,
    ScheduleSpec,
)

FIELD = "Schedule.ScheduleExpression"
MAX_LENGTH = 256  # botocore: ScheduleExpressionCron max 256
EXAMPLES = "rate(12 hours) or cron(0 12 ? * SUN,WED *)"
UNSUPPORTED = re.compile(r"[LW#]")

_RATE = re.compile(r"rate\(\s*([0-9]+)\s+([a-z]+)\s*\)")
_CRON = re.compile(r"cron\((.*)\)", re.DOTALL)
_NUMBER = re.compile(r"[0-9]+")
# Beyond DataSync, seconds too: a schedule that fires every few seconds (tests, demos).
_UNITS = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
# A protobuf Duration (Temporal's interval) holds at most 10,000 years.
_MAX_INTERVAL = timedelta(seconds=315_576_000_000)


@dataclass(frozen=True)
class _Field:
    """One of AWS's six cron fields, and what it becomes in a Temporal calendar spec."""

    name: str
    low: int
    high: int
    every: tuple[ScheduleRange, ...]  # Temporal's "every value" for the field
    names: tuple[str, ...] = ()  # names[i] stands for low + i
    question: bool = False  # accepts '?'
    steps: bool = True  # accepts '/' (AWS allows no increments in Day-of-week)
    shift: int = 0  # AWS value + shift = Temporal value


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_FIELDS = (
    _Field("Minutes", 0, 59, (ScheduleRange(0, 59),)),
    _Field("Hours", 0, 23, (ScheduleRange(0, 23),)),
    _Field("Day-of-month", 1, 31, (ScheduleRange(1, 31),), question=True),
    _Field("Month", 1, 12, (ScheduleRange(1, 12),), names=_MONTHS),
    # AWS counts 1=SUN..7=SAT; Temporal 0=Sunday..6.
    _Field(
        "Day-of-week",
        1,
        7,
        (ScheduleRange(0, 6),),
        names=("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"),
        question=True,
        steps=False,
        shift=-1,
    ),
    _Field("Year", 1970, 2199, ()),  # Temporal: no year range means every year
)


def _invalid(expression: str, reason: str) -> ValueError:
    return ValueError(
        f"{FIELD} {expression!r} is not valid: {reason}. A valid expression looks like "
        f"{EXAMPLES} (times are UTC)."
    )


def _value(field: _Field, text: str) -> int:
    if _NUMBER.fullmatch(text):
        value = int(text)
    elif text.upper() in field.names:
        value = field.low + field.names.index(text.upper())
    else:
        raise ValueError(f"{field.name} value {text!r} is not a number or a name it accepts")
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.name} value {text!r} is outside {field.low}-{field.high}")
    return value


def _ranges(field: _Field, text: str) -> list[ScheduleRange]:
    """One cron field as Temporal ranges; ValueError gives the reason without the expression."""
    letters = text.upper()
    for name in field.names:  # JUL and WED are names, not L or W
        letters = letters.replace(name, "")
    if UNSUPPORTED.search(letters):
        raise ValueError(
            f"{field.name} {text!r} uses L, W or #, which are not supported "
            "(a Temporal calendar cannot express them)"
        )
    if text in ("*", "?"):
        if text == "?" and not field.question:
            raise ValueError(
                f"'?' is allowed only in Day-of-month and Day-of-week, not {field.name}"
            )
        return list(field.every)
    ranges = []
    for atom in text.split(","):
        base, slash, step_text = atom.partition("/")
        if slash and not field.steps:
            raise ValueError(f"{field.name} does not accept increments ('/'), as in AWS")
        if slash and not (_NUMBER.fullmatch(step_text) and int(step_text) >= 1):
            raise ValueError(f"{field.name} increment {atom!r} needs a whole number >= 1 after '/'")
        step = int(step_text) if slash else 1
        if base == "*" and slash:
            start, end = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(field, first), _value(field, last)
            if start > end:
                raise ValueError(
                    f"{field.name} range {base!r} runs backwards; list two ranges instead"
                )
        elif base in ("*", "?"):
            raise ValueError(f"{field.name}: {base!r} must stand alone, not in a list")
        else:
            start = _value(field, base)
            end = field.high if slash else start  # a/b: from a to the end, every b
        ranges.append(ScheduleRange(start + field.shift, end + field.shift, step))
    return ranges


def _interval(expression: str) -> timedelta | None:
    """None if the expression is not a rate."""
    if not expression.startswith("rate("):
        return None
    match = _RATE.fullmatch(expression)
    if match is None:
        raise _invalid(expression, "write rate(Value Unit), Value a whole number >= 1")
    count, unit = int(match[1]), match[2]
    singular = unit.removesuffix("s")
    if singular not in _UNITS:
        raise _invalid(
            expression, f"the unit {unit!r} is not second(s), minute(s), hour(s) or day(s)"
        )
    if count < 1:
        raise _invalid(expression, "the value must be a whole number >= 1")
    # AWS: singular unit with 1, plural with more.
    if (count == 1) != (unit == singular):
        wanted = f"{count} {singular}" if count == 1 else f"{count} {singular}s"
        raise _invalid(expression, f"write rate({wanted}): singular unit with 1, plural above")
    if count * _UNITS[singular] > _MAX_INTERVAL:
        raise _invalid(expression, "the interval is longer than 10,000 years")
    return count * _UNITS[singular]


def _calendar(expression: str) -> ScheduleCalendarSpec:
    match = _CRON.fullmatch(expression)
    if match is None:
        raise _invalid(expression, "it is neither rate(Value Unit) nor cron(Fields)")
    texts = match[1].split()
    if len(texts) != len(_FIELDS):
        raise _invalid(
            expression,
            f"cron needs 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), "
            f"got {len(texts)}",
        )
    if (texts[2] == "?") == (texts[4] == "?"):
        raise _invalid(expression, "use '?' in exactly one of Day-of-month and Day-of-week")
    try:
        minute, hour, day_of_month, month, day_of_week, year = (
            _ranges(field, text) for field, text in zip(_FIELDS, texts, strict=True)
        )
    except ValueError as error:
        raise _invalid(expression, str(error)) from None
    return ScheduleCalendarSpec(
        second=[ScheduleRange(0)],
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month=month,
        day_of_week=day_of_week,
        year=year,
    )


def schedule_spec(expression: str) -> ScheduleSpec:
    """The Temporal spec that fires when DataSync would; ValueError if the expression is bad."""
    if len(expression) > MAX_LENGTH:
        raise _invalid(expression, f"it is longer than {MAX_LENGTH} characters")
    interval = _interval(expression)
    if interval is not None:
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)], time_zone_name="UTC")
    return ScheduleSpec(calendars=[_calendar(expression)], time_zone_name="UTC")


def check_schedule_expression(expression: str) -> None:
    """Raises ValueError naming the field, the value and a valid form, as DataSync would."""
    schedule_spec(expression)


# Consecutive executions failing with the same ErrorCode after which the service disables a
# schedule (DataSync does so without saying after how many).
DISABLE_AFTER_FAILURES = 3


class TaskSchedule(BaseModel):
    """DataSync's TaskSchedule; an empty ScheduleExpression in UpdateTask removes the schedule."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    ScheduleExpression: str
    Status: Literal["ENABLED", "DISABLED"] = "ENABLED"
    # Beyond DataSync: how many consecutive failures with one ErrorCode disable the schedule.
    DisableAfterFailures: int | None = Field(default=None, ge=1, le=1000)

    @field_validator("ScheduleExpression")
    @classmethod
    def _valid(cls, value: str) -> str:
        # Reject at CreateTask/UpdateTask rather than when Temporal first computes the schedule.
        if value:
            check_schedule_expression(value)
        return value

    @property
    def failure_limit(self) -> int:
        return self.DisableAfterFailures or DISABLE_AFTER_FAILURES


class ScheduleDetails(BaseModel):
    """When the schedule's Status last changed, and who disabled it (USER or SERVICE)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    StatusUpdateTime: datetime
    DisabledReason: str | None = None
    DisabledBy: Literal["USER", "SERVICE"] | None = None
