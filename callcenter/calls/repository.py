"""SQL for call records and the PBX event log. No decisions here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from callcenter.auth.models import AgentExtension
from callcenter.calls.models import Call, Outcome, PbxEvent, UnansweredRing
from callcenter.calls.state import CallStatus
from callcenter.clients.models import Phone
from callcenter.db import utcnow
from callcenter.events import CallEvent, Direction, EndReason, Party, StopRingReason
from callcenter.jobs.models import JobEffect
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
    # One statement for any batch size (compiled once), sent as multi-row INSERTs; Core, as
    # the ORM's bulk insert layer costs more than the statement.
    connection = await session.connection()
    result = await connection.execute(_NEW_EVENTS[_dialect(session)], rows)
    return set(result.scalars().all())


_EVENTS_TABLE = PbxEvent.__table__
_NEW_EVENTS = {
    name: dialect.insert(_EVENTS_TABLE)
    .on_conflict_do_nothing(index_elements=["pbx", "event_id"])
    .returning(_EVENTS_TABLE.c.event_id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
"""The statements of the ingest path are built once: each batch runs them, and building
one costs more CPU than the database takes to run it. They run on the session's Core
connection: the ORM's execution layer around a statement that loads no entities costs more
than the database does too."""


@dataclass(slots=True)
class CallRecord:
    """A call row as ingest reads and writes it: plain data with no ORM session behind it
    (on the screen pop's path the unit of work cost more CPU than its statements). It has
    a field for every column of `calls` (a test keeps the two lists equal)."""

    pbx: str
    call_key: str
    direction: Direction
    status: CallStatus
    started_at: datetime
    id: int | None = None
    caller_num: str = ""
    caller_name: str = ""
    caller_e164: str | None = None
    callee_num: str = ""
    callee_e164: str | None = None
    queue: str | None = None
    agent: str | None = None
    agent_name: str = ""
    agent_user_id: int | None = None
    ringing_agents: list[str] = field(default_factory=list)
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    end_reason: EndReason | None = None
    ended_by: Party | None = None
    recording: str | None = None
    client_id: int | None = None
    organization_id: int | None = None
    outcome: Outcome | None = None
    outcome_by: int | None = None
    outcome_at: datetime | None = None
    notes: str = ""
    client_auto_created: bool = False
    wrong_number_rule: str | None = None
    wrong_number_reason: str | None = None
    wrong_number_verdicts: list[dict[str, Any]] | None = None
    auto_closed_at: datetime | None = None
    wrong_number_undone_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def stored_id(self) -> int:
        """The id of a call already inserted."""
        if self.id is None:
            raise ValueError(f"call {self.pbx}/{self.call_key} is not stored yet")
        return self.id


CALL_STATE_COLUMNS = (
    "direction",
    "caller_num",
    "caller_name",
    "callee_num",
    "status",
    "queue",
    "agent",
    "agent_name",
    "ringing_agents",
    "started_at",
    "queued_at",
    "answered_at",
    "ended_at",
    "end_reason",
    "ended_by",
    "recording",
    "wait_seconds",
    "talk_seconds",
    "agent_user_id",
)
"""What ingest alone writes of a call: its state, and the user who took it. A changed call's
UPDATE carries all of them, so one executemany writes every changed call of a batch."""

CALL_CALLER_COLUMNS = (
    "caller_e164",
    "callee_e164",
    "client_id",
    "organization_id",
    "client_auto_created",
)
"""Whose call it is, set when the caller's number is first known; people may change the
card a call belongs to later, so these are written only when ingest changed them."""

_CALLS = Call.__table__
_CALLS_BY_KEYS = {
    "postgresql": select(*_CALLS.c).where(
        _CALLS.c.pbx == bindparam("pbx"),
        _CALLS.c.call_key == any_(bindparam("keys", type_=ARRAY(String))),
    ),
    "sqlite": select(*_CALLS.c).where(
        _CALLS.c.pbx == bindparam("pbx"),
        _CALLS.c.call_key.in_(bindparam("keys", expanding=True)),
    ),
}
_INSERT_CALLS = insert(Call).returning(Call.id, sort_by_parameter_order=True)
_INSERT_RESERVED_CALLS = insert(Call)


def _update_calls(columns: Sequence[str]) -> Any:
    return (
        update(Call)
        .where(Call.id == bindparam("b_id"))
        .values({name: bindparam(f"v_{name}") for name in (*columns, "updated_at")})
    )


_UPDATE_CALL_STATES = _update_calls(CALL_STATE_COLUMNS)
_UPDATE_CALL_CALLERS = _update_calls(CALL_CALLER_COLUMNS)


async def calls_by_keys(
    session: AsyncSession, pbx: str, keys: Iterable[str]
) -> dict[str, CallRecord]:
    wanted = list(set(keys))
    if not wanted:
        return {}
    connection = await session.connection()
    rows = await connection.execute(_CALLS_BY_KEYS[_dialect(session)], {"pbx": pbx, "keys": wanted})
    return {row.call_key: CallRecord(**row._mapping) for row in rows}


async def insert_calls(session: AsyncSession, records: Sequence[CallRecord]) -> None:
    """Insert new calls and set the ids of those without one (reserved ids are kept): one
    statement for the batch, two when it mixes both."""
    now = utcnow()
    for record in records:
        record.updated_at = now
    connection = await session.connection()
    reserved = [_insert_values(r, with_id=True) for r in records if r.id is not None]
    if reserved:
        await connection.execute(_INSERT_RESERVED_CALLS, reserved)
    fresh = [r for r in records if r.id is None]
    if fresh:
        result = await connection.execute(
            _INSERT_CALLS, [_insert_values(r, with_id=False) for r in fresh]
        )
        for record, call_id in zip(fresh, result.scalars().all(), strict=True):
            record.id = call_id


def _insert_values(record: CallRecord, *, with_id: bool) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _CALL_FIELDS if with_id or name != "id"}


async def reserve_call_ids(session: AsyncSession, count: int) -> list[int]:
    """`count` ids taken from the calls' sequence for calls not stored yet (PostgreSQL;
    none on SQLite, which has no sequence to take them from)."""
    if _dialect(session) != "postgresql":
        return []
    connection = await session.connection()
    result = await connection.execute(_RESERVE_CALL_IDS, {"count": count})
    return list(result.scalars())


_RESERVE_CALL_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('calls', 'id')) FROM generate_series(1, :count)"
)


async def update_call_states(session: AsyncSession, records: Sequence[CallRecord]) -> None:
    """Write the `CALL_STATE_COLUMNS` of stored calls (one executemany)."""
    await _update(session, _UPDATE_CALL_STATES, CALL_STATE_COLUMNS, records)


async def update_call_callers(session: AsyncSession, records: Sequence[CallRecord]) -> None:
    """Write the `CALL_CALLER_COLUMNS` of stored calls (one executemany)."""
    await _update(session, _UPDATE_CALL_CALLERS, CALL_CALLER_COLUMNS, records)


async def _update(
    session: AsyncSession, statement: Any, columns: Sequence[str], records: Sequence[CallRecord]
) -> None:
    if not records:
        return
    now = utcnow()
    params = []
    for record in records:
        values = {f"v_{name}": getattr(record, name) for name in columns}
        values["b_id"] = record.id
        values["v_updated_at"] = record.updated_at = now
        params.append(values)
    connection = await session.connection()
    await connection.execute(statement, params)


_CALL_FIELDS = tuple(CallRecord.__dataclass_fields__)


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


@dataclass(frozen=True, slots=True)
class CardSubject:
    """Whose history a screen-pop card shows: a call's client, organisation and number."""

    client_id: int | None
    organization_id: int | None
    caller_e164: str | None
    exclude_call_id: int | None = None


@dataclass(frozen=True, slots=True)
class PastCall:
    """A call as a card lists it."""

    id: int
    started_at: datetime | None
    status: CallStatus
    end_reason: EndReason | None
    agent_name: str | None
    outcome: Outcome | None
    notes: str | None


@dataclass(frozen=True, slots=True)
class OpenTask:
    id: int
    title: str
    due_at: datetime | None


_PAST_CALL_COLUMNS = (
    Call.id,
    Call.started_at,
    Call.status,
    Call.end_reason,
    Call.agent_name,
    Call.outcome,
    Call.notes,
)


async def recent_calls_for(
    session: AsyncSession, subjects: Iterable[CardSubject], limit: int = 5
) -> dict[CardSubject, list[PastCall]]:
    """The last `limit` calls of each subject's client, organisation or number (its own
    call excluded), newest first: on PostgreSQL in one statement whatever their
    number (a LATERAL lookup per row of the unnested subjects), elsewhere one small
    statement each. Every statement keeps one shape, so it is compiled once."""
    wanted = [s for s in dict.fromkeys(subjects) if _names_someone(s)]
    found: dict[CardSubject, list[PastCall]] = {s: [] for s in wanted}
    if not wanted:
        return found
    if _dialect(session) == "postgresql":
        params = _history_params(wanted, limit)
        for ref, *values in await (await session.connection()).execute(_HISTORIES, params):
            found[wanted[ref]].append(PastCall(*values))
        return found
    for subject in wanted:
        params = {
            "client_id": subject.client_id,
            "organization_id": subject.organization_id,
            "e164": subject.caller_e164,
            "excluded": subject.exclude_call_id,
            "limit": limit,
        }
        found[subject] = [
            PastCall(*row) for row in await (await session.connection()).execute(_HISTORY, params)
        ]
    return found


def _names_someone(subject: CardSubject) -> bool:
    return any(
        v is not None for v in (subject.client_id, subject.organization_id, subject.caller_e164)
    )


def _history_query(
    client_id: ColumnElement[Any],
    organization_id: ColumnElement[Any],
    e164: ColumnElement[Any],
    excluded: ColumnElement[Any],
) -> Select[*tuple[Any, ...]]:
    """A subject's calls, newest first. A NULL value matches nothing (`=` with NULL is not
    true), so one shape serves every subject."""
    return (
        select(*_PAST_CALL_COLUMNS)
        .where(
            or_(
                Call.client_id == client_id,
                Call.organization_id == organization_id,
                Call.caller_e164 == e164,
            ),
            Call.id != func.coalesce(excluded, 0),
        )
        .order_by(Call.started_at.desc(), Call.id.desc())
    )


async def open_tasks_for(
    session: AsyncSession, owners: Iterable[tuple[int | None, int | None]], limit: int = 10
) -> dict[tuple[int | None, int | None], list[OpenTask]]:
    """The first `limit` open tasks of each (client id, organisation id) pair, soonest due
    first (undated last), queried as `recent_calls_for` does."""
    wanted = [o for o in dict.fromkeys(owners) if o != (None, None)]
    found: dict[tuple[int | None, int | None], list[OpenTask]] = {o: [] for o in wanted}
    if not wanted:
        return found
    if _dialect(session) == "postgresql":
        params = _tasks_params(wanted, limit)
        for ref, *values in await (await session.connection()).execute(_OPEN_TASKS_OF_MANY, params):
            found[wanted[ref]].append(OpenTask(*values))
        return found
    for client_id, organization_id in wanted:
        params = {"client_id": client_id, "organization_id": organization_id, "limit": limit}
        found[(client_id, organization_id)] = [
            OpenTask(*row)
            for row in await (await session.connection()).execute(_OPEN_TASKS, params)
        ]
    return found


async def card_lists(
    session: AsyncSession,
    subjects: Sequence[CardSubject],
    *,
    calls_limit: int = 5,
    tasks_limit: int = 10,
) -> tuple[dict[CardSubject, list[PastCall]], dict[tuple[int | None, int | None], list[OpenTask]]]:
    """`recent_calls_for` the subjects and `open_tasks_for` their owners; on PostgreSQL in
    one statement (a card's two lists, one round trip on the screen pop's path)."""
    if _dialect(session) != "postgresql":
        owners = [(s.client_id, s.organization_id) for s in subjects]
        return (
            await recent_calls_for(session, subjects, calls_limit),
            await open_tasks_for(session, owners, tasks_limit),
        )
    people = [s for s in dict.fromkeys(subjects) if _names_someone(s)]
    owners = [
        o
        for o in dict.fromkeys((s.client_id, s.organization_id) for s in subjects)
        if o != (None, None)
    ]
    recent: dict[CardSubject, list[PastCall]] = {s: [] for s in people}
    tasks: dict[tuple[int | None, int | None], list[OpenTask]] = {o: [] for o in owners}
    if not people and not owners:
        return recent, tasks
    params = _history_params(people, calls_limit, "h_") | _tasks_params(owners, tasks_limit, "t_")
    connection = await session.connection()
    for part, ref, *values in await connection.execute(_CARD_LISTS, params):
        if part == 0:
            recent[people[ref]].append(PastCall(*values[: len(_PAST_CALL_COLUMNS)]))
        else:
            task_id, title, due_at = values[0], values[-2], values[-1]
            tasks[owners[ref]].append(OpenTask(task_id, title, due_at))
    return recent, tasks


def _history_params(
    subjects: Sequence[CardSubject], limit: int, prefix: str = ""
) -> dict[str, Any]:
    """The arrays `_histories_query(prefix)` unnests (a subject's ref is its index)."""
    return {
        f"{prefix}refs": list(range(len(subjects))),
        f"{prefix}client_ids": [s.client_id for s in subjects],
        f"{prefix}organization_ids": [s.organization_id for s in subjects],
        f"{prefix}e164s": [s.caller_e164 for s in subjects],
        f"{prefix}excluded": [s.exclude_call_id for s in subjects],
        f"{prefix}limit": limit,
    }


def _tasks_params(
    owners: Sequence[tuple[int | None, int | None]], limit: int, prefix: str = ""
) -> dict[str, Any]:
    """The arrays `_open_tasks_of_many_query(prefix)` unnests (an owner's ref is its index)."""
    return {
        f"{prefix}refs": list(range(len(owners))),
        f"{prefix}client_ids": [client for client, _ in owners],
        f"{prefix}organization_ids": [org for _, org in owners],
        f"{prefix}limit": limit,
    }


def _tasks_query(
    client_id: ColumnElement[Any], organization_id: ColumnElement[Any]
) -> Select[*tuple[Any, ...]]:
    return (
        select(Task.id, Task.title, Task.due_at)
        .where(
            or_(Task.client_id == client_id, Task.organization_id == organization_id),
            Task.done_at.is_(None),
        )
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id)
    )


def _int_array(name: str) -> BindParameter[Any]:
    return bindparam(name, type_=ARRAY(Integer))


def _histories_query(prefix: str = "") -> Select[*tuple[Any, ...]]:
    """PostgreSQL: the history of every subject of the arrays, by a LATERAL lookup per row
    (bound parameters named with `prefix`, so a statement can hold two of these)."""
    given = (
        func.unnest(
            _int_array(f"{prefix}refs"),
            _int_array(f"{prefix}client_ids"),
            _int_array(f"{prefix}organization_ids"),
            bindparam(f"{prefix}e164s", type_=ARRAY(String)),
            _int_array(f"{prefix}excluded"),
        )
        .table_valued("ref", "client_id", "organization_id", "e164", "excluded")
        .render_derived()
    )
    history = (
        _history_query(given.c.client_id, given.c.organization_id, given.c.e164, given.c.excluded)
        .limit(bindparam(f"{prefix}limit", type_=Integer))
        .lateral()
    )
    return select(given.c.ref, *history.c).select_from(given).join(history, true())


def _open_tasks_of_many_query(prefix: str = "") -> Select[*tuple[Any, ...]]:
    given = (
        func.unnest(
            _int_array(f"{prefix}refs"),
            _int_array(f"{prefix}client_ids"),
            _int_array(f"{prefix}organization_ids"),
        )
        .table_valued("ref", "client_id", "organization_id")
        .render_derived()
    )
    tasks = (
        _tasks_query(given.c.client_id, given.c.organization_id)
        .limit(bindparam(f"{prefix}limit", type_=Integer))
        .lateral()
    )
    return select(given.c.ref, *tasks.c).select_from(given).join(tasks, true())


def _card_lists_query() -> Any:
    """PostgreSQL: `_histories_query` and `_open_tasks_of_many_query` in one statement, a
    part number telling their rows apart (NULLs fill the other part's columns)."""
    histories = _histories_query("h_").subquery()
    tasks = _open_tasks_of_many_query("t_").subquery()
    return union_all(
        select(
            literal(0).label("part"),
            *histories.c,
            cast(null(), Task.title.type).label("title"),
            cast(null(), Task.due_at.type).label("due_at"),
        ),
        select(
            literal(1),
            tasks.c.ref,
            tasks.c.id,
            *(null() for _ in _PAST_CALL_COLUMNS[1:]),
            tasks.c.title,
            tasks.c.due_at,
        ),
    )


# Built once: a screen pop runs them, and building one costs more than running it.
_HISTORIES = _histories_query()
_HISTORY = _history_query(
    bindparam("client_id", type_=Integer),
    bindparam("organization_id", type_=Integer),
    bindparam("e164", type_=String),
    bindparam("excluded", type_=Integer),
).limit(bindparam("limit", type_=Integer))
_OPEN_TASKS_OF_MANY = _open_tasks_of_many_query()
_OPEN_TASKS = _tasks_query(
    bindparam("client_id", type_=Integer), bindparam("organization_id", type_=Integer)
).limit(bindparam("limit", type_=Integer))
_CARD_LISTS = _card_lists_query()


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


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


# -- wrong numbers (callcenter.calls.auto_close) --------------------------------------------


async def count_wrong_number_marks(
    session: AsyncSession, e164: str, *, since: datetime, before: datetime, exclude_call_id: int
) -> int:
    """Calls from `e164` started in [since, before) that stand marked as a wrong number."""
    total = await session.scalar(
        select(func.count(Call.id)).where(
            Call.caller_e164 == e164,
            Call.outcome == Outcome.WRONG_NUMBER,
            Call.id != exclude_call_id,
            Call.started_at >= since,
            Call.started_at < before,
        )
    )
    return int(total or 0)


async def close_as_wrong_number(
    session: AsyncSession,
    call_id: int,
    *,
    rule: str,
    reason: str,
    verdicts: list[dict[str, object]],
    now: datetime,
) -> bool:
    """Mark an ended call a wrong number unless a person got there first; whether it did.

    One conditional UPDATE, so an outcome, notes or an undo committed meanwhile by someone
    else always win over the rules.
    """
    result = await session.execute(
        update(Call)
        .where(
            Call.id == call_id,
            Call.status == CallStatus.ENDED,
            Call.outcome.is_(None),
            func.trim(Call.notes) == "",
            Call.wrong_number_undone_at.is_(None),
        )
        .values(
            outcome=Outcome.WRONG_NUMBER,
            outcome_at=now,
            wrong_number_rule=rule,
            wrong_number_reason=reason,
            wrong_number_verdicts=verdicts,
            auto_closed_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def undo_auto_close(session: AsyncSession, call_id: int, *, now: datetime) -> bool:
    """Reopen a call the rules closed (and nobody changed since); whether it did."""
    result = await session.execute(
        update(Call)
        .where(
            Call.id == call_id,
            Call.outcome == Outcome.WRONG_NUMBER,
            Call.auto_closed_at.is_not(None),
            Call.outcome_by.is_(None),
            Call.wrong_number_undone_at.is_(None),
        )
        .values(outcome=None, outcome_at=None, wrong_number_undone_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def ended_calls_lacking_effect(
    session: AsyncSession, *, key_prefix: str, since: datetime, until: datetime, limit: int
) -> Sequence[tuple[int, str | None]]:
    """(id, recording) of calls started since `since` and ended before `until` that have no
    job effect `<key_prefix><id>`, oldest first."""
    key = literal(key_prefix) + cast(Call.id, String)
    rows = await session.execute(
        select(Call.id, Call.recording)
        .where(
            Call.started_at >= since,
            Call.ended_at < until,
            ~select(JobEffect.id).where(JobEffect.key == key).exists(),
        )
        .order_by(Call.started_at)
        .limit(limit)
    )
    return [(row.id, row.recording) for row in rows]


async def rows_referring_to_client(
    session: AsyncSession, client_id: int, *, ignore_call_id: int
) -> dict[str, int]:
    """Rows of any table that point at the client (its own phones and one call aside).

    Read from the models' foreign keys, so a table added later counts without a change here.
    """
    from callcenter.models import Base

    found: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        if table.name == "phones":
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name != "clients" or fk.column.name != "id":
                continue
            query = select(func.count()).select_from(table).where(fk.parent == client_id)
            if table.name == Call.__tablename__:
                query = query.where(table.c.id != ignore_call_id)
            count = int(await session.scalar(query) or 0)
            if count:
                found[f"{table.name}.{fk.parent.name}"] = count
    return found


async def phone_count_of_client(session: AsyncSession, client_id: int) -> int:
    total = await session.scalar(select(func.count(Phone.id)).where(Phone.client_id == client_id))
    return int(total or 0)


async def lock_pbx_writes(session: AsyncSession, pbx: str) -> None:
    """Serialise the commits of one PBX's call writers until this transaction ends.

    PostgreSQL: a transaction-scoped advisory lock on the PBX. SQLite has one writer at a
    time already: this transaction holds the write lock since its first insert.
    """
    if _dialect(session) == "postgresql":
        await (await session.connection()).execute(
            _PBX_WRITES_LOCK, {"lock": f"callcenter:pbx-writes:{pbx}"}
        )


_PBX_WRITES_LOCK = select(
    func.pg_advisory_xact_lock(func.hashtextextended(bindparam("lock", type_=String), 0))
)


# -- agents' unanswered rings (the reports' missed calls) ----------------------------------

RING_STOPPED = "agent_stopped_ringing"
"""The `kind` of `events.AgentStoppedRinging` in the event log."""


@dataclass(frozen=True, slots=True)
class RingCallFacts:
    """The facts of a call that its unanswered rings copy (`UnansweredRing`)."""

    call_id: int
    ended_at: datetime | None
    answered_by: int | None


async def add_unanswered_rings(
    session: AsyncSession, rings: Sequence[tuple[RingCallFacts, str, datetime]]
) -> None:
    """Store (call facts, agent interface, stop time) rings; a call and agent stored before
    keep the earlier stop."""
    if not rings:
        return
    rows = [
        {
            "call_id": facts.call_id,
            "agent": agent,
            "stopped_at": stopped_at,
            "call_ended_at": facts.ended_at,
            "call_answered_by": facts.answered_by,
        }
        for facts, agent, stopped_at in rings
    ]
    await (await session.connection()).execute(_ADD_UNANSWERED_RINGS[_dialect(session)], rows)


def _add_unanswered_rings_statement(upsert: Any) -> Any:
    statement = upsert(UnansweredRing)
    return statement.on_conflict_do_update(
        index_elements=[UnansweredRing.call_id, UnansweredRing.agent],
        set_={"stopped_at": statement.excluded.stopped_at},
        where=statement.excluded.stopped_at < UnansweredRing.stopped_at,
    )


_ADD_UNANSWERED_RINGS = {
    "postgresql": _add_unanswered_rings_statement(postgresql.insert),
    "sqlite": _add_unanswered_rings_statement(sqlite.insert),
}


async def rebuild_unanswered_rings(session: AsyncSession) -> None:
    """Derive every call's unanswered rings afresh from the event log, as ingest writes them
    (the migration's backfill does the same; benchmarks and repairs use this)."""
    agent = PbxEvent.payload["agent"].as_string()
    answered_by = case((Call.answered_at.is_not(None), Call.agent_user_id), else_=None)
    rings = (
        select(Call.id, agent, func.min(PbxEvent.at), Call.ended_at, answered_by)
        .select_from(PbxEvent)
        .join(Call, and_(Call.pbx == PbxEvent.pbx, Call.call_key == PbxEvent.call_key))
        .where(
            PbxEvent.kind == RING_STOPPED,
            PbxEvent.payload["reason"].as_string() == StopRingReason.NO_ANSWER.value,
        )
        .group_by(Call.id, agent)
    )
    columns = ["call_id", "agent", "stopped_at", "call_ended_at", "call_answered_by"]
    await session.flush()
    connection = await session.connection()
    await connection.execute(delete(UnansweredRing))
    await connection.execute(insert(UnansweredRing).from_select(columns, rings))
