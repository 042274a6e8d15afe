"""The live queues through the app: the board endpoint, per-queue settings, the realtime
snapshot, pause intervals stored from a recorded stream, and counters that survive a restart."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from callcenter.auth.models import AuditEntry, Role
from callcenter.calls.models import Call
from callcenter.context import AppContext
from callcenter.events import (
    CallQueued,
    CallStarted,
    Direction,
    MemberView,
    QueueParams,
    QueueSnapshot,
)
from callcenter.kpi import KpiParams, compute_all, fact_of
from callcenter.queues.board import LiveQueues
from callcenter.queues.models import AgentPause
from callcenter.realtime.streams import SUPERVISORS_TOPIC
from pbx_adapter.runner import EventPipeline
from tests.factories import login_as, make_user
from tests.helpers_ami import recording

PBX = "default"


async def _users(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as session:
        await make_user(session, login="olga", role=Role.SUPERVISOR)
        await make_user(session, login="ivan", role=Role.OPERATOR, extensions=["101"])
        await session.commit()


def _waiting_caller(now: datetime) -> list[object]:
    return [
        QueueSnapshot(
            pbx=PBX,
            event_id="snap-1",
            at=now - timedelta(seconds=60),
            queues=(QueueParams(queue="support", strategy="rrmemory", service_level_s=20),),
            members=(
                MemberView(queue="support", interface="Local/101@agents", name="Оператор 101"),
                MemberView(
                    queue="support",
                    interface="Local/102@agents",
                    name="Оператор 102",
                    paused=True,
                    pause_reason="Обед",
                    paused_since=now - timedelta(minutes=5),
                ),
            ),
        ),
        CallStarted(
            pbx=PBX,
            call_key="c1",
            event_id="c1:call_started",
            at=now - timedelta(seconds=30),
            direction=Direction.INBOUND,
            caller_num="89161234567",
            caller_name="Мария",
        ),
        CallQueued(
            pbx=PBX,
            call_key="c1",
            event_id="c1:queued",
            at=now - timedelta(seconds=25),
            queue="support",
        ),
    ]


async def test_given_a_caller_waiting_when_a_supervisor_asks_then_the_board_shows_the_queue(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _users(ctx)
    now = datetime.now(UTC)
    await ctx.live_queues()(_waiting_caller(now))  # type: ignore[arg-type]
    await login_as(client, "olga")

    response = await client.get("/api/queues/live")

    assert response.status_code == 200, response.text
    (support,) = response.json()["queues"]
    assert support["queue"] == "support"
    assert support["strategy"] == "rrmemory"
    assert [(w["call_key"], w["caller_name"], w["position"]) for w in support["waiting"]] == [
        ("c1", "Мария", 1)
    ]
    assert 24 <= support["longest_wait_s"] < 60
    states = {a["interface"]: (a["state"], a["pause_reason"]) for a in support["agents"]}
    assert states == {"Local/101@agents": ("idle", ""), "Local/102@agents": ("paused", "Обед")}
    level = support["kpis"]["service_level"]
    assert level["definition"]["formula_key"] == "kpi.service_level.formula"
    assert level["definition"]["params"] == {"t": 20.0, "n": 5.0}


async def test_given_an_operator_then_the_board_is_not_theirs(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _users(ctx)
    await login_as(client, "ivan")

    assert (await client.get("/api/queues/live")).status_code == 403
    snapshot = await client.get("/api/realtime/snapshot")
    assert snapshot.status_code == 200
    assert "queues" not in snapshot.json()


async def test_given_a_supervisor_then_the_realtime_snapshot_carries_the_board(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _users(ctx)
    await ctx.live_queues()(_waiting_caller(datetime.now(UTC)))  # type: ignore[arg-type]
    await login_as(client, "olga")

    body = (await client.get("/api/realtime/snapshot")).json()

    assert SUPERVISORS_TOPIC in body["last_ids"]
    assert [q["queue"] for q in body["queues"]["queues"]] == ["support"]
    assert body["queues"]["timezone"] == "Europe/Moscow"


async def test_given_settings_when_a_supervisor_puts_them_then_they_hold_and_are_audited(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _users(ctx)
    await ctx.live_queues()(_waiting_caller(datetime.now(UTC)))  # type: ignore[arg-type]
    csrf = await login_as(client, "olga")
    before = await client.get("/api/queues/support/settings")
    assert before.json()["service_level_s"] is None
    assert before.json()["alarm_no_agent"] is True
    last = await ctx.streams.last_id(SUPERVISORS_TOPIC)

    body = {
        "service_level_s": 15,
        "alarm_longest_wait_s": 10,
        "alarm_service_level_pct": 80,
        "alarm_no_agent": False,
    }
    response = await client.put(
        "/api/queues/support/settings", json=body, headers={"X-CSRF-Token": csrf}
    )

    assert response.status_code == 200, response.text
    assert (await client.get("/api/queues/support/settings")).json() | {"updated_at": None} == {
        **body,
        "queue": "support",
        "updated_at": None,
        "updated_by": response.json()["updated_by"],
    }
    await ctx.live_queues().flush()
    subscription = await ctx.streams.subscribe([SUPERVISORS_TOPIC], {SUPERVISORS_TOPIC: last})
    event = json.loads((await anext(aiter(subscription))).data)
    await subscription.close()
    assert event["type"] == "queues.updated"
    assert event["queue"]["service_level_s"] == 15
    assert event["queue"]["alarms"] == ["longest_wait"]
    # values only: the definitions (the same for every update) come with the snapshot
    assert set(event["queue"]["kpis"]["service_level"]) == {
        "key",
        "value",
        "numerator",
        "denominator",
    }
    board = (await client.get("/api/queues/live")).json()
    assert board["queues"][0]["kpis"]["service_level"]["definition"]["params"]["t"] == 15
    async with ctx.sessionmaker() as session:
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.entity == "queue"))
        ).all()
    assert [(a.action, a.entity_id, a.details["service_level_s"]) for a in audit] == [
        ("queue_settings", "support", 15)
    ]


@pytest.mark.parametrize(
    "body",
    [{"service_level_s": 0}, {"alarm_service_level_pct": 120}, {"unknown": 1}],
)
async def test_given_bad_settings_then_they_are_refused(
    ctx: AppContext, client: AsyncClient, body: dict[str, object]
) -> None:
    await _users(ctx)
    csrf = await login_as(client, "olga")

    response = await client.put(
        "/api/queues/support/settings", json=body, headers={"X-CSRF-Token": csrf}
    )

    assert response.status_code == 422


def _same_figures(got: dict[str, float | None], want: dict[str, float | None]) -> bool:
    """Equal figures; sums of the same floats in another order differ in the last bits (so
    rounding both to N places can still split them at a boundary)."""

    def close(a: float | None, b: float | None) -> bool:
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)

    return got.keys() == want.keys() and all(close(got[k], want[k]) for k in got)


async def _replay(ctx: AppContext, board: LiveQueues, name: str) -> None:
    pipeline = EventPipeline("lab", ctx.call_event_sink(), live_sink=board)
    pipeline.start()
    for frame in recording(name).frames:
        pipeline.feed(frame)
    await pipeline.stop()
    assert pipeline.poisoned == 0


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_a_recorded_stream_when_ingested_then_the_lunch_pause_is_stored(
    ctx: AppContext,
) -> None:
    meta = recording("basic_20calls").meta
    end = datetime.fromtimestamp(meta["ended"], UTC)
    board = LiveQueues(ctx.sessionmaker, ctx.streams, ctx.settings, clock=lambda: end)

    await _replay(ctx, board, "basic_20calls")
    await _replay(ctx, board, "basic_20calls")  # the same events again change nothing

    async with ctx.sessionmaker() as session:
        pauses = (await session.scalars(select(AgentPause))).all()
    assert [(p.pbx, p.interface, p.queue, p.reason, p.agent_name) for p in pauses] == [
        ("lab", "Local/102@agents", "support", "Обед", "Оператор 102")
    ]
    (pause,) = pauses
    assert pause.started_at == datetime.fromtimestamp(1795906376, UTC)
    assert pause.ended_at is not None
    assert abs(pause.ended_at.timestamp() - 1795906388.289193) < 0.001
    await board.close()


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_a_restart_then_todays_counters_are_seeded_from_the_records(
    ctx: AppContext,
) -> None:
    meta = recording("mixed_60calls").meta
    end = datetime.fromtimestamp(meta["ended"], UTC)
    settings = ctx.settings.model_copy(update={"pbx_name": "lab"})
    before = LiveQueues(ctx.sessionmaker, ctx.streams, settings, clock=lambda: end)
    await _replay(ctx, before, "mixed_60calls")
    live_kpis = {q.queue: q.kpis for q in (await before.snapshot(end)).queues}
    await before.close()

    after = LiveQueues(ctx.sessionmaker, ctx.streams, settings, clock=lambda: end)
    seeded = {q.queue: q.kpis for q in (await after.snapshot(end)).queues}
    async with ctx.sessionmaker() as session:
        rows = (await session.scalars(select(Call).where(Call.queue.is_not(None)))).all()

    assert set(seeded) == {"support", "sales"}
    assert live_kpis["support"]["offered"].value == 42
    counts = ("offered", "answered", "abandoned", "timed_out", "asa", "average_talk")
    for queue, kpis in seeded.items():
        assert _same_figures(
            {k: kpis[k].value for k in counts}, {k: live_kpis[queue][k].value for k in counts}
        )
        # the figures the short-call rule touches follow the records (rules run after
        # ingest may have marked wrong numbers since the live board last looked)
        facts = [f for row in rows if row.queue == queue and (f := fact_of(row)) is not None]
        params = KpiParams(service_level_s=kpis["service_level"].definition.params["t"])
        expected = compute_all(facts, params)
        assert _same_figures(
            {k: v.value for k, v in kpis.items()}, {k: v.value for k, v in expected.items()}
        ), (kpis, expected)
    await after.close()
