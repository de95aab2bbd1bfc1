"""A bandwidth timetable in rclone's `--bwlimit` format (beyond DataSync, which has one fixed
`BytesPerSecond`): space-separated `HH:MM,RATE` or `Day-HH:MM,RATE` entries, or a single RATE
for all the time. Times are UTC.

A RATE is `off` (no limit) or bytes per second: a number with an optional suffix B, K, M or G
(binary: K=1024, any case, decimals allowed). A bare number means KiB/s, as in rclone, so a
timetable copied from an rclone command line means the same here. rclone reads 0 as "no limit";
Ferry rejects it (as it rejects BytesPerSecond=0) so that nobody mistakes it for a pause.

The entry whose time most recently passed is in force, going round the week: an entry without a
day stands for the same time on each of the seven days, and one with a day overrides it there.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator

from models.options import NO_BANDWIDTH_LIMIT

FIELD = "BandwidthTimetable"
EXAMPLE = (
    '"Mon-08:00,512K 12:00,10M 18:00,off" (entries HH:MM,RATE or Day-HH:MM,RATE; RATE off or '
    "bytes per second with suffix B, K, M or G, a bare number being KiB/s) or a single rate such "
    'as "10M"; times are UTC'
)
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")  # weekday()
DAY = 24 * 60  # minutes
WEEK = timedelta(weeks=1)

_ENTRY = re.compile(r"(?:([A-Za-z]+)-)?([0-9]{2}):([0-9]{2}),(.*)")
_TIME = re.compile(r"(?:[A-Za-z]+-)?[0-9]{1,2}:[0-9]{2}")
_RATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([BKMG]?)", re.IGNORECASE)
_MAX_RATE = (1 << 63) - 1  # DataSync's BytesPerSecond is a long
_UNITS = {"": 1 << 10, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

Entries = tuple[tuple[int, int], ...]  # (minute of the week from Monday 00:00, rate), sorted


def _invalid(text: str, entry: str, reason: str) -> ValueError:
    return ValueError(
        f"{FIELD} entry {entry!r} in {text!r} is not valid: {reason}. Write a timetable such as "
        f"{EXAMPLE}."
    )


def _rate(text: str, entry: str, rate: str) -> int:
    if rate.lower() == "off":
        return NO_BANDWIDTH_LIMIT
    match = _RATE.fullmatch(rate)
    if match is None:
        if ":" in rate:
            raise _invalid(
                text, entry, "one rate per entry (rclone's UP:DOWN pairs are not supported)"
            )
        raise _invalid(
            text, entry, f"the rate {rate!r} is not off or a number with suffix B, K, M or G"
        )
    value = int(Decimal(match[1]) * _UNITS[match[2].upper()])  # Decimal: no float overflow
    if value < 1:
        raise _invalid(
            text, entry, "a rate must be at least 1 byte per second; write off for no limit"
        )
    if value > _MAX_RATE:
        raise _invalid(text, entry, "the rate is larger than 8 EiB/s; write off for no limit")
    return value


def _parse(text: str) -> Entries:
    """The timetable's boundaries; ValueError names the field, the entry and the format."""
    tokens = text.split()
    if not tokens:
        raise _invalid(text, text, "the timetable is empty")
    if len(tokens) == 1 and "," not in tokens[0]:
        if _TIME.fullmatch(tokens[0]):
            raise _invalid(text, text, "the time has no rate: write HH:MM,RATE")
        # One boundary, Monday 00:00, so that it is in force all week.
        return ((0, _rate(text, tokens[0], tokens[0])),)
    general: dict[int, int] = {}  # entries without a day, repeated on each day
    specific: dict[int, int] = {}
    for token in tokens:
        match = _ENTRY.fullmatch(token)
        if match is None:
            raise _invalid(text, token, "an entry is HH:MM,RATE or Day-HH:MM,RATE")
        day, hour, minute, rate = match[1], int(match[2]), int(match[3]), match[4]
        if hour > 23 or minute > 59:
            raise _invalid(text, token, "the time must be between 00:00 and 23:59")
        days = range(7) if day is None else [_day(text, token, day)]
        table = general if day is None else specific
        at = [d * DAY + hour * 60 + minute for d in days]
        if at[0] in table:
            raise _invalid(text, token, "another entry starts at the same time")
        table.update(dict.fromkeys(at, _rate(text, token, rate)))
    return tuple(sorted((general | specific).items()))


def _day(text: str, entry: str, day: str) -> int:
    for index, name in enumerate(DAYS):
        if day.lower() in (name, name[:3]):  # rclone takes Mon or Monday, in any case
            return index
    raise _invalid(text, entry, f"the day {day!r} is not one of Mon Tue Wed Thu Fri Sat Sun")


def _within_week(moment: datetime) -> tuple[datetime, timedelta]:
    """Monday 00:00 UTC of the moment's week, and how far into it the moment is."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(days=moment.weekday())
    return start, moment - start


class BandwidthTimetable(BaseModel):
    """Kept as the text the user wrote, so that it round-trips; the entries are derived."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    Timetable: str
    _entries: Entries = PrivateAttr(default=())

    @field_validator("Timetable")
    @classmethod
    def _valid(cls, value: str) -> str:
        _parse(value)
        return value

    def model_post_init(self, context: Any) -> None:
        self._entries = _parse(self.Timetable)

    @classmethod
    def parse(cls, text: str) -> BandwidthTimetable:
        """Like the constructor, but raises a plain ValueError carrying only Ferry's message."""
        _parse(text)
        return cls(Timetable=text)

    def rate_at(self, moment: datetime) -> int:
        """Bytes per second in force at `moment` (naive means UTC); -1 means no limit."""
        _, offset = _within_week(moment)
        index = bisect_right([at for at, _ in self._entries], offset // timedelta(minutes=1)) - 1
        return self._entries[index][1]  # index -1: the week's last entry, still in force

    def next_change(self, moment: datetime) -> datetime:
        """The first entry boundary strictly after `moment`, in UTC: when to look again."""
        start, offset = _within_week(moment)
        for at, _ in self._entries:
            if timedelta(minutes=at) > offset:
                return start + timedelta(minutes=at)
        return start + WEEK + timedelta(minutes=self._entries[0][0])


def check_timetable(text: str) -> str:
    """A request field's validator: raises ValueError for a malformed timetable; an empty one
    (UpdateTask's way to remove it) passes."""
    if text:
        _parse(text)
    return text
