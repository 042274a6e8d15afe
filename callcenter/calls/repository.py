"""SQL for call records and the PBX event log. No decisions here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import AgentExtension
from callcenter.calls.models import Call, PbxEvent
from callcenter.calls.state import CallStatus
from callcenter.events import CallEvent
from callcenter.tasks.models import Task


async def insert_new_events(session: AsyncSession, events: Sequence[CallEvent]) -> set[str]:
    """Store the events not stored before; the ids of those that were new."""
    if not events:
        return set()
    rows = [
        {
            "pbx": e.pbx,
            "event_id": e.event_id,
            "call_key": e.call_key,
            "kind": e.kind,
            "at": e.at,
            "payload": e.model_dump(mode="json"),
        }
        for e in events
    ]
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One statement for any batch size (compiled once), sent as multi-row INSERTs.
    statement = (
        insert(PbxEvent)
        .on_conflict_do_nothing(index_elements=["pbx", "event_id"])
        .returning(PbxEvent.event_id)
    )
    result = await session.execute(statement, rows)
    return set(result.scalars().all())


async def calls_by_keys(session: AsyncSession, pbx: str, keys: Iterable[str]) -> dict[str, Call]:
    wanted = list(set(keys))
    if not wanted:
        return {}
    rows = await session.scalars(select(Call).where(Call.pbx == pbx, Call.call_key.in_(wanted)))
    return {c.call_key: c for c in rows}


async def all_agent_extensions(session: AsyncSession) -> dict[str, list[int]]:
    rows = await session.execute(select(AgentExtension.extension, AgentExtension.user_id))
    found: dict[str, list[int]] = {}
    for extension, user_id in rows:
        found.setdefault(extension, []).append(user_id)
    return found


async def extensions_of_user(session: AsyncSession, user_id: int) -> list[str]:
    rows = await session.scalars(
        select(AgentExtension.extension).where(AgentExtension.user_id == user_id)
    )
    return list(rows)


async def recent_calls_of(
    session: AsyncSession,
    *,
    client_id: int | None,
    organization_id: int | None,
    caller_e164: str | None,
    exclude_call_id: int | None,
    limit: int = 5,
) -> Sequence[Call]:
    conditions = []
    if client_id is not None:
        conditions.append(Call.client_id == client_id)
    if organization_id is not None:
        conditions.append(Call.organization_id == organization_id)
    if caller_e164 is not None:
        conditions.append(Call.caller_e164 == caller_e164)
    if not conditions:
        return []
    query = select(Call).where(or_(*conditions))
    if exclude_call_id is not None:
        query = query.where(Call.id != exclude_call_id)
    rows = await session.scalars(query.order_by(Call.started_at.desc()).limit(limit))
    return rows.all()


async def open_tasks_of(
    session: AsyncSession, *, client_id: int | None, organization_id: int | None, limit: int = 10
) -> Sequence[Task]:
    conditions = []
    if client_id is not None:
        conditions.append(Task.client_id == client_id)
    if organization_id is not None:
        conditions.append(Task.organization_id == organization_id)
    if not conditions:
        return []
    query = select(Task).where(or_(*conditions), Task.done_at.is_(None))
    rows = await session.scalars(query.order_by(Task.due_at.is_(None), Task.due_at).limit(limit))
    return rows.all()


async def open_calls(session: AsyncSession, pbx: str | None = None) -> Sequence[Call]:
    """Calls not yet ended, oldest first (of one PBX, or of all)."""
    query = select(Call).where(Call.status != CallStatus.ENDED)
    if pbx is not None:
        query = query.where(Call.pbx == pbx)
    return (await session.scalars(query.order_by(Call.started_at))).all()


def call_filter(
    *,
    agent_user_id: int | None = None,
    queue: str | None = None,
    status: CallStatus | None = None,
    client_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    phone_e164: str | None = None,
) -> Select[Call]:
    query = select(Call)
    if agent_user_id is not None:
        query = query.where(Call.agent_user_id == agent_user_id)
    if queue is not None:
        query = query.where(Call.queue == queue)
    if status is not None:
        query = query.where(Call.status == status)
    if client_id is not None:
        query = query.where(Call.client_id == client_id)
    if since is not None:
        query = query.where(Call.started_at >= since)
    if until is not None:
        query = query.where(Call.started_at < until)
    if phone_e164 is not None:
        query = query.where(Call.caller_e164 == phone_e164)
    return query


async def page_of_calls(
    session: AsyncSession, query: Select[Call], *, offset: int, limit: int
) -> tuple[Sequence[Call], int]:
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Call.started_at.desc(), Call.id.desc()).offset(offset).limit(limit)
    )
    return rows.all(), int(total or 0)
