"""Decisions about tasks and meetings: defaults, who may change them, closing with a result.
Nothing here commits; the API edge does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import User
from callcenter.calls import service as calls
from callcenter.calls.models import Call
from callcenter.clients import repository as clients_repository
from callcenter.clients import service as clients
from callcenter.tasks import repository
from callcenter.tasks.models import FollowUp, Meeting, Task
from callcenter.tasks.schemas import (
    CallTaskIn,
    MeetingIn,
    MeetingOut,
    MeetingPatch,
    Participant,
    TaskIn,
    TaskOut,
    TaskPatch,
)

NotFound = clients.NotFound
CALL_TASK_DUE_AFTER = timedelta(days=1)


class BadReference(ValueError):
    """The request names a user, client or call that does not exist."""


class NotYours(PermissionError):
    """Only the assignee, the creator or a supervisor may change it."""


class AlreadyClosed(ValueError):
    pass


def may_change(item: FollowUp, *, user_id: int, is_supervisor: bool) -> bool:
    """Supervisors change any follow-up; others those assigned to them (or to nobody) and
    those they created."""
    return is_supervisor or item.assignee_id in (None, user_id) or item.created_by == user_id


def is_overdue(item: Task | Meeting, now: datetime) -> bool:
    """Open past its due time (a task) or past its time with no result yet (a meeting)."""
    if item.done_at is not None:
        return False
    if isinstance(item, Task):
        return item.due_at is not None and item.due_at < now
    return (item.ends_at or item.starts_at) < now


async def _check_user(session: AsyncSession, user_id: int | None) -> None:
    if user_id is not None and await session.get(User, user_id) is None:
        raise BadReference(f"user {user_id}")


async def _subject(
    session: AsyncSession, client_id: int | None, organization_id: int | None
) -> tuple[int | None, int | None]:
    """(client, organisation) after checking they exist; a person brings their organisation."""
    try:
        if client_id is not None:
            person = await clients.get_client(session, client_id)
            organization_id = organization_id or person.organization_id
        if organization_id is not None:
            await clients.get_organization(session, organization_id)
    except NotFound as exc:
        raise BadReference(str(exc)) from exc
    return client_id, organization_id


async def _check_call(session: AsyncSession, call_id: int | None) -> None:
    if call_id is not None and await session.get(Call, call_id) is None:
        raise BadReference(f"call {call_id}")


def _ensure_may_change(item: FollowUp, user_id: int, is_supervisor: bool) -> None:
    if not may_change(item, user_id=user_id, is_supervisor=is_supervisor):
        raise NotYours()


def _close(
    item: FollowUp, what: str, result: str, *, user_id: int, is_supervisor: bool, now: datetime
) -> None:
    """Close `item` (`what` names it in the error) with a written result, once."""
    _ensure_may_change(item, user_id, is_supervisor)
    if item.done_at is not None:
        raise AlreadyClosed(what)
    item.result = result
    item.done_at = now
    item.closed_by = user_id


async def _subject_names(
    session: AsyncSession, items: Sequence[Task | Meeting]
) -> list[tuple[str | None, str | None]]:
    """Each item's (client name, organisation name), in two queries."""
    client_rows = await clients_repository.clients_by_ids(
        session, [i.client_id for i in items if i.client_id]
    )
    orgs = await clients_repository.organizations_by_ids(
        session, [i.organization_id for i in items if i.organization_id]
    )
    return [
        (
            client_rows[i.client_id].name if i.client_id in client_rows else None,
            orgs[i.organization_id].name if i.organization_id in orgs else None,
        )
        for i in items
    ]


# --- tasks -----------------------------------------------------------------------------------


async def create_task(session: AsyncSession, data: TaskIn, *, user_id: int) -> Task:
    """A new task, assigned to its creator unless someone else is named."""
    client_id, organization_id = await _subject(session, data.client_id, data.organization_id)
    assignee = data.assignee_id if data.assignee_id is not None else user_id
    await _check_user(session, assignee)
    await _check_call(session, data.call_id)
    task = Task(
        title=data.title.strip(),
        description=data.description,
        client_id=client_id,
        organization_id=organization_id,
        assignee_id=assignee,
        due_at=data.due_at,
        remind_at=data.remind_at,
        call_id=data.call_id,
        created_by=user_id,
    )
    session.add(task)
    await session.flush()
    return task


def call_task_title(call: Call) -> str:
    """A subject for a task made from a call when the operator gave none: the first line of
    the call's notes, else who called."""
    first_line = next((line.strip() for line in call.notes.splitlines() if line.strip()), "")
    return (first_line or call.caller_name.strip() or call.caller_num or f"#{call.id}")[:255]


async def task_from_call(
    session: AsyncSession,
    call_id: int,
    data: CallTaskIn,
    *,
    user_id: int,
    may_edit_any: bool,
    now: datetime,
) -> Task:
    """One click on a call card: a task about the call's client, due tomorrow, for me, with a
    reminder at the due time."""
    row = await calls.editable_call(session, call_id, user_id=user_id, may_edit_any=may_edit_any)
    due_at = data.due_at or now + CALL_TASK_DUE_AFTER
    task = Task(
        title=(data.title or call_task_title(row)).strip(),
        description=data.description,
        client_id=row.client_id,
        organization_id=row.organization_id,
        assignee_id=user_id,
        due_at=due_at,
        remind_at=data.remind_at or due_at,
        call_id=row.id,
        created_by=user_id,
    )
    session.add(task)
    await session.flush()
    return task


async def get_task(session: AsyncSession, task_id: int) -> Task:
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound(f"task {task_id}")
    return task


async def update_task(
    session: AsyncSession, task_id: int, data: TaskPatch, *, user_id: int, is_supervisor: bool
) -> Task:
    task = await get_task(session, task_id)
    _ensure_may_change(task, user_id, is_supervisor)
    changes = data.model_dump(exclude_unset=True)
    if "client_id" in changes or "organization_id" in changes:
        task.client_id, task.organization_id = await _subject(
            session,
            changes.get("client_id", task.client_id),
            changes.get("organization_id", task.organization_id),
        )
    if "assignee_id" in changes:
        await _check_user(session, changes["assignee_id"])
        task.assignee_id = changes["assignee_id"]
    for field in ("title", "description", "due_at"):
        if field in changes and changes[field] is not None:
            setattr(task, field, changes[field])
    if "remind_at" in changes:
        task.remind_at = changes["remind_at"]
        task.reminded_at = None
    await session.flush()
    return task


async def close_task(
    session: AsyncSession,
    task_id: int,
    result: str,
    *,
    user_id: int,
    is_supervisor: bool,
    now: datetime,
) -> Task:
    """Close with a written result (the schema refuses an empty one)."""
    task = await get_task(session, task_id)
    _close(task, f"task {task_id}", result, user_id=user_id, is_supervisor=is_supervisor, now=now)
    await session.flush()
    return task


async def task_views(session: AsyncSession, tasks: Sequence[Task], now: datetime) -> list[TaskOut]:
    """Tasks with the names of their client and organisation, in two queries."""
    subjects = await _subject_names(session, tasks)
    views = []
    for task, (client_name, organization_name) in zip(tasks, subjects, strict=True):
        view = TaskOut.model_validate(task)
        view.client_name = client_name
        view.organization_name = organization_name
        view.overdue = is_overdue(task, now)
        views.append(view)
    return views


# --- meetings --------------------------------------------------------------------------------


async def _participants(
    session: AsyncSession, client_id: int | None, participant_ids: Sequence[int]
) -> list[int]:
    wanted = list(dict.fromkeys([*([client_id] if client_id else []), *participant_ids]))
    missing = set(wanted) - await repository.existing_client_ids(session, wanted)
    if missing:
        raise BadReference(f"clients {sorted(missing)}")
    return wanted


async def create_meeting(
    session: AsyncSession, data: MeetingIn, *, user_id: int, now: datetime
) -> Meeting:
    """A planned meeting, or, with a result, one that took place (logged closed)."""
    client_id, organization_id = await _subject(session, data.client_id, data.organization_id)
    assignee = data.assignee_id if data.assignee_id is not None else user_id
    await _check_user(session, assignee)
    await _check_call(session, data.call_id)
    people = await _participants(session, client_id, data.participant_ids)
    result = (data.result or "").strip() or None
    meeting = Meeting(
        subject=data.subject.strip(),
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        place=data.place.strip(),
        client_id=client_id,
        organization_id=organization_id,
        assignee_id=assignee,
        remind_at=data.remind_at,
        call_id=data.call_id,
        created_by=user_id,
        result=result,
        done_at=now if result else None,
        closed_by=user_id if result else None,
    )
    session.add(meeting)
    await session.flush()
    await repository.set_participants(session, meeting.id, people)
    return meeting


async def get_meeting(session: AsyncSession, meeting_id: int) -> Meeting:
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(f"meeting {meeting_id}")
    return meeting


async def update_meeting(
    session: AsyncSession,
    meeting_id: int,
    data: MeetingPatch,
    *,
    user_id: int,
    is_supervisor: bool,
) -> Meeting:
    meeting = await get_meeting(session, meeting_id)
    _ensure_may_change(meeting, user_id, is_supervisor)
    changes = data.model_dump(exclude_unset=True)
    for field in ("subject", "starts_at", "place"):
        if changes.get(field) is not None:
            setattr(meeting, field, changes[field])
    if "ends_at" in changes:
        meeting.ends_at = changes["ends_at"]
    if meeting.ends_at is not None and meeting.ends_at < meeting.starts_at:
        raise BadReference("ends_at is before starts_at")
    if "assignee_id" in changes:
        await _check_user(session, changes["assignee_id"])
        meeting.assignee_id = changes["assignee_id"]
    if "remind_at" in changes:
        meeting.remind_at = changes["remind_at"]
        meeting.reminded_at = None
    if data.participant_ids is not None:
        people = await _participants(session, meeting.client_id, data.participant_ids)
        await repository.set_participants(session, meeting.id, people)
    await session.flush()
    return meeting


async def close_meeting(
    session: AsyncSession,
    meeting_id: int,
    result: str,
    *,
    user_id: int,
    is_supervisor: bool,
    now: datetime,
) -> Meeting:
    meeting = await get_meeting(session, meeting_id)
    _close(
        meeting,
        f"meeting {meeting_id}",
        result,
        user_id=user_id,
        is_supervisor=is_supervisor,
        now=now,
    )
    await session.flush()
    return meeting


async def meeting_views(
    session: AsyncSession, meetings: Sequence[Meeting], now: datetime
) -> list[MeetingOut]:
    people = await repository.participants(session, [m.id for m in meetings])
    subjects = await _subject_names(session, meetings)
    views = []
    for meeting, (client_name, organization_name) in zip(meetings, subjects, strict=True):
        view = MeetingOut.model_validate(meeting)
        view.participants = [Participant(id=i, name=n) for i, n in people.get(meeting.id, [])]
        view.client_name = client_name
        view.organization_name = organization_name
        view.overdue = is_overdue(meeting, now)
        views.append(view)
    return views
