"""Local days, hours and plan periods of the deployment's timezone, as UTC instants.

Reports are asked for in local dates ("1 to 30 November in Moscow"); calls are stored in
UTC. Everything here is pure: it turns local calendar units into UTC ranges and UTC offsets,
so SQL can select by plain range predicates and bucket by a constant-offset expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PlanPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open UTC range [since, until) that covers whole local days `first`..`last`."""

    first: date
    last: date
    since: datetime
    until: datetime


@dataclass(frozen=True, slots=True)
class OffsetSegment:
    """From `since` (UTC) on, until the next segment, local time is UTC + `offset_s`."""

    since: datetime
    offset_s: int


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which local `day` begins."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_span(first: date, last: date, tz: ZoneInfo) -> Span:
    """The UTC range of local days `first` through `last` (both included)."""
    if last < first:
        raise ValueError("the range ends before it starts")
    return Span(first, last, local_midnight(first, tz), local_midnight(last + timedelta(1), tz))


def local_day_of(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def offset_segments(
    span_since: datetime, span_until: datetime, tz: ZoneInfo
) -> list[OffsetSegment]:
    """The constant-UTC-offset stretches of [since, until): one unless a DST change falls in it.

    Found by stepping through the range hour by hour and bisecting each change of offset to the
    second; a month has 744 hours, so this costs microseconds and needs no tz internals.
    """
    segments = [OffsetSegment(span_since, _offset_s(span_since, tz))]
    step = timedelta(hours=1)
    cursor = span_since
    while cursor < span_until:
        following = min(cursor + step, span_until)
        if _offset_s(following, tz) != segments[-1].offset_s and following < span_until:
            change = _bisect_change(cursor, following, tz)
            segments.append(OffsetSegment(change, _offset_s(change, tz)))
        cursor = following
    return segments


def _offset_s(instant: datetime, tz: ZoneInfo) -> int:
    offset = instant.astimezone(tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _bisect_change(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The first second in (before, after] with the offset of `after`."""
    target = _offset_s(after, tz)
    low, high = before, after
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if _offset_s(middle, tz) == target:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def local_hour_key(instant: datetime, tz: ZoneInfo) -> int:
    """Hours since 1970-01-01 00:00 on the local wall clock: the key SQL buckets by."""
    local_epoch_s = int((instant - EPOCH).total_seconds()) + _offset_s(instant, tz)
    return local_epoch_s // 3600


def hour_key_start(key: int) -> datetime:
    """The local wall-clock start (naive) of the hour bucket `key`."""
    return (EPOCH + timedelta(hours=key)).replace(tzinfo=None)


def period_start(period: PlanPeriod, today: date) -> date:
    """The first local day of the day, week (Monday) or month that holds `today`."""
    match period:
        case PlanPeriod.DAY:
            return today
        case PlanPeriod.WEEK:
            return today - timedelta(days=today.weekday())
        case PlanPeriod.MONTH:
            return today.replace(day=1)


def period_span(period: PlanPeriod, today: date, tz: ZoneInfo) -> Span:
    """The UTC range of the whole current day, week or month that holds local `today`."""
    first = period_start(period, today)
    match period:
        case PlanPeriod.DAY:
            last = first
        case PlanPeriod.WEEK:
            last = first + timedelta(days=6)
        case PlanPeriod.MONTH:
            following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
            last = following - timedelta(days=1)
    return local_span(first, last, tz)


def epoch_s(instant: datetime) -> int:
    """Whole seconds since 1970-01-01 UTC."""
    return int((instant - EPOCH).total_seconds() // 1)
