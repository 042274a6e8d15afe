"""SQL for call control: outbound requests, worklist closures, and the calls they concern."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import AgentExtension, User
from callcenter.calls.models import Call
from callcenter.calls.state import CallStatus
from callcenter.control.models import LIVE_DIAL_STATUSES, MissedCallClosure, OutboundRequest
from callcenter.events import EndReason

_CHUNK = 500
"""Numbers per IN (...) list: far below every backend's bound on bound parameters."""


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


async def lock_user(session: AsyncSession, user_id: int) -> None:
    """Serialise this user's dial requests until the transaction ends (PostgreSQL row lock;
    SQLite serialises writers anyway)."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())


async def stored_extensions(session: AsyncSession) -> list[tuple[str, int]]:
    """Every (extension as stored, user id)."""
    rows = await session.execute(select(AgentExtension.extension, AgentExtension.user_id))
    return [(extension, user_id) for extension, user_id in rows]


async def request_by_key(
    session: AsyncSession, user_id: int, idempotency_key: str
) -> OutboundRequest | None:
    return await session.scalar(
        select(OutboundRequest).where(
            OutboundRequest.user_id == user_id,
            OutboundRequest.idempotency_key == idempotency_key,
        )
    )


async def earlier_live_request(
    session: AsyncSession, *, user_id: int, to_e164: str, since: datetime, before_id: int
) -> OutboundRequest | None:
    """The first request of this user to this number since `since` that may have rung."""
    return await session.scalar(
        select(OutboundRequest)
        .where(
            OutboundRequest.user_id == user_id,
            OutboundRequest.to_e164 == to_e164,
            OutboundRequest.created_at >= since,
            OutboundRequest.id < before_id,
            OutboundRequest.status.in_(LIVE_DIAL_STATUSES),
        )
        .order_by(OutboundRequest.id)
        .limit(1)
    )


async def missed_calls(
    session: AsyncSession,
    *,
    since: datetime,
    reasons: Iterable[EndReason],
    queues: list[str] | None,
) -> Sequence[Call]:
    """Ended queue calls since `since` that no agent took, from a known number; of `queues`
    (every queue when None)."""
    query = select(Call).where(
        Call.started_at >= since,
        Call.status == CallStatus.ENDED,
        Call.end_reason.in_(list(reasons)),
        Call.queue.is_not(None),
        Call.caller_e164.is_not(None),
    )
    if queues is not None:
        query = query.where(Call.queue.in_(queues))
    return (await session.scalars(query)).all()


async def answered_calls_with(
    session: AsyncSession, *, since: datetime, numbers: Iterable[str]
) -> list[tuple[str, datetime]]:
    """(number, start) of every answered call since `since` from or to one of `numbers`."""
    found: list[tuple[str, datetime]] = []
    for chunk in _chunks(numbers):
        rows = await session.execute(
            select(Call.caller_e164, Call.callee_e164, Call.started_at).where(
                Call.started_at >= since,
                Call.answered_at.is_not(None),
                or_(Call.caller_e164.in_(chunk), Call.callee_e164.in_(chunk)),
            )
        )
        wanted = set(chunk)
        for caller, callee, started in rows:
            for number in (caller, callee):
                if number in wanted:
                    found.append((number, started))
    return found


async def closures_of(
    session: AsyncSession, *, since: datetime, numbers: Iterable[str]
) -> list[MissedCallClosure]:
    found: list[MissedCallClosure] = []
    for chunk in _chunks(numbers):
        rows = await session.scalars(
            select(MissedCallClosure).where(
                MissedCallClosure.caller_e164.in_(chunk), MissedCallClosure.up_to >= since
            )
        )
        found.extend(rows)
    return found


async def requests_to(
    session: AsyncSession, *, since: datetime, numbers: Iterable[str]
) -> list[OutboundRequest]:
    """Outbound requests since `since` to `numbers` that may have rung."""
    found: list[OutboundRequest] = []
    for chunk in _chunks(numbers):
        rows = await session.scalars(
            select(OutboundRequest).where(
                OutboundRequest.to_e164.in_(chunk),
                OutboundRequest.created_at >= since,
                OutboundRequest.status.in_(LIVE_DIAL_STATUSES),
            )
        )
        found.extend(rows)
    return found


async def answered_open_calls(session: AsyncSession) -> Sequence[Call]:
    """Calls an agent is talking on now."""
    return (
        await session.scalars(
            select(Call).where(Call.status == CallStatus.ANSWERED, Call.agent.is_not(None))
        )
    ).all()
