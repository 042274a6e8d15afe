"""SQL for the client card: timeline sources, tags, segments, ranks and the audit log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from callcenter.auth.models import AuditEntry, User
from callcenter.calls.models import Call, Outcome
from callcenter.clients.models import Client, Organization, Phone
from callcenter.crm.models import ClientRank, ClientTag, Note, OrganizationTag, Segment, Tag
from callcenter.crm.ranking import AbcClass
from callcenter.crm.segments import SegmentFilter
from callcenter.crm.timeline import Bound
from callcenter.tasks.models import Meeting, MeetingParticipant, Task

# --- timeline sources ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose history: some persons, and maybe their organisation's own events too."""

    client_ids: tuple[int, ...]
    organization_id: int | None = None


RECORD_ACTIONS = ("create", "update", "client.imported", "client.merged")
"""Audit actions on a card that its timeline shows."""
ORGANIZATION_RECORD_ACTIONS = ("create", "update", "organization.imported", "organization.merged")


def _below(
    at: InstrumentedAttribute[datetime], ident: InstrumentedAttribute[int], bound: Bound | None
) -> ColumnElement[bool]:
    """Rows of one source that sort below the cursor `bound` was made from."""
    if bound is None:
        return literal(True)
    if not bound.equal_at:
        return at < bound.at
    if bound.id_below is None:
        return at <= bound.at
    return or_(at < bound.at, and_(at == bound.at, ident < bound.id_below))


def _owned_by(model: type[Call | Task | Meeting | Note], scope: Scope) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if scope.client_ids:
        conditions.append(model.client_id.in_(scope.client_ids))
    if scope.organization_id is not None:
        conditions.append(model.organization_id == scope.organization_id)
    return or_(*conditions) if conditions else false()


async def timeline_calls(
    session: AsyncSession, scope: Scope, bound: Bound | None, limit: int
) -> Sequence[Call]:
    query = (
        select(Call)
        .where(_owned_by(Call, scope), _below(Call.started_at, Call.id, bound))
        .order_by(Call.started_at.desc(), Call.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def timeline_tasks(
    session: AsyncSession, scope: Scope, bound: Bound | None, limit: int
) -> Sequence[Task]:
    query = (
        select(Task)
        .where(_owned_by(Task, scope), _below(Task.created_at, Task.id, bound))
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def timeline_meetings(
    session: AsyncSession, scope: Scope, bound: Bound | None, limit: int
) -> Sequence[Meeting]:
    taking_part = select(MeetingParticipant.meeting_id).where(
        MeetingParticipant.client_id.in_(scope.client_ids)
    )
    query = (
        select(Meeting)
        .where(
            or_(_owned_by(Meeting, scope), Meeting.id.in_(taking_part)),
            _below(Meeting.starts_at, Meeting.id, bound),
        )
        .order_by(Meeting.starts_at.desc(), Meeting.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def timeline_notes(
    session: AsyncSession, scope: Scope, bound: Bound | None, limit: int
) -> Sequence[Note]:
    query = (
        select(Note)
        .where(_owned_by(Note, scope), _below(Note.created_at, Note.id, bound))
        .order_by(Note.created_at.desc(), Note.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def timeline_records(
    session: AsyncSession, scope: Scope, bound: Bound | None, limit: int
) -> Sequence[AuditEntry]:
    """Audit entries that changed the cards of the scope (created, changed, imported, merged)."""
    conditions: list[ColumnElement[bool]] = []
    if scope.client_ids:
        conditions.append(
            and_(
                AuditEntry.entity == "client",
                AuditEntry.entity_id.in_([str(i) for i in scope.client_ids]),
                AuditEntry.action.in_(RECORD_ACTIONS),
            )
        )
    if scope.organization_id is not None:
        conditions.append(
            and_(
                AuditEntry.entity == "organization",
                AuditEntry.entity_id == str(scope.organization_id),
                AuditEntry.action.in_(ORGANIZATION_RECORD_ACTIONS),
            )
        )
    if not conditions:
        return []
    query = (
        select(AuditEntry)
        .where(or_(*conditions), _below(AuditEntry.at, AuditEntry.id, bound))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def participants_of(
    session: AsyncSession, meeting_ids: Sequence[int]
) -> dict[int, list[tuple[int, str]]]:
    """Per meeting: (client id, name) of each participant, by name."""
    if not meeting_ids:
        return {}
    query = (
        select(MeetingParticipant.meeting_id, Client.id, Client.name)
        .join(Client, Client.id == MeetingParticipant.client_id)
        .where(MeetingParticipant.meeting_id.in_(meeting_ids))
        .order_by(Client.name)
    )
    found: dict[int, list[tuple[int, str]]] = {}
    for meeting_id, client_id, name in await session.execute(query):
        found.setdefault(meeting_id, []).append((client_id, name))
    return found


async def user_names(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
    return {uid: name for uid, name in rows}


async def person_ids_of(session: AsyncSession, organization_id: int) -> list[int]:
    rows = await session.scalars(select(Client.id).where(Client.organization_id == organization_id))
    return list(rows)


# --- tags ------------------------------------------------------------------------------------


async def tags_named(session: AsyncSession, names: Iterable[str]) -> dict[str, Tag]:
    """Existing tags by lower-case name."""
    lowered = {n.lower() for n in names}
    if not lowered:
        return {}
    rows = await session.scalars(select(Tag).where(func.lower(Tag.name).in_(lowered)))
    return {t.name.lower(): t for t in rows}


async def all_tags(session: AsyncSession) -> Sequence[Tag]:
    return (await session.scalars(select(Tag).order_by(func.lower(Tag.name)))).all()


async def tags_of_client(session: AsyncSession, client_id: int) -> Sequence[Tag]:
    query = (
        select(Tag)
        .join(ClientTag, ClientTag.tag_id == Tag.id)
        .where(ClientTag.client_id == client_id)
        .order_by(func.lower(Tag.name))
    )
    return (await session.scalars(query)).all()


async def tags_of_organization(session: AsyncSession, organization_id: int) -> Sequence[Tag]:
    query = (
        select(Tag)
        .join(OrganizationTag, OrganizationTag.tag_id == Tag.id)
        .where(OrganizationTag.organization_id == organization_id)
        .order_by(func.lower(Tag.name))
    )
    return (await session.scalars(query)).all()


async def link_client_tags(session: AsyncSession, client_id: int, tag_ids: Iterable[int]) -> None:
    present = set(
        await session.scalars(select(ClientTag.tag_id).where(ClientTag.client_id == client_id))
    )
    new = [{"client_id": client_id, "tag_id": t} for t in set(tag_ids) - present]
    if new:
        await session.execute(insert(ClientTag), new)


async def link_organization_tags(
    session: AsyncSession, organization_id: int, tag_ids: Iterable[int]
) -> None:
    present = set(
        await session.scalars(
            select(OrganizationTag.tag_id).where(OrganizationTag.organization_id == organization_id)
        )
    )
    new = [{"organization_id": organization_id, "tag_id": t} for t in set(tag_ids) - present]
    if new:
        await session.execute(insert(OrganizationTag), new)


async def unlink_client_tag(session: AsyncSession, client_id: int, tag_id: int) -> bool:
    result = await session.execute(
        delete(ClientTag).where(ClientTag.client_id == client_id, ClientTag.tag_id == tag_id)
    )
    return bool(getattr(result, "rowcount", 0))


async def unlink_organization_tag(session: AsyncSession, organization_id: int, tag_id: int) -> bool:
    result = await session.execute(
        delete(OrganizationTag).where(
            OrganizationTag.organization_id == organization_id, OrganizationTag.tag_id == tag_id
        )
    )
    return bool(getattr(result, "rowcount", 0))


# --- segments --------------------------------------------------------------------------------


def _tagged(tag_names: Sequence[str]) -> ColumnElement[bool]:
    """The client, or the client's organisation, carries one of these tags."""
    tag_ids = select(Tag.id).where(func.lower(Tag.name).in_([n.lower() for n in tag_names]))
    on_client = exists().where(ClientTag.client_id == Client.id, ClientTag.tag_id.in_(tag_ids))
    on_organization = exists().where(
        OrganizationTag.organization_id == Client.organization_id,
        OrganizationTag.tag_id.in_(tag_ids),
    )
    return or_(on_client, on_organization)


def segment_condition(segment: SegmentFilter) -> ColumnElement[bool]:
    """The WHERE clause on `clients` that selects a segment's members."""
    conditions: list[ColumnElement[bool]] = []
    if segment.organization_id is not None:
        conditions.append(Client.organization_id == segment.organization_id)
    if segment.tags:
        if segment.tags_match == "all":
            conditions.extend(_tagged([name]) for name in segment.tags)
        else:
            conditions.append(_tagged(segment.tags))
    if segment.abc_classes:
        rank = (
            select(ClientRank.abc_class)
            .where(ClientRank.client_id == Client.id, ClientRank.basis == segment.abc_basis)
            .scalar_subquery()
        )
        wanted = [c.value for c in segment.abc_classes]
        conditions.append(func.coalesce(rank, AbcClass.C.value).in_(wanted))
    if segment.last_call_after is not None or segment.last_call_before is not None:
        last_call = (
            select(func.max(Call.started_at)).where(Call.client_id == Client.id).scalar_subquery()
        )
        if segment.last_call_after is not None:
            conditions.append(last_call >= segment.last_call_after)
        if segment.last_call_before is not None:
            conditions.append(last_call < segment.last_call_before)
    if segment.has_phone is not None:
        has_phone = exists().where(Phone.client_id == Client.id)
        conditions.append(has_phone if segment.has_phone else ~has_phone)
    if segment.has_email is not None:
        has_email = and_(Client.email.is_not(None), Client.email != "")
        conditions.append(has_email if segment.has_email else ~has_email)
    return and_(literal(True), *conditions)


async def segment_page(
    session: AsyncSession, segment: SegmentFilter, *, offset: int, limit: int
) -> tuple[Sequence[Client], int]:
    condition = segment_condition(segment)
    total = await session.scalar(select(func.count(Client.id)).where(condition))
    rows = await session.scalars(
        select(Client).where(condition).order_by(Client.name, Client.id).offset(offset).limit(limit)
    )
    return rows.all(), int(total or 0)


MailingSource = tuple[list[tuple[int, str, str | None, str, str | None]], dict[int, list[str]]]


async def mailing_source(session: AsyncSession, segment: SegmentFilter) -> MailingSource:
    """Members as (id, name, organisation, position, email), by name; and their E.164 phones."""
    condition = segment_condition(segment)
    members = await session.execute(
        select(Client.id, Client.name, Organization.name, Client.position, Client.email)
        .outerjoin(Organization, Organization.id == Client.organization_id)
        .where(condition)
        .order_by(Client.name, Client.id)
    )
    phones: dict[int, list[str]] = {}
    phone_rows = await session.execute(
        select(Phone.client_id, Phone.e164)
        .where(Phone.client_id.in_(select(Client.id).where(condition)))
        .order_by(Phone.id)
    )
    for client_id, e164 in phone_rows:
        if client_id is None:
            continue
        numbers = phones.setdefault(client_id, [])
        if e164 not in numbers:
            numbers.append(e164)
    return [tuple(row) for row in members], phones  # type: ignore[misc]


# --- ranking ---------------------------------------------------------------------------------


async def client_scores(session: AsyncSession, by: str, since: datetime) -> dict[int, float]:
    """Every client's score since `since`: calls, talk seconds or sales (0 for the silent)."""
    scores: dict[int, float] = {cid: 0.0 for cid in await session.scalars(select(Client.id))}
    measure: Any
    conditions = [Call.client_id.is_not(None), Call.started_at >= since]
    if by == "talk_time":
        measure = func.sum(func.coalesce(Call.talk_seconds, 0.0))
    else:
        measure = func.count(Call.id)
        if by == "sales":
            conditions.append(Call.outcome == Outcome.SALE)
    rows = await session.execute(
        select(Call.client_id, measure).where(*conditions).group_by(Call.client_id)
    )
    for client_id, value in rows:
        if client_id in scores:
            scores[client_id] = float(value or 0)
    return scores


async def replace_ranks(session: AsyncSession, basis: str, rows: list[dict[str, Any]]) -> None:
    """The ranks by `basis` become `rows` (ranks by other measures stay)."""
    await session.execute(delete(ClientRank).where(ClientRank.basis == basis))
    if rows:
        await session.execute(insert(ClientRank), rows)


async def ranks_of(session: AsyncSession, client_id: int) -> Sequence[ClientRank]:
    query = select(ClientRank).where(ClientRank.client_id == client_id).order_by(ClientRank.basis)
    return (await session.scalars(query)).all()


# --- audit log (read only: nothing here or anywhere updates or deletes it) -------------------


def _mentions_client(client_id: int, dialect: str) -> ColumnElement[bool]:
    """Entries about the client: on its card, on one of its calls, or listing it in details
    (`ids` of a list view or export, `client_id` of an entry about something else)."""
    on_card = and_(AuditEntry.entity == "client", AuditEntry.entity_id == str(client_id))
    its_calls = select(cast(Call.id, String)).where(Call.client_id == client_id)
    on_call = and_(AuditEntry.entity == "call", AuditEntry.entity_id.in_(its_calls))
    listed: ColumnElement[bool]
    if dialect == "postgresql":
        details = cast(AuditEntry.details, JSONB)
        listed = or_(
            details.contains({"ids": [client_id]}), details.contains({"client_id": client_id})
        )
    else:
        value = func.json_each(AuditEntry.details, "$.ids").table_valued("value")
        listed = or_(
            exists(select(literal(1)).select_from(value).where(value.c.value == client_id)),
            func.json_extract(AuditEntry.details, "$.client_id") == client_id,
        )
    return or_(on_card, on_call, listed)


async def audit_entries(
    session: AsyncSession,
    *,
    client_id: int | None,
    user_id: int | None,
    action: str | None,
    entity: str | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> Sequence[AuditEntry]:
    """Entries matching every filter given, newest first (by id, which grows with time)."""
    query = select(AuditEntry)
    if client_id is not None:
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        query = query.where(_mentions_client(client_id, dialect))
    if user_id is not None:
        query = query.where(AuditEntry.user_id == user_id)
    if action is not None:
        query = query.where(_column_matches(AuditEntry.action, action))
    if entity is not None:
        query = query.where(AuditEntry.entity == entity)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    rows = await session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit))
    return rows.all()


def _column_matches(column: InstrumentedAttribute[str], pattern: str) -> ColumnElement[bool]:
    """Exact match, or a prefix match for "recording.*"-style patterns."""
    if pattern.endswith("*"):
        prefix = pattern[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(prefix + "%", escape="\\")
    return column == pattern


async def all_segments(session: AsyncSession) -> Sequence[Segment]:
    return (await session.scalars(select(Segment).order_by(func.lower(Segment.name)))).all()
