"""Decisions about the client card: its timeline, tags, notes, segments, ranks and the person
on a company call. Nothing here commits; the API edge does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import get_args

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import AuditEntry
from callcenter.calls import service as calls
from callcenter.calls.models import Call
from callcenter.clients import service as clients
from callcenter.crm import repository
from callcenter.crm.models import ClientRank, Note, Segment, Tag
from callcenter.crm.ranking import AbcClass, RankBasis, abc_classes
from callcenter.crm.repository import Scope
from callcenter.crm.schemas import (
    CallEntry,
    MeetingEntry,
    NoteEntry,
    Person,
    RecordEntry,
    SegmentIn,
    SegmentPatch,
    TaskEntry,
    TimelineEntry,
    TimelinePage,
)
from callcenter.crm.segments import MailingRow, SegmentFilter, clean_tag_name, mailing_csv
from callcenter.crm.timeline import (
    Bound,
    TimelineKey,
    bound_for,
    decode_cursor,
    encode_cursor,
    merge_page,
)
from callcenter.db import utcnow
from callcenter.tasks.models import Meeting, Task
from callcenter.tasks.service import is_overdue

NotFound = clients.NotFound


# --- timeline --------------------------------------------------------------------------------


async def client_scope(session: AsyncSession, client_id: int) -> Scope:
    """A person's own history (NotFound if there is no such card)."""
    await clients.get_client(session, client_id)
    return Scope(client_ids=(client_id,))


async def organization_scope(session: AsyncSession, organization_id: int) -> Scope:
    """An organisation's history: its own events and those of all its persons."""
    await clients.get_organization(session, organization_id)
    persons = await repository.person_ids_of(session, organization_id)
    return Scope(client_ids=tuple(persons), organization_id=organization_id)


Row = Call | Task | Meeting | Note | AuditEntry


def _key(row: Row) -> TimelineKey:
    if isinstance(row, Call):
        return TimelineKey(row.started_at, "call", row.id)
    if isinstance(row, Task):
        return TimelineKey(row.created_at, "task", row.id)
    if isinstance(row, Meeting):
        return TimelineKey(row.starts_at, "meeting", row.id)
    if isinstance(row, Note):
        return TimelineKey(row.created_at, "note", row.id)
    return TimelineKey(row.at, "record", row.id)


async def timeline(
    session: AsyncSession, scope: Scope, *, before: str | None, limit: int, now: datetime
) -> TimelinePage:
    """Calls, tasks, meetings, notes and card records of `scope`, newest first, one page
    (BadCursor for a `before` this server did not give out)."""
    cursor = decode_cursor(before) if before else None

    def bound(kind: str) -> Bound | None:
        return bound_for(cursor, kind) if cursor else None

    fetch = limit + 1
    sources: list[Sequence[Row]] = [
        await repository.timeline_calls(session, scope, bound("call"), fetch),
        await repository.timeline_tasks(session, scope, bound("task"), fetch),
        await repository.timeline_meetings(session, scope, bound("meeting"), fetch),
        await repository.timeline_notes(session, scope, bound("note"), fetch),
        await repository.timeline_records(session, scope, bound("record"), fetch),
    ]
    page, next_key = merge_page(sources, _key, limit)
    entries = await _entries(session, page, now)
    return TimelinePage(items=entries, next_before=encode_cursor(next_key) if next_key else None)


async def _entries(session: AsyncSession, rows: list[Row], now: datetime) -> list[TimelineEntry]:
    meetings = [r.id for r in rows if isinstance(r, Meeting)]
    participants = await repository.participants_of(session, meetings)
    user_ids: list[int | None] = []
    for row in rows:
        if isinstance(row, Task | Meeting):
            user_ids.append(row.assignee_id)
        elif isinstance(row, Note):
            user_ids.append(row.author_id)
        elif isinstance(row, AuditEntry):
            user_ids.append(row.user_id)
    names = await repository.user_names(session, user_ids)

    def person(user_id: int | None) -> Person | None:
        if user_id is None or user_id not in names:
            return None
        return Person(id=user_id, name=names[user_id])

    entries: list[TimelineEntry] = []
    for row in rows:
        if isinstance(row, Call):
            entries.append(_call_entry(row))
        elif isinstance(row, Task):
            entries.append(
                TaskEntry(
                    id=row.id,
                    at=row.created_at,
                    client_id=row.client_id,
                    organization_id=row.organization_id,
                    title=row.title,
                    description=row.description,
                    due_at=row.due_at,
                    done_at=row.done_at,
                    result=row.result,
                    overdue=is_overdue(row, now),
                    assignee=person(row.assignee_id),
                    call_id=row.call_id,
                )
            )
        elif isinstance(row, Meeting):
            entries.append(
                MeetingEntry(
                    id=row.id,
                    at=row.starts_at,
                    client_id=row.client_id,
                    organization_id=row.organization_id,
                    subject=row.subject,
                    starts_at=row.starts_at,
                    ends_at=row.ends_at,
                    place=row.place,
                    result=row.result,
                    done_at=row.done_at,
                    assignee=person(row.assignee_id),
                    participants=[
                        Person(id=cid, name=name) for cid, name in participants.get(row.id, [])
                    ],
                )
            )
        elif isinstance(row, Note):
            entries.append(
                NoteEntry(
                    id=row.id,
                    at=row.created_at,
                    client_id=row.client_id,
                    organization_id=row.organization_id,
                    text=row.text,
                    author=person(row.author_id),
                    call_id=row.call_id,
                )
            )
        else:
            entries.append(_record_entry(row, person(row.user_id)))
    return entries


def _call_entry(row: Call) -> CallEntry:
    return CallEntry(
        id=row.id,
        at=row.started_at,
        client_id=row.client_id,
        organization_id=row.organization_id,
        direction=row.direction,
        status=row.status,
        end_reason=row.end_reason,
        outcome=row.outcome,
        notes=row.notes,
        caller_num=row.caller_num,
        queue=row.queue,
        agent_name=row.agent_name,
        agent_user_id=row.agent_user_id,
        wait_seconds=row.wait_seconds,
        talk_seconds=row.talk_seconds,
        has_recording=bool(row.recording),
    )


def _record_entry(row: AuditEntry, user: Person | None) -> RecordEntry:
    client_id = int(row.entity_id) if row.entity == "client" and row.entity_id.isdigit() else None
    org_id = (
        int(row.entity_id) if row.entity == "organization" and row.entity_id.isdigit() else None
    )
    return RecordEntry(
        id=row.id,
        at=row.at,
        client_id=client_id,
        organization_id=org_id,
        action=row.action,
        user=user,
        details=dict(row.details or {}),
    )


# --- the person on a company call ------------------------------------------------------------


async def pick_call_client(
    session: AsyncSession, *, call_id: int, user_id: int, may_edit_any: bool, client_id: int | None
) -> Call:
    """Set who is on the call (a person the operator picked), or clear the pick. A person of
    an organisation also sets the call's organisation."""
    row = await calls.editable_call(session, call_id, user_id=user_id, may_edit_any=may_edit_any)
    if client_id is None:
        row.client_id = None
    else:
        person = await clients.get_client(session, client_id)
        row.client_id = person.id
        row.organization_id = person.organization_id or row.organization_id
    await session.flush()
    return row


# --- tags and notes --------------------------------------------------------------------------


async def _tags_for(session: AsyncSession, names: Sequence[str]) -> list[Tag]:
    """The tags with these names, created when missing (names compared case-blind)."""
    cleaned = list(dict.fromkeys(n for n in (clean_tag_name(x) for x in names) if n))
    existing = await repository.tags_named(session, cleaned)
    tags = []
    for name in cleaned:
        tag = existing.get(name.lower())
        if tag is None:
            tag = Tag(name=name)
            session.add(tag)
            await session.flush()
            existing[name.lower()] = tag
        tags.append(tag)
    return tags


async def tag_client(session: AsyncSession, client_id: int, names: Sequence[str]) -> list[Tag]:
    """Put tags on a person's card; every tag the card has afterwards."""
    await clients.get_client(session, client_id)
    tags = await _tags_for(session, names)
    await repository.link_client_tags(session, client_id, [t.id for t in tags])
    return list(await repository.tags_of_client(session, client_id))


async def untag_client(session: AsyncSession, client_id: int, tag_id: int) -> None:
    await clients.get_client(session, client_id)
    if not await repository.unlink_client_tag(session, client_id, tag_id):
        raise NotFound(f"tag {tag_id} on client {client_id}")


async def tag_organization(
    session: AsyncSession, organization_id: int, names: Sequence[str]
) -> list[Tag]:
    await clients.get_organization(session, organization_id)
    tags = await _tags_for(session, names)
    await repository.link_organization_tags(session, organization_id, [t.id for t in tags])
    return list(await repository.tags_of_organization(session, organization_id))


async def untag_organization(session: AsyncSession, organization_id: int, tag_id: int) -> None:
    await clients.get_organization(session, organization_id)
    if not await repository.unlink_organization_tag(session, organization_id, tag_id):
        raise NotFound(f"tag {tag_id} on organization {organization_id}")


async def add_note(
    session: AsyncSession,
    *,
    author_id: int,
    text: str,
    client_id: int | None = None,
    organization_id: int | None = None,
    call_id: int | None = None,
) -> Note:
    """Append a note to a person's or an organisation's history."""
    if client_id is not None:
        person = await clients.get_client(session, client_id)
        organization_id = organization_id or person.organization_id
    elif organization_id is not None:
        await clients.get_organization(session, organization_id)
    else:
        raise ValueError("a note needs a client or an organisation")
    if call_id is not None and await session.get(Call, call_id) is None:
        raise NotFound(f"call {call_id}")
    note = Note(
        client_id=client_id,
        organization_id=organization_id,
        call_id=call_id,
        author_id=author_id,
        text=text.strip(),
    )
    session.add(note)
    await session.flush()
    return note


# --- segments and the mailing list ----------------------------------------------------------


async def create_segment(session: AsyncSession, data: SegmentIn, user_id: int) -> Segment:
    segment = Segment(
        name=data.name.strip(), filter=data.filter.model_dump(mode="json"), created_by=user_id
    )
    session.add(segment)
    await session.flush()
    return segment


async def get_segment(session: AsyncSession, segment_id: int) -> Segment:
    segment = await session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"segment {segment_id}")
    return segment


async def update_segment(session: AsyncSession, segment_id: int, data: SegmentPatch) -> Segment:
    segment = await get_segment(session, segment_id)
    if data.name is not None:
        segment.name = data.name.strip()
    if data.filter is not None:
        segment.filter = data.filter.model_dump(mode="json")
    await session.flush()
    return segment


async def delete_segment(session: AsyncSession, segment_id: int) -> None:
    await session.delete(await get_segment(session, segment_id))
    await session.flush()


def filter_of(segment: Segment) -> SegmentFilter:
    return SegmentFilter.model_validate(segment.filter or {})


async def mailing_list(session: AsyncSession, segment: SegmentFilter) -> tuple[str, list[int]]:
    """The segment's members as CSV (name, organisation, position, email, E.164 phones) and
    their ids, for the audit entry."""
    members, phones = await repository.mailing_source(session, segment)
    rows = [
        MailingRow(
            name=name,
            organization=organization or "",
            position=position,
            email=email or "",
            phones=tuple(phones.get(client_id, [])),
        )
        for client_id, name, organization, position, email in members
    ]
    return mailing_csv(rows), [m[0] for m in members]


# --- ABC ranking -----------------------------------------------------------------------------


async def recompute_abc(
    session: AsyncSession,
    by: RankBasis = "calls",
    *,
    now: datetime | None = None,
    days: int = 365,
) -> dict[AbcClass, int]:
    """Rank every client A/B/C by their calls (or talk time, or sales) in the last `days`
    before `now` (default: this moment); the previous ranks by that measure are replaced. How
    many clients fell in each class. On demand from the API, and periodically from a job."""
    if by not in get_args(RankBasis):
        raise ValueError(f"cannot rank by {by!r}")
    now = now or utcnow()
    scores = await repository.client_scores(session, by, now - timedelta(days=days))
    classes = abc_classes(scores)
    await repository.replace_ranks(
        session,
        by,
        [
            {
                "client_id": client_id,
                "abc_class": cls.value,
                "score": scores[client_id],
                "basis": by,
                "computed_at": now,
            }
            for client_id, cls in classes.items()
        ],
    )
    counts = dict.fromkeys(AbcClass, 0)
    for cls in classes.values():
        counts[cls] += 1
    return counts


async def ranks_of(session: AsyncSession, client_id: int) -> Sequence[ClientRank]:
    """The client's class by each measure it was ranked by."""
    await clients.get_client(session, client_id)
    return await repository.ranks_of(session, client_id)
