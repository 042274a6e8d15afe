"""Agent and queue reports over the hand-made day of `tests/report_fixture.py`.

Every expected figure below is worked out by hand from that module's description of the
day (the comments show the arithmetic); the reports must give exactly these numbers on
SQLite and PostgreSQL, and every number's drill-down must list exactly that many calls.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient
from sqlalchemy import text

from callcenter.calls.models import Call
from callcenter.calls.state import CallStatus
from callcenter.context import AppContext
from callcenter.events import Direction, EndReason
from callcenter.reports import repository, service
from callcenter.reports.periods import hour_key_start, local_hour_key
from callcenter.reports.schemas import Figure
from tests.factories import login_as
from tests.report_fixture import DAY, load_day

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def _scope(ctx: AppContext) -> service.ReportScope:
    async with ctx.sessionmaker() as session:
        return await service.scope_of(session, ctx.settings)


def _values(figures: dict[str, Figure]) -> dict[str, Any]:
    return {k: (round(f.value, 4) if f.value is not None else None) for k, f in figures.items()}


@BOTH
async def test_given_the_hand_made_day_when_the_queue_report_runs_then_every_figure_is_as_computed(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        await load_day(session)
    scope = await _scope(ctx)

    async with ctx.sessionmaker() as session:
        report = await service.queue_report(session, scope, DAY, DAY)

    rows = {row.key: _values(row.figures) for row in report.rows}
    assert rows["sales"] == {
        "offered": 7,  # S1..S7 (S7 ended 00:30 local, still this day)
        "answered": 4,  # S1 S2 S5 S7
        "abandoned": 2,  # S3 S4
        "timed_out": 1,  # S6
        "service_level": 40.0,  # short: S3 (3 s), S5 (wrong number) → 5 counted; ≤20 s: S1 S7
        "abandon_rate": 20.0,  # S4 / 5 counted
        "asa": 13.75,  # (10 + 25 + 5 + 15) / 4
        "average_talk": 262.5,  # (300 + 120 + 30 + 600) / 4
        "longest_wait": 60.0,  # S6
    }
    assert rows["support"] == {
        "offered": 4,  # P1..P4 (P5 ended the day before)
        "answered": 2,  # P1 P2
        "abandoned": 2,  # P3 P4
        "timed_out": 0,
        "service_level": round(100 / 3, 4),  # short: P3 → P1 P2 P4 counted; ≤30 s: P1
        "abandon_rate": round(100 / 3, 4),  # P4 / 3
        "asa": 31.5,  # (28 + 35) / 2
        "average_talk": 150.0,  # (240 + 60) / 2
        "longest_wait": 35.0,  # P2
    }
    assert _values(report.total.figures) == {
        "offered": 11,
        "answered": 6,
        "abandoned": 4,
        "timed_out": 1,
        "service_level": 37.5,  # (2 + 1) / (5 + 3)
        "abandon_rate": 25.0,  # (1 + 1) / 8
        "asa": round(118 / 6, 4),  # (55 + 63) / 6
        "average_talk": 225.0,  # 1350 / 6
        "longest_wait": 60.0,
    }
    sl = report.total.figures["service_level"]
    assert (sl.numerator, sl.denominator) == (3, 8)
    hours = {row.key: _values(row.figures) for row in report.by_hour}
    assert [h for h, v in hours.items() if v["offered"]] == ["00", "09", "10"]
    assert hours["00"]["offered"] == 1  # S7, by local time (21:20 UTC the day before)
    assert hours["09"]["offered"] == 6  # S1 S2 S3 S4 P1 P2
    assert hours["09"]["service_level"] == 40.0  # counted S1 S2 S4 P1 P2; in time S1 P1
    assert hours["10"]["offered"] == 4  # S5 S6 P3 P4
    assert hours["10"]["abandon_rate"] == 50.0  # counted S6 P4; abandoned P4
    assert hours["10"]["service_level"] == 0.0
    assert [row.key for row in report.by_day] == [DAY.isoformat()]
    assert _values(report.by_day[0].figures) == _values(report.total.figures)


@BOTH
async def test_given_the_hand_made_day_when_the_agent_report_runs_then_every_figure_is_as_computed(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        await load_day(session)
    scope = await _scope(ctx)

    async with ctx.sessionmaker() as session:
        report = await service.agent_report(session, scope, DAY, DAY)

    rows = {row.label: row for row in report.rows}
    assert _values(rows["Anna"].figures) == {
        "offered": 5,  # answered 4 + missed 1
        "answered": 4,  # S1 S5 P1 D1 (P5 ended the day before)
        "missed": 1,  # P4 rang her unanswered
        "talk_time": 690.0,  # 300 + 30 + 240 + 120
        "wrap_up": 450.0,  # 60 + 300 (capped 1200) + 60 + 30
        "aht": 285.0,  # (690 + 450) / 4
        "wrong_number": 1,  # S5
        "completeness": 75.0,  # S5 P1 D1 complete; S1 a sale without a client card
    }
    assert _values(rows["Boris"].figures) == {
        "offered": 5,  # answered 3 + missed 2
        "answered": 3,  # S2 S7 P2
        "missed": 2,  # S6, P1 (S2 rang him unanswered, but he answered it after)
        "talk_time": 780.0,  # 120 + 600 + 60
        "wrap_up": 20.0,  # S2 20; S7 no outcome; P2 set before the end → 0
        "aht": round(800 / 3, 4),
        "wrong_number": 0,
        "completeness": round(100 / 3, 4),  # P2; S2 complaint with blank notes; S7 none
    }
    assert {p.reason: p.seconds for p in rows["Anna"].pauses} == {"lunch": 1800.0}
    assert {p.reason: p.seconds for p in rows["Boris"].pauses} == {"break": 600.0, "lunch": 600.0}
    assert rows["Boris"].pause_total_s == 1200.0
    assert _values(report.total.figures)["answered"] == 7
    assert _values(report.total.figures)["completeness"] == round(400 / 7, 4)


def _drills(figures: dict[str, Figure]) -> list[tuple[str, str, float]]:
    """(kpi, address, how many calls it must list) for every count behind a figure."""
    found = []
    for key, figure in figures.items():
        if figure.drill is None:
            continue
        if figure.denominator is not None:
            found.append((key, figure.drill, figure.denominator))
            if figure.numerator_drill is not None:
                found.append((key, figure.numerator_drill, figure.numerator or 0))
        elif key in {"offered", "answered", "abandoned", "timed_out", "missed", "wrong_number"}:
            found.append((key, figure.drill, figure.value or 0))
    return found


@BOTH
async def test_given_report_figures_when_following_their_drill_links_then_the_calls_listed_match(
    ctx: AppContext, client: AsyncClient
) -> None:
    async with ctx.sessionmaker() as session:
        await load_day(session)
    await login_as(client, "sup")
    day = {"from": DAY.isoformat(), "to": DAY.isoformat()}
    queues = (await client.get("/api/reports/queues", params=day)).json()
    agents = (await client.get("/api/reports/agents", params=day)).json()
    rows = [*queues["rows"], queues["total"], *queues["by_hour"], *agents["rows"], agents["total"]]
    checked = 0

    for row in rows:
        figures = {k: Figure.model_validate(v) for k, v in row["figures"].items()}
        for key, link, expected in _drills(figures):
            listed = (await client.get(f"{link}&per_page=200")).json()
            assert listed["total"] == expected, (row["key"], key, link)
            checked += 1

    assert checked > 50
    answered = next(r for r in agents["rows"] if r["label"] == "Anna")["figures"]["answered"]
    anna_calls = (await client.get(answered["drill"])).json()["items"]
    assert sorted(c["caller_name"] for c in anna_calls) == ["D1", "P1", "S1", "S5"]


@BOTH
async def test_given_the_night_clocks_go_back_when_reporting_by_hour_then_buckets_are_local_hours(
    ctx: AppContext,
) -> None:
    # Berlin, 25 October 2026: 03:00 CEST becomes 02:00 CET, so local 02:xx happens twice.
    ends_utc = {
        "before-midnight": datetime(2026, 10, 24, 21, 30, tzinfo=UTC),  # 23:30 on the 24th
        "one-thirty": datetime(2026, 10, 24, 23, 30, tzinfo=UTC),  # 01:30 CEST
        "first-two-thirty": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST
        "second-two-thirty": datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 CET
        "last-minute": datetime(2026, 10, 25, 22, 59, tzinfo=UTC),  # 23:59 CET
    }
    async with ctx.sessionmaker() as session:
        for key, end in ends_utc.items():
            session.add(
                Call(
                    pbx="p",
                    call_key=key,
                    direction=Direction.INBOUND,
                    status=CallStatus.ENDED,
                    queue="q",
                    ringing_agents=[],
                    started_at=end - timedelta(seconds=30),
                    queued_at=end - timedelta(seconds=30),
                    ended_at=end,
                    wait_seconds=30.0,
                    end_reason=EndReason.ABANDONED,
                )
            )
        await session.commit()
    berlin = ctx.settings.model_copy(update={"timezone": "Europe/Berlin"})

    async with ctx.sessionmaker() as session:
        scope = await service.scope_of(session, berlin)
        report = await service.queue_report(session, scope, date(2026, 10, 25), date(2026, 10, 25))

    offered = {row.key: row.figures["offered"].value for row in report.by_hour}
    assert {hour: n for hour, n in offered.items() if n} == {"01": 1, "02": 2, "23": 1}
    assert report.total.figures["offered"].value == 4


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_given_the_grouping_tuning_when_its_query_is_done_then_the_settings_are_back(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        before = await session.scalar(text("SHOW work_mem"))
        async with repository.tuned_for_grouping(session):
            inside = await session.scalar(text("SHOW work_mem"))
        after = await session.scalar(text("SHOW work_mem"))

    assert inside == "256MB"
    assert after == before != inside


@BOTH
async def test_given_a_half_hour_dst_change_when_reporting_by_hour_then_buckets_are_local_hours(
    ctx: AppContext,
) -> None:
    # Lord Howe Island, 4 October 2026: 02:00 at UTC+10:30 becomes 02:30 at UTC+11 (15:30 UTC),
    # so the local hour 02 starts half an hour before the change that makes it.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    ends_utc = [
        datetime(2026, 10, 3, 13, 45, tzinfo=UTC),  # 00:15 local
        datetime(2026, 10, 3, 15, 20, tzinfo=UTC),  # 01:50 at +10:30
        datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # 02:30 at +11, the first second of it
        datetime(2026, 10, 3, 15, 59, tzinfo=UTC),  # 02:59
        datetime(2026, 10, 3, 16, 0, tzinfo=UTC),  # 03:00
        datetime(2026, 10, 4, 12, 59, tzinfo=UTC),  # 23:59
    ]
    async with ctx.sessionmaker() as session:
        for n, end in enumerate(ends_utc):
            session.add(
                Call(
                    pbx="p",
                    call_key=f"lh{n}",
                    direction=Direction.INBOUND,
                    status=CallStatus.ENDED,
                    queue="q",
                    ringing_agents=[],
                    started_at=end - timedelta(seconds=30),
                    queued_at=end - timedelta(seconds=30),
                    ended_at=end,
                    wait_seconds=30.0,
                    end_reason=EndReason.ABANDONED,
                )
            )
        await session.commit()
    settings = ctx.settings.model_copy(update={"timezone": lord_howe.key})

    async with ctx.sessionmaker() as session:
        scope = await service.scope_of(session, settings)
        report = await service.queue_report(session, scope, date(2026, 10, 4), date(2026, 10, 4))

    offered = {row.key: row.figures["offered"].value for row in report.by_hour}
    expected: dict[str, int] = {}
    for end in ends_utc:
        hour = f"{hour_key_start(local_hour_key(end, lord_howe)).hour:02d}"
        expected[hour] = expected.get(hour, 0) + 1
    assert (
        {hour: n for hour, n in offered.items() if n}
        == expected
        == {
            "00": 1,
            "01": 1,
            "02": 2,
            "03": 1,
            "23": 1,
        }
    )
