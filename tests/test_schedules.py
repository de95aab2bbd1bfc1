"""Task schedules (rate/cron to a Temporal ScheduleSpec) and bandwidth timetables: pure code, no
Temporal server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError
from temporalio.client import ScheduleCalendarSpec, ScheduleIntervalSpec, ScheduleRange

from models.schedules import TaskSchedule, check_schedule_expression, schedule_spec
from models.timetable import BandwidthTimetable

R = ScheduleRange
EVERY = {
    "minute": [R(0, 59)],
    "hour": [R(0, 23)],
    "day_of_month": [R(1, 31)],
    "month": [R(1, 12)],
    "day_of_week": [R(0, 6)],
    "year": [],
}


def calendar(expression: str) -> ScheduleCalendarSpec:
    spec = schedule_spec(expression)
    assert spec.time_zone_name == "UTC"
    assert spec.intervals == []
    assert len(spec.calendars) == 1
    assert spec.calendars[0].second == [R(0)]
    return spec.calendars[0]


def rejected(expression: str) -> str:
    with pytest.raises(ValueError) as caught:
        check_schedule_expression(expression)
    message = str(caught.value)
    assert message.startswith(f"Schedule.ScheduleExpression {expression!r} is not valid: ")
    assert "rate(12 hours)" in message
    assert "cron(0 12 ? * SUN,WED *)" in message
    return message


# --- rate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "every"),
    [
        ("rate(5 seconds)", timedelta(seconds=5)),
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(12 hours)", timedelta(hours=12)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(30 days)", timedelta(days=30)),
    ],
)
def test_rate_becomes_an_interval(expression, every):
    spec = schedule_spec(expression)
    assert spec.intervals == [ScheduleIntervalSpec(every=every)]
    assert spec.calendars == []
    assert spec.time_zone_name == "UTC"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("rate(1 minutes)", "write rate(1 minute): singular unit with 1"),
        ("rate(1 days)", "write rate(1 day)"),
        ("rate(2 hour)", "write rate(2 hours)"),
        ("rate(0 minutes)", "whole number >= 1"),
        ("rate(3 weeks)", "the unit 'weeks' is not second(s), minute(s), hour(s) or day(s)"),
        ("rate(-1 hours)", "write rate(Value Unit)"),
        ("rate(1.5 hours)", "write rate(Value Unit)"),
        ("rate(five minutes)", "write rate(Value Unit)"),
        ("rate(3652501 days)", "longer than 10,000 years"),
        ("every(5 minutes)", "neither rate(Value Unit) nor cron(Fields)"),
        ("", "neither rate(Value Unit) nor cron(Fields)"),
    ],
)
def test_bad_rate_is_rejected(expression, reason):
    assert reason in rejected(expression)


# --- cron ---------------------------------------------------------------------------------------


def test_cron_documented_example():
    assert calendar("cron(0 12 ? * SUN,WED *)") == ScheduleCalendarSpec(
        second=[R(0)],
        minute=[R(0)],
        hour=[R(12)],
        day_of_month=[R(1, 31)],
        month=[R(1, 12)],
        day_of_week=[R(0), R(3)],
        year=[],
    )


def test_star_and_question_mark_mean_every_value():
    spec = calendar("cron(* * * * ? *)")
    assert {name: list(getattr(spec, name)) for name in EVERY} == EVERY
    spec = calendar("cron(* * ? * * *)")
    assert {name: list(getattr(spec, name)) for name in EVERY} == EVERY


def test_cron_lists_ranges_and_increments():
    spec = calendar("cron(*/15 8-18/2 1,15 JAN-MAR,jul ? 2025-2030)")
    assert spec.minute == [R(0, 59, 15)]
    assert spec.hour == [R(8, 18, 2)]
    assert spec.day_of_month == [R(1), R(15)]
    assert spec.month == [R(1, 3), R(7)]
    assert spec.day_of_week == [R(0, 6)]
    assert spec.year == [R(2025, 2030)]


def test_cron_start_slash_step_runs_to_the_end_of_the_field():
    spec = calendar("cron(5/10 1/6 */2 3/3 ? 2030/5)")
    assert spec.minute == [R(5, 59, 10)]
    assert spec.hour == [R(1, 23, 6)]
    assert spec.day_of_month == [R(1, 31, 2)]
    assert spec.month == [R(3, 12, 3)]
    assert spec.year == [R(2030, 2199, 5)]
    assert calendar("cron(0 0 1 1 ? */4)").year == [R(1970, 2199, 4)]


@pytest.mark.parametrize(
    ("aws", "temporal"),
    [
        *[("1", 0), ("2", 1), ("3", 2), ("4", 3), ("5", 4), ("6", 5), ("7", 6)],
        *[("SUN", 0), ("MON", 1), ("TUE", 2), ("WED", 3), ("THU", 4), ("FRI", 5), ("SAT", 6)],
    ],
)
def test_day_of_week_maps_aws_1_to_7_sunday_first_onto_temporal_0_to_6(aws, temporal):
    assert calendar(f"cron(0 0 ? * {aws} *)").day_of_week == [R(temporal)]


def test_day_of_week_ranges_and_lists_are_shifted_too():
    assert calendar("cron(0 9 ? * MON-FRI *)").day_of_week == [R(1, 5)]
    assert calendar("cron(0 9 ? * 2-6 *)").day_of_week == [R(1, 5)]
    assert calendar("cron(0 9 ? * 1,7 *)").day_of_week == [R(0), R(6)]
    assert calendar("cron(0 9 ? * sun,Sat *)").day_of_week == [R(0), R(6)]


def test_day_of_month_with_question_mark_in_day_of_week():
    spec = calendar("cron(30 2 10 * ? *)")
    assert (spec.minute, spec.hour, spec.day_of_month) == ([R(30)], [R(2)], [R(10)])
    assert spec.day_of_week == [R(0, 6)]


def test_month_and_day_names_containing_l_and_w_are_not_mistaken_for_them():
    spec = calendar("cron(0 0 ? JUL WED *)")
    assert (spec.month, spec.day_of_week) == ([R(7)], [R(3)])


def test_fields_may_be_separated_by_several_spaces():
    assert calendar("cron(0  12 ? *  SUN,WED *)") == calendar("cron(0 12 ? * SUN,WED *)")


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 0 L * ? *)",
        "cron(0 0 15W * ? *)",
        "cron(0 0 LW * ? *)",
        "cron(0 0 ? * 6L *)",
        "cron(0 0 ? * L *)",
        "cron(0 0 ? * 3#2 *)",
        "cron(0 0 ? * MON#1 *)",
    ],
)
def test_l_w_and_hash_are_rejected_as_unsupported(expression):
    assert "uses L, W or #, which are not supported" in rejected(expression)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 12 * * * *)", "use '?' in exactly one of Day-of-month and Day-of-week"),
        ("cron(0 12 ? * ? *)", "use '?' in exactly one of Day-of-month and Day-of-week"),
        ("cron(0 12 1 * MON *)", "use '?' in exactly one of Day-of-month and Day-of-week"),
        ("cron(? 12 * * ? *)", "'?' is allowed only in Day-of-month and Day-of-week, not Minutes"),
        ("cron(0 12 * ? ? *)", "not Month"),
        ("cron(0 12 * * ? ?)", "not Year"),
        ("cron(0 12 1,? * ? *)", "Day-of-month: '?' must stand alone"),
        ("cron(*,5 12 * * ? *)", "Minutes: '*' must stand alone"),
        ("cron(0 12 * * ?)", "cron needs 6 fields"),
        ("cron(0 0 12 * * ? *)", "got 7"),
        ("cron(60 0 * * ? *)", "Minutes value '60' is outside 0-59"),
        ("cron(0 24 * * ? *)", "Hours value '24' is outside 0-23"),
        ("cron(0 0 0 * ? *)", "Day-of-month value '0' is outside 1-31"),
        ("cron(0 0 32 * ? *)", "Day-of-month value '32' is outside 1-31"),
        ("cron(0 0 1 13 ? *)", "Month value '13' is outside 1-12"),
        ("cron(0 0 ? * 0 *)", "Day-of-week value '0' is outside 1-7"),
        ("cron(0 0 ? * 8 *)", "Day-of-week value '8' is outside 1-7"),
        ("cron(0 0 * * ? 1969)", "Year value '1969' is outside 1970-2199"),
        ("cron(0 0 * * ? 2200)", "Year value '2200' is outside 1970-2199"),
        ("cron(0 0 * FOO ? *)", "Month value 'FOO' is not a number or a name it accepts"),
        ("cron(0 MON * * ? *)", "Hours value 'MON' is not a number"),
        ("cron(0 0 ? * MONDAY *)", "Day-of-week value 'MONDAY' is not a number"),
        ("cron(0 0 ? JAN-DEX * *)", "Month value 'DEX'"),
        ("cron(30-10 0 * * ? *)", "Minutes range '30-10' runs backwards"),
        ("cron(0 0 ? * SAT-SUN *)", "Day-of-week range 'SAT-SUN' runs backwards"),
        ("cron(0 0 ? * */2 *)", "Day-of-week does not accept increments"),
        ("cron(0 0 ? * 1/2 *)", "Day-of-week does not accept increments"),
        ("cron(*/0 0 * * ? *)", "needs a whole number >= 1 after '/'"),
        ("cron(*/x 0 * * ? *)", "needs a whole number >= 1 after '/'"),
        ("cron(0 0 * * ? *", "neither rate(Value Unit) nor cron(Fields)"),
        ("CRON(0 0 * * ? *)", "neither rate(Value Unit) nor cron(Fields)"),
        ("cron(-5 0 * * ? *)", "Minutes value '' is not a number"),
    ],
)
def test_bad_cron_is_rejected(expression, reason):
    assert reason in rejected(expression)


def test_longer_than_256_characters_is_rejected():
    expression = "cron(" + ",".join(["0"] * 130) + " 0 * * ? *)"
    assert len(expression) > 256
    assert "longer than 256 characters" in rejected(expression)
    longest = "cron(" + "0" * (256 - len("cron( 0 * * ? *)")) + " 0 * * ? *)"
    assert len(longest) == 256
    assert calendar(longest).minute == [R(0)]


# --- TaskSchedule -------------------------------------------------------------------------------


def test_task_schedule_defaults_to_enabled_and_round_trips():
    schedule = TaskSchedule(ScheduleExpression="rate(1 hour)")
    assert schedule.Status == "ENABLED"
    assert schedule.model_dump(exclude_none=True) == {
        "ScheduleExpression": "rate(1 hour)",
        "Status": "ENABLED",
    }
    off = TaskSchedule.model_validate(
        {"ScheduleExpression": "cron(0 12 ? * SUN,WED *)", "Status": "DISABLED"}
    )
    assert TaskSchedule.model_validate_json(off.model_dump_json()) == off
    assert off.Status == "DISABLED"


def test_task_schedule_rejects_a_bad_expression_with_the_checker_message():
    with pytest.raises(ValidationError) as caught:
        TaskSchedule(ScheduleExpression="cron(0 0 L * ? *)")
    assert "Schedule.ScheduleExpression 'cron(0 0 L * ? *)' is not valid" in str(caught.value)
    assert "L, W or #" in str(caught.value)


def test_task_schedule_rejects_unknown_status_and_fields_and_is_frozen():
    with pytest.raises(ValidationError, match="Status"):
        TaskSchedule(ScheduleExpression="rate(1 hour)", Status="PAUSED")
    with pytest.raises(ValidationError, match="Extra"):
        TaskSchedule(ScheduleExpression="rate(1 hour)", Timezone="UTC")
    schedule = TaskSchedule(ScheduleExpression="rate(1 hour)")
    with pytest.raises(ValidationError, match="frozen"):
        schedule.Status = "DISABLED"


# --- bandwidth timetable ------------------------------------------------------------------------

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday, 00:00 UTC


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """Day 0 is Monday 2024-01-01; 7 is the Monday after."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute, seconds=second)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("off", -1),
        ("OFF", -1),
        ("100B", 100),
        ("100b", 100),
        ("512K", 512 * 1024),
        ("512k", 512 * 1024),
        ("10M", 10 * 1024**2),
        ("2G", 2 * 1024**3),
        ("512", 512 * 1024),  # bare number: KiB/s, as in rclone
        ("1.5M", 1536 * 1024),
        ("0.5K", 512),
    ],
)
def test_single_rate_holds_all_the_time(rate, expected):
    table = BandwidthTimetable.parse(rate)
    for moment in (at(0, 0), at(2, 13, 7), at(6, 23, 59, 59)):
        assert table.rate_at(moment) == expected
    assert table.next_change(at(2, 13)) == at(7, 0)  # its only boundary: Monday 00:00
    assert table.next_change(at(0, 0)) == at(7, 0)


def test_daily_entries_apply_every_day_and_carry_over_midnight():
    table = BandwidthTimetable.parse("08:00,512K 12:00,10M 18:00,off")
    assert table.rate_at(at(3, 7, 59, 59)) == -1  # before 08:00: yesterday's 18:00 entry
    assert table.rate_at(at(3, 8)) == 512 * 1024
    assert table.rate_at(at(3, 11, 59)) == 512 * 1024
    assert table.rate_at(at(3, 12)) == 10 * 1024**2
    assert table.rate_at(at(3, 18)) == -1
    assert table.rate_at(at(0, 0)) == -1  # Monday 00:00: Sunday's 18:00 entry, over the week
    assert table.next_change(at(3, 7, 59, 59)) == at(3, 8)
    assert table.next_change(at(3, 8)) == at(3, 12)  # strictly after
    assert table.next_change(at(3, 23)) == at(4, 8)  # across midnight
    assert table.next_change(at(6, 23)) == at(7, 8)  # across the end of the week


def test_weekday_entries_wrap_over_the_week():
    # rclone's documentation example.
    table = BandwidthTimetable.parse("Mon-00:00,512 Fri-23:59,10M Sat-10:00,1M Sun-20:00,off")
    assert table.rate_at(at(0, 0)) == 512 * 1024
    assert table.rate_at(at(4, 23, 58)) == 512 * 1024
    assert table.rate_at(at(4, 23, 59)) == 10 * 1024**2
    assert table.rate_at(at(5, 9)) == 10 * 1024**2
    assert table.rate_at(at(5, 10)) == 1024**2
    assert table.rate_at(at(6, 21)) == -1
    assert table.next_change(at(0, 0)) == at(4, 23, 59)
    assert table.next_change(at(6, 21)) == at(7, 0)
    assert table.next_change(at(6, 19, 59, 59)) == at(6, 20)


def test_before_the_first_weekday_entry_the_last_one_of_the_week_applies():
    table = BandwidthTimetable.parse("Wed-12:00,1M Fri-12:00,2M")
    assert table.rate_at(at(0, 9)) == 2 * 1024**2  # Monday: last week's Friday entry
    assert table.rate_at(at(2, 11, 59)) == 2 * 1024**2
    assert table.rate_at(at(2, 12)) == 1024**2
    assert table.next_change(at(0, 9)) == at(2, 12)
    assert table.next_change(at(5, 0)) == at(9, 12)  # Saturday: next week's Wednesday


def test_a_weekday_entry_overrides_a_daily_one_at_the_same_time():
    table = BandwidthTimetable.parse("08:00,1M 20:00,off Sat-08:00,off monday-20:00,2M")
    assert table.rate_at(at(4, 9)) == 1024**2  # Friday
    assert table.rate_at(at(5, 9)) == -1  # Saturday
    assert table.rate_at(at(6, 9)) == 1024**2  # Sunday
    assert table.rate_at(at(0, 21)) == 2 * 1024**2  # Monday evening
    assert table.rate_at(at(1, 21)) == -1


def test_moments_in_other_time_zones_and_naive_moments_are_read_as_utc():
    table = BandwidthTimetable.parse("08:00,1M 18:00,off")
    paris = timezone(timedelta(hours=1))
    assert table.rate_at(datetime(2024, 1, 3, 8, 30, tzinfo=paris)) == -1  # 07:30 UTC
    assert table.rate_at(datetime(2024, 1, 3, 9, 30, tzinfo=paris)) == 1024**2
    assert table.rate_at(datetime(2024, 1, 3, 8, 30)) == 1024**2
    change = table.next_change(datetime(2024, 1, 3, 8, 30, tzinfo=paris))
    assert change == at(2, 8)
    assert change.tzinfo is UTC


def test_timetable_round_trips_as_a_pydantic_field():
    class Holder(BaseModel):
        Limit: BandwidthTimetable

    holder = Holder(Limit=BandwidthTimetable.parse("Mon-08:00,1M 18:00,off"))
    dumped = holder.model_dump_json()
    assert dumped == '{"Limit":{"Timetable":"Mon-08:00,1M 18:00,off"}}'
    again = Holder.model_validate_json(dumped)
    assert again == holder
    assert again.Limit.rate_at(at(0, 9)) == 1024**2
    assert again.Limit.rate_at(at(0, 19)) == -1
    with pytest.raises(ValidationError, match="BandwidthTimetable entry '25:00,1M'"):
        Holder.model_validate({"Limit": {"Timetable": "25:00,1M"}})


@pytest.mark.parametrize(
    ("text", "entry", "reason"),
    [
        ("", "", "the timetable is empty"),
        ("   ", "   ", "the timetable is empty"),
        ("24:00,1M", "24:00,1M", "between 00:00 and 23:59"),
        ("08:60,1M", "08:60,1M", "between 00:00 and 23:59"),
        ("8:00,1M", "8:00,1M", "an entry is HH:MM,RATE or Day-HH:MM,RATE"),
        ("08:00", "08:00", "the time has no rate: write HH:MM,RATE"),
        ("Mon-08:00", "Mon-08:00", "the time has no rate"),
        ("08:00 12:00,1M", "08:00", "an entry is HH:MM,RATE or Day-HH:MM,RATE"),
        ("1M:512K", "1M:512K", "UP:DOWN pairs are not supported"),
        ("08:00,", "08:00,", "the rate '' is not off"),
        ("Mon08:00,1M", "Mon08:00,1M", "an entry is HH:MM,RATE"),
        ("Funday-08:00,1M", "Funday-08:00,1M", "the day 'Funday' is not one of Mon Tue"),
        ("08:00,1X", "08:00,1X", "the rate '1X' is not off or a number with suffix B, K, M or G"),
        ("08:00,1T", "08:00,1T", "suffix B, K, M or G"),
        ("08:00,-1", "08:00,-1", "the rate '-1' is not off"),
        ("08:00,10M:1M", "08:00,10M:1M", "UP:DOWN pairs are not supported"),
        ("08:00,0", "08:00,0", "at least 1 byte per second; write off for no limit"),
        ("08:00,0.1B", "08:00,0.1B", "at least 1 byte per second"),
        ("0", "0", "at least 1 byte per second"),
        ("9000000000G", "9000000000G", "larger than 8 EiB/s"),
        ("08:00,1M 08:00,2M", "08:00,2M", "another entry starts at the same time"),
        ("Tue-08:00,1M tuesday-08:00,2M", "tuesday-08:00,2M", "same time"),
        ("10M 08:00,1M", "10M", "an entry is HH:MM,RATE or Day-HH:MM,RATE"),
    ],
)
def test_bad_timetable_is_rejected(text, entry, reason):
    with pytest.raises(ValueError) as caught:
        BandwidthTimetable.parse(text)
    message = str(caught.value)
    assert message.startswith(f"BandwidthTimetable entry {entry!r} in {text!r} is not valid: ")
    assert reason in message
    assert '"Mon-08:00,512K 12:00,10M 18:00,off"' in message
    assert not isinstance(caught.value, ValidationError)  # parse: Ferry's message only
    with pytest.raises(ValidationError, match="BandwidthTimetable entry"):
        BandwidthTimetable(Timetable=text)
