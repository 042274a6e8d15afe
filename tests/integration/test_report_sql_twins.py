"""The registry's KPIs counted in SQL equal the registry's own Python definitions.

Generated calls (with the edge cases on purpose: waits exactly at T and at the short-abandon
limit, wrong numbers, blank notes, outcomes before the end, calls not ended, rings missed
and answered later) are stored; the SQL reports and the pure definitions over the same rows
must give the same numbers, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from callcenter.calls import repository as calls_repository
from callcenter.calls.agents import extension_of
from callcenter.calls.models import Call, Outcome, PbxEvent
from callcenter.calls.state import CallStatus
from callcenter.clients.models import Client
from callcenter.context import AppContext
from callcenter.events import Direction, EndReason
from callcenter.kpi import KPI_BY_KEY, KpiResult, compute_all, fact_of
from callcenter.queues.models import QueueSettings
from callcenter.reports import service
from callcenter.reports.agent_kpis import (
    AGENT_KPI_BY_KEY,
    AgentFact,
    compute_agent_kpis,
    has_notes,
)
from callcenter.reports.agent_sql import AGENT_TWINS
from callcenter.reports.sql import QUEUE_TWINS
from tests.factories import make_user

DAY = date(2026, 3, 14)
QUEUES = ("sales", "support", "vip")
INTERFACES = ("Local/201@agents", "Local/202@agents", "PJSIP/203", "Local/299@agents")
"""The last one belongs to nobody."""


def test_given_the_registries_then_every_kpi_has_an_sql_twin() -> None:
    assert set(QUEUE_TWINS) == set(KPI_BY_KEY)
    assert set(AGENT_TWINS) == set(AGENT_KPI_BY_KEY)


def _same(python: KpiResult, sql_value: float | None, key: str) -> None:
    if python.value is None or sql_value is None:
        assert python.value == sql_value, key
    else:
        assert math.isclose(python.value, sql_value, rel_tol=1e-9, abs_tol=1e-9), key


async def _generate(ctx: AppContext, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    start = datetime(2026, 3, 13, 18, tzinfo=UTC)
    async with ctx.sessionmaker() as session:
        users = {
            iface: await make_user(session, login=f"u{n}", extensions=[extension_of(iface)])
            for n, iface in enumerate(INTERFACES[:3])
        }
        client = Client(name="Client")
        session.add(client)
        session.add(QueueSettings(queue="vip", service_level_s=10))
        await session.flush()
        for n in range(260):
            key = f"c{seed}-{n}"
            queued_at = start + timedelta(seconds=rng.randrange(0, 40 * 3600))
            wait = rng.choice([0.0, 3.0, 4.999, 5.0, 10.0, 19.5, 20.0, 20.001, 30.0, 75.0])
            iface = rng.choice(INTERFACES)
            answered = rng.random() < 0.6
            ended = rng.random() < 0.95
            in_queue = rng.random() < 0.85
            answered_at = queued_at + timedelta(seconds=wait) if answered else None
            talk = rng.choice([0.0, 2.0, 45.5, 300.0])
            ended_at = (answered_at or queued_at + timedelta(seconds=wait)) + timedelta(
                seconds=talk if answered else 0
            )
            reason = (
                EndReason.COMPLETED
                if answered
                else rng.choice(
                    [EndReason.ABANDONED, EndReason.QUEUE_TIMEOUT, EndReason.CALLER_HANGUP]
                )
            )
            outcome = (
                rng.choice([None, *Outcome])
                if answered
                else rng.choice([None, Outcome.WRONG_NUMBER])
            )
            outcome_at = None
            if outcome is not None:
                outcome_at = ended_at + timedelta(seconds=rng.choice([-3, 0, 12.7, 299, 301, 5000]))
            user = users.get(iface) if answered else None
            session.add(
                Call(
                    pbx="p",
                    call_key=key,
                    direction=Direction.INBOUND,
                    status=CallStatus.ENDED if ended else CallStatus.ANSWERED,
                    queue=rng.choice(QUEUES) if in_queue else None,
                    agent=iface if answered else None,
                    agent_user_id=user.id if user else None,
                    ringing_agents=[],
                    started_at=queued_at - timedelta(seconds=rng.choice([0, 7])),
                    queued_at=queued_at if in_queue else None,
                    answered_at=answered_at,
                    ended_at=ended_at if ended else None,
                    wait_seconds=wait if in_queue else None,
                    talk_seconds=talk if answered and ended else None,
                    end_reason=reason if ended else None,
                    outcome=outcome,
                    outcome_at=outcome_at,
                    notes=rng.choice(["", "  ", "\n\t", "ok", " перезвонить "]),
                    client_id=client.id if rng.random() < 0.5 else None,
                )
            )
            for ringing in rng.sample(INTERFACES, k=rng.choice([0, 0, 1, 2])):
                session.add(
                    PbxEvent(
                        pbx="p",
                        event_id=f"{key}:rna:{ringing}",
                        call_key=key,
                        kind="agent_stopped_ringing",
                        at=queued_at + timedelta(seconds=1),
                        payload={"agent": ringing, "reason": "no_answer"},
                    )
                )
        await calls_repository.rebuild_unanswered_rings(session)  # as ingest keeps them
        await session.commit()
        return {iface: user.id for iface, user in users.items()}


async def _python_side(
    ctx: AppContext, scope: service.ReportScope, users: dict[str, int]
) -> tuple[dict[str, dict[str, KpiResult]], dict[int, dict[str, KpiResult]]]:
    window = service.window_of(DAY, DAY, scope.tz)
    async with ctx.sessionmaker() as session:
        rows = (await session.scalars(select(Call))).all()
        rings = (await session.scalars(select(PbxEvent))).all()
    ended_today = {
        r.call_key: r
        for r in rows
        if r.ended_at is not None and window.since <= r.ended_at < window.until
    }
    by_queue = defaultdict(list)
    for row in ended_today.values():
        fact = fact_of(row)
        if fact is not None:
            by_queue[fact.queue].append(fact)
    queues = {q: compute_all(facts, scope.rules.params_for(q)) for q, facts in by_queue.items()}
    agent_facts: dict[int, dict[str, AgentFact]] = defaultdict(dict)
    for row in ended_today.values():
        if row.agent_user_id is not None and row.answered_at is not None:
            agent_facts[row.agent_user_id][row.call_key] = AgentFact(
                call_key=row.call_key,
                user_id=row.agent_user_id,
                ended_at=row.ended_at,  # type: ignore[arg-type]
                handled=True,
                talk_s=row.talk_seconds,
                outcome=row.outcome,
                outcome_at=row.outcome_at,
                has_notes=has_notes(row.notes),
                has_client=row.client_id is not None,
            )
    for ring in rings:
        user = users.get(ring.payload["agent"])
        row = ended_today.get(ring.call_key)
        if user is None or row is None or ring.call_key in agent_facts[user]:
            continue
        agent_facts[user][ring.call_key] = AgentFact(
            call_key=ring.call_key,
            user_id=user,
            ended_at=row.ended_at,
            handled=False,  # type: ignore[arg-type]
        )
    agents = {
        u: compute_agent_kpis(list(facts.values()), scope.agent)
        for u, facts in agent_facts.items()
        if facts
    }
    return queues, agents


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_generated_calls_when_counted_in_sql_and_in_python_then_the_kpis_are_equal(
    ctx: AppContext, seed: int
) -> None:
    users = await _generate(ctx, seed)
    async with ctx.sessionmaker() as session:
        scope = await service.scope_of(session, ctx.settings)
        queue_report = await service.queue_report(session, scope, DAY, DAY)
        agent_report = await service.agent_report(session, scope, DAY, DAY)

    python_queues, python_agents = await _python_side(ctx, scope, users)

    assert {r.key for r in queue_report.rows} == set(python_queues)
    for row in queue_report.rows:
        for key, result in python_queues[row.key].items():
            _same(result, row.figures[key].value, f"{row.key}.{key}")
    assert {r.user_id for r in agent_report.rows} == set(python_agents)
    for agent_row in agent_report.rows:
        for key, result in python_agents[agent_row.user_id].items():
            _same(result, agent_row.figures[key].value, f"{agent_row.label}.{key}")
