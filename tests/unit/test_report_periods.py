"""Local days, hours and plan periods of the deployment's timezone, as UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.reports.export import Table, csv_chunks
from callcenter.reports.periods import (
    PlanPeriod,
    hour_key_start,
    local_hour_key,
    local_span,
    offset_segments,
    period_span,
)

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def test_given_a_moscow_day_then_its_span_starts_at_21_utc_the_day_before() -> None:
    span = local_span(date(2026, 11, 10), date(2026, 11, 10), MOSCOW)

    assert span.since == datetime(2026, 11, 9, 21, tzinfo=UTC)
    assert span.until == datetime(2026, 11, 10, 21, tzinfo=UTC)


def test_given_a_range_across_a_dst_change_then_there_are_two_offset_segments() -> None:
    span = local_span(date(2026, 10, 24), date(2026, 10, 26), BERLIN)

    segments = offset_segments(span.since, span.until, BERLIN)

    assert [s.offset_s for s in segments] == [7200, 3600]
    assert segments[1].since == datetime(2026, 10, 25, 1, tzinfo=UTC)


def test_given_the_fall_back_night_then_the_day_has_25_hours() -> None:
    span = local_span(date(2026, 10, 25), date(2026, 10, 25), BERLIN)

    assert span.until - span.since == timedelta(hours=25)


@pytest.mark.parametrize(
    ("instant", "tz", "local_start"),
    [
        (datetime(2026, 11, 9, 21, 20, tzinfo=UTC), MOSCOW, datetime(2026, 11, 10, 0, 0)),
        (datetime(2026, 11, 10, 3, 29, tzinfo=UTC), KOLKATA, datetime(2026, 11, 10, 8, 0)),
        (datetime(2026, 11, 10, 3, 31, tzinfo=UTC), KOLKATA, datetime(2026, 11, 10, 9, 0)),
    ],
)
def test_given_an_instant_then_its_hour_key_is_the_local_wall_clock_hour(
    instant: datetime, tz: ZoneInfo, local_start: datetime
) -> None:
    assert hour_key_start(local_hour_key(instant, tz)) == local_start


@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        (PlanPeriod.DAY, date(2026, 11, 11), date(2026, 11, 11)),
        (PlanPeriod.WEEK, date(2026, 11, 9), date(2026, 11, 15)),
        (PlanPeriod.MONTH, date(2026, 11, 1), date(2026, 11, 30)),
    ],
)
def test_given_a_wednesday_then_its_plan_periods_are_the_day_the_week_from_monday_and_the_month(
    period: PlanPeriod, first: date, last: date
) -> None:
    span = period_span(period, date(2026, 11, 11), MOSCOW)

    assert (span.first, span.last) == (first, last)


def test_given_a_table_then_the_csv_has_a_bom_and_neutralised_cells() -> None:
    table = Table(title="t", headers=["name", "n"], rows=[["=cmd|' /C calc'!A0", 3]])

    text = b"".join(csv_chunks(table)).decode("utf-8")

    assert text.startswith("\ufeffname,n\r\n")
    assert "\r\n'=cmd|' /C calc'!A0,3\r\n" in text
