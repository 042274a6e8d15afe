"""Applying call events to records: idempotence, caller identity, who gets which pop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from callcenter.auth.models import Role
from callcenter.calls.models import Call, PbxEvent
from callcenter.calls.service import IngestPolicy, ingest
from callcenter.calls.state import CallStatus
from callcenter.clients import service as clients
from callcenter.clients.models import Client
from callcenter.clients.schemas import ClientIn, PhoneIn
from callcenter.context import AppContext
from callcenter.events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallStarted,
    Direction,
    EndReason,
    Party,
)
from callcenter.realtime.streams import SUPERVISOR_CALLS_TOPIC, user_topic
from tests.factories import make_user

T0 = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


def _call(key: str, caller: str, *, agents: list[str], answered_by: str | None) -> list[CallEvent]:
    events: list[CallEvent] = [
        CallStarted(call_key=key, event_id=f"{key}:start", at=T0, direction=Direction.INBOUND,
                    caller_num=caller, caller_name="Мария", callee_num="8001"),
        CallQueued(call_key=key, event_id=f"{key}:queued", at=T0 + timedelta(seconds=1),
                   queue="support", position=1),
    ]
    events += [
        AgentRinging(call_key=key, event_id=f"{key}:ring:{a}", at=T0 + timedelta(seconds=2),
                     agent=a, queue="support")
        for a in agents
    ]
    if answered_by:
        events.append(CallAnswered(call_key=key, event_id=f"{key}:answer",
                                   at=T0 + timedelta(seconds=5), agent=answered_by,
                                   queue="support"))
    events.append(CallEnded(call_key=key, event_id=f"{key}:end", at=T0 + timedelta(seconds=15),
                            reason=EndReason.ABANDONED, ended_by=Party.CALLER))
    return events


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_a_call_when_its_events_are_applied_twice_then_one_record_unchanged(
    ctx: AppContext,
) -> None:
    policy = ctx.ingest_policy()
    events = _call("c1", "89161234567", agents=["Local/101@agents"], answered_by="Local/101@agents")
    async with ctx.sessionmaker() as session:
        first = await ingest(session, policy, events)
        await session.commit()
    async with ctx.sessionmaker() as session:
        again = await ingest(session, policy, events)
        await session.commit()
        calls = (await session.scalars(select(Call))).all()
        logged = await session.scalar(select(func.count()).select_from(PbxEvent))
    assert first
    assert again == []
    assert len(calls) == 1
    assert logged == len(events)
    call = calls[0]
    assert call.status is CallStatus.ENDED
    assert call.end_reason is EndReason.COMPLETED
    assert call.caller_e164 == "+79161234567"
    assert call.wait_seconds == pytest.approx(4.0)
    assert call.talk_seconds == pytest.approx(10.0)


async def test_given_known_caller_when_agent_rings_then_only_that_agents_user_gets_the_card(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        anna = await make_user(session, role=Role.OPERATOR, login="anna", extensions=["101"])
        igor = await make_user(session, role=Role.OPERATOR, login="igor", extensions=["102"])
        await make_user(session, role=Role.OPERATOR, login="olga", extensions=["103"])
        await clients.create_client(
            session, ctx.phones,
            ClientIn(name="Мария Сидорова", phones=[PhoneIn(raw="+7 916 123-45-67")]),
        )
        await session.commit()
    events = _call("c2", "9161234567", agents=["Local/101@agents", "Local/102@agents"],
                   answered_by="Local/102@agents")
    async with ctx.sessionmaker() as session:
        notes = await ingest(session, ctx.ingest_policy(), events)
        await session.commit()
    by_topic: dict[str, list[str]] = {}
    for note in notes:
        by_topic.setdefault(note.topic, []).append(note.type)
    assert by_topic[user_topic(anna.id)] == ["call.ringing", "call.withdrawn"]
    assert by_topic[user_topic(igor.id)] == ["call.ringing", "call.connected", "call.ended"]
    assert set(by_topic[SUPERVISOR_CALLS_TOPIC]) == {"call.updated"}
    assert len(by_topic) == 3
    ringing = next(n for n in notes if n.type == "call.ringing")
    card = ringing.payload["card"]
    assert card["known"] is True
    assert card["owners"][0]["client_name"] == "Мария Сидорова"
    withdrawn = next(n for n in notes if n.type == "call.withdrawn")
    assert withdrawn.payload["reason"] == "answered_elsewhere"
    async with ctx.sessionmaker() as session:
        call = (await session.scalars(select(Call))).one()
    assert call.agent_user_id == igor.id
    assert call.client_id is not None


async def test_given_unknown_caller_when_auto_create_is_on_then_a_card_is_made_once(
    ctx: AppContext,
) -> None:
    policy = IngestPolicy(phones=ctx.phones, auto_create_clients=True,
                          company_numbers=frozenset({"+74950000000"}))
    async with ctx.sessionmaker() as session:
        await ingest(session, policy, _call("c3", "+7 985 145-24-36", agents=[], answered_by=None))
        await ingest(session, policy, _call("c4", "89851452436", agents=[], answered_by=None))
        await ingest(session, policy, _call("c5", "84950000000", agents=[], answered_by=None))
        await ingest(session, policy, _call("c6", "anonymous", agents=[], answered_by=None))
        await session.commit()
        made = (await session.scalars(select(Client))).all()
        calls = {c.call_key: c for c in await session.scalars(select(Call))}
    assert [c.name for c in made] == ["Мария"]
    assert calls["c3"].client_id == calls["c4"].client_id == made[0].id
    assert calls["c5"].client_id is None
    assert calls["c6"].caller_e164 is None


async def test_given_unknown_caller_by_default_then_no_card_is_created_and_pop_says_new(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        user = await make_user(session, role=Role.OPERATOR, login="anna", extensions=["101"])
        await session.commit()
    async with ctx.sessionmaker() as session:
        notes = await ingest(
            session, ctx.ingest_policy(),
            _call("c7", "+44 20 7946 0958", agents=["Local/101@agents"], answered_by=None),
        )
        await session.commit()
        assert await session.scalar(select(func.count()).select_from(Client)) == 0
    ringing = next(n for n in notes if n.type == "call.ringing")
    assert ringing.topic == user_topic(user.id)
    assert ringing.payload["card"]["known"] is False
    assert ringing.payload["card"]["e164"] == "+442079460958"
    withdrawn = next(n for n in notes if n.type == "call.withdrawn")
    assert withdrawn.payload["reason"] == "caller_left"
