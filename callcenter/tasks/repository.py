"""SQL for tasks and meetings. No decisions here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.clients.models import Client
from callcenter.tasks.models import Meeting, MeetingParticipant, Task

State = Literal["open", "done", "all"]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which follow-ups a list shows; None means "any"."""

    assignee_id: int | None = None
    client_id: int | None = None
    organization_id: int | None = None
    state: State = "open"
    overdue_at: datetime | None = None
    """Only those past due (tasks) or past their time without a result (meetings) at this."""


def _task_conditions(s: Selection) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if s.assignee_id is not None:
        conditions.append(Task.assignee_id == s.assignee_id)
    if s.client_id is not None:
        conditions.append(Task.client_id == s.client_id)
    if s.organization_id is not None:
        conditions.append(Task.organization_id == s.organization_id)
    if s.state == "open" or s.overdue_at is not None:
        conditions.append(Task.done_at.is_(None))
    elif s.state == "done":
        conditions.append(Task.done_at.is_not(None))
    if s.overdue_at is not None:
        conditions.append(Task.due_at < s.overdue_at)
    return conditions


async def tasks_page(
    session: AsyncSession, selection: Selection, *, offset: int, limit: int
) -> tuple[Sequence[Task], int]:
    conditions = _task_conditions(selection)
    total = await session.scalar(select(func.count(Task.id)).where(*conditions))
    rows = await session.scalars(
        select(Task)
        .where(*conditions)
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id)
        .offset(offset)
        .limit(limit)
    )
    return rows.all(), int(total or 0)


def _meeting_conditions(s: Selection) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if s.assignee_id is not None:
        conditions.append(Meeting.assignee_id == s.assignee_id)
    if s.client_id is not None:
        taking_part = select(MeetingParticipant.meeting_id).where(
            MeetingParticipant.client_id == s.client_id
        )
        conditions.append(or_(Meeting.client_id == s.client_id, Meeting.id.in_(taking_part)))
    if s.organization_id is not None:
        conditions.append(Meeting.organization_id == s.organization_id)
    if s.state == "open" or s.overdue_at is not None:
        conditions.append(Meeting.done_at.is_(None))
    elif s.state == "done":
        conditions.append(Meeting.done_at.is_not(None))
    if s.overdue_at is not None:
        conditions.append(func.coalesce(Meeting.ends_at, Meeting.starts_at) < s.overdue_at)
    return conditions


async def meetings_page(
    session: AsyncSession, selection: Selection, *, offset: int, limit: int
) -> tuple[Sequence[Meeting], int]:
    conditions = _meeting_conditions(selection)
    total = await session.scalar(select(func.count(Meeting.id)).where(*conditions))
    rows = await session.scalars(
        select(Meeting)
        .where(*conditions)
        .order_by(Meeting.starts_at, Meeting.id)
        .offset(offset)
        .limit(limit)
    )
    return rows.all(), int(total or 0)


async def participants(
    session: AsyncSession, meeting_ids: Sequence[int]
) -> dict[int, list[tuple[int, str]]]:
    """Per meeting: (client id, name) of its participants, by name."""
    if not meeting_ids:
        return {}
    rows = await session.execute(
        select(MeetingParticipant.meeting_id, Client.id, Client.name)
        .join(Client, Client.id == MeetingParticipant.client_id)
        .where(MeetingParticipant.meeting_id.in_(meeting_ids))
        .order_by(Client.name, Client.id)
    )
    found: dict[int, list[tuple[int, str]]] = {}
    for meeting_id, client_id, name in rows:
        found.setdefault(meeting_id, []).append((client_id, name))
    return found


async def set_participants(
    session: AsyncSession, meeting_id: int, client_ids: Sequence[int]
) -> None:
    await session.execute(
        delete(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting_id)
    )
    if client_ids:
        await session.execute(
            insert(MeetingParticipant),
            [{"meeting_id": meeting_id, "client_id": c} for c in dict.fromkeys(client_ids)],
        )


async def existing_client_ids(session: AsyncSession, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    return set(await session.scalars(select(Client.id).where(Client.id.in_(set(ids)))))


def _due(model: type[Task | Meeting], now: datetime) -> list[ColumnElement[bool]]:
    return [
        model.remind_at <= now,
        model.reminded_at.is_(None),
        model.done_at.is_(None),
        model.assignee_id.is_not(None),
    ]


async def reminders_due(session: AsyncSession, now: datetime) -> bool:
    """Whether any reminder is due (a read, so an idle round takes no write lock)."""
    for model in (Task, Meeting):
        if await session.scalar(select(exists().where(*_due(model, now)))):
            return True
    return False


ReminderRow = tuple[int, int, str, datetime | None, int | None, int | None]
"""id, assignee id, subject, when (due or start), client id, organisation id."""


async def claim_task_reminders(session: AsyncSession, now: datetime) -> list[ReminderRow]:
    """Mark the open tasks whose reminder is due as reminded, and return them. One UPDATE:
    of two runs at the same moment, each row goes to exactly one."""
    statement = (
        update(Task)
        .where(*_due(Task, now))
        .values(reminded_at=now)
        .returning(
            Task.id, Task.assignee_id, Task.title, Task.due_at, Task.client_id, Task.organization_id
        )
        .execution_options(synchronize_session=False)
    )
    return [tuple(row) for row in await session.execute(statement)]  # type: ignore[misc]


async def claim_meeting_reminders(session: AsyncSession, now: datetime) -> list[ReminderRow]:
    statement = (
        update(Meeting)
        .where(*_due(Meeting, now))
        .values(reminded_at=now)
        .returning(
            Meeting.id,
            Meeting.assignee_id,
            Meeting.subject,
            Meeting.starts_at,
            Meeting.client_id,
            Meeting.organization_id,
        )
        .execution_options(synchronize_session=False)
    )
    return [tuple(row) for row in await session.execute(statement)]  # type: ignore[misc]
