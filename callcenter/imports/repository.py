"""SQL of imports: what the base already holds for a file's keys, set-based writes, undo."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import AuditEntry
from callcenter.clients.models import Client, Organization, Phone
from callcenter.db import Base, utcnow
from callcenter.imports.models import (
    BatchStatus,
    ChangeAction,
    ImportBatch,
    ImportChange,
    ImportTemplate,
)
from callcenter.imports.normalize import NormalRow
from callcenter.imports.plan import BaseClient, BaseIndex, BaseOrganization

T = TypeVar("T")
IN_CHUNK = 10_000
"""Values per IN (...) list: under SQLite's (32,766 since 3.32) and asyncpg's (32,767)
bound-parameter limits, and few round trips for a file's 100,000 keys."""


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- batches and templates ------------------------------------------------------------------


async def get_batch(session: AsyncSession, batch_id: int) -> ImportBatch | None:
    return await session.get(ImportBatch, batch_id)


async def list_batches(session: AsyncSession, limit: int = 50) -> Sequence[ImportBatch]:
    query = select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


async def template_by_name(session: AsyncSession, name: str) -> ImportTemplate | None:
    return await session.scalar(select(ImportTemplate).where(ImportTemplate.name == name))


async def list_templates(session: AsyncSession) -> Sequence[ImportTemplate]:
    return (await session.scalars(select(ImportTemplate).order_by(ImportTemplate.name))).all()


# -- the base, for the keys of one file -------------------------------------------------------


def one_of(session: AsyncSession, column: Column[Any] | Any, values: Iterable[Any]) -> Any:
    """`column` is one of `values`, as ONE bound parameter whatever their number.

    PostgreSQL: ``= ANY(array)``; SQLite: ``IN (SELECT value FROM json_each(json))``. An
    expanding ``IN (...)`` would render and bind one parameter per value (most of the CPU of
    looking up a 100,000-row file's keys) and needs chunks under the drivers' limits.
    """
    items = sorted(set(values))
    if session.get_bind().dialect.name == "postgresql":
        element = Integer() if items and isinstance(items[0], int) else String()
        return column == any_(bindparam(None, items, type_=ARRAY(element)))
    each = func.json_each(bindparam(None, json.dumps(items, ensure_ascii=False)))
    return column.in_(select(literal_column("value")).select_from(each))


async def load_index(session: AsyncSession, rows: Sequence[NormalRow]) -> BaseIndex:
    """Owners of the file's numbers, e-mails, INNs and organisation names, and their cards."""
    e164s: set[str] = set()
    emails: set[str] = set()
    inns: set[str] = set()
    name_keys: set[str] = set()
    for row in rows:
        if row.person is not None:
            e164s.update(p.e164 for p in row.person.phones)
            emails.update(row.person.emails)
            if row.person.email:
                emails.add(row.person.email)
        if row.org is not None:
            e164s.update(p.e164 for p in row.org.phones)
            if row.org.inn:
                inns.add(row.org.inn)
            if row.org.name_key:
                name_keys.add(row.org.name_key)

    index = BaseIndex()
    client_ids: set[int] = set()
    org_ids: set[int] = set()
    if e164s:
        phones = select(
            Phone.e164, Phone.extension, Phone.shared, Phone.client_id, Phone.organization_id
        ).where(one_of(session, Phone.e164, e164s))
        for e164, extension, shared, client_id, org_id in await session.execute(phones):
            key = (e164, extension)
            if client_id is not None:
                index.phone_owners.setdefault(key, []).append(("client", client_id))
                client_ids.add(client_id)
            elif org_id is not None:
                index.phone_owners.setdefault(key, []).append(("organization", org_id))
                org_ids.add(org_id)
            if shared:
                index.shared_keys.add(key)
    if emails:
        # Exact matches use the index; the file's own spelling and lower case are both tried.
        by_email = select(Client.id, Client.email).where(one_of(session, Client.email, emails))
        for client_id, email in await session.execute(by_email):
            if email is None:
                continue
            ids = index.clients_by_email.setdefault(email.lower(), [])
            if client_id not in ids:
                ids.append(client_id)
            client_ids.add(client_id)
    if inns:
        by_inn = select(Organization.id, Organization.inn).where(
            one_of(session, Organization.inn, inns)
        )
        for org_id, inn in await session.execute(by_inn):
            if inn is not None:
                index.org_by_inn[inn] = org_id
                org_ids.add(org_id)
    if name_keys:
        from callcenter.clients.merge import organization_name_key

        for org_id, name in await session.execute(select(Organization.id, Organization.name)):
            name_key = organization_name_key(name)
            if name_key in name_keys:
                index.orgs_by_name_key.setdefault(name_key, []).append(org_id)
                org_ids.add(org_id)

    if client_ids:
        await _load_clients(session, index, Client.id, client_ids)
    org_ids.update(c.organization_id for c in index.clients.values() if c.organization_id)
    if org_ids:
        query = select(
            Organization.id, Organization.name, Organization.inn, Organization.email,
            Organization.notes,
        ).where(one_of(session, Organization.id, org_ids))  # fmt: skip
        for org_id, name, inn, email, notes in await session.execute(query):
            index.organizations[org_id] = BaseOrganization(org_id, name, inn, email, notes)
    if index.organizations:
        await _load_clients(session, index, Client.organization_id, index.organizations)
        for client in index.clients.values():
            if client.organization_id in index.organizations:
                contacts = index.contacts.setdefault(client.organization_id, [])
                contacts.append((client.id, client.name))
    return index


async def _load_clients(
    session: AsyncSession, index: BaseIndex, column: Any, values: Iterable[int]
) -> None:
    query = select(
        Client.id, Client.name, Client.position, Client.email, Client.organization_id,
        Client.notes,
    ).where(one_of(session, column, values))  # fmt: skip
    for client_id, name, position, email, org_id, notes in await session.execute(query):
        index.clients.setdefault(
            client_id, BaseClient(client_id, name, position, email, org_id, notes)
        )


# -- set-based writes ---------------------------------------------------------------------------


async def allocate_ids(session: AsyncSession, table: type[Base], count: int) -> list[int]:
    """`count` fresh primary keys for `table`.

    PostgreSQL: taken from the table's sequence. SQLite: after the largest id, which is safe
    because the caller's transaction has already written (it holds SQLite's one write lock,
    so nobody else can insert before it commits).
    """
    if count == 0:
        return []
    t = table_of(table)
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        query = text(
            "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
        )
        result = await session.execute(query, {"table": t.name, "n": count})
        return sorted(row[0] for row in result)
    largest = await session.scalar(select(func.coalesce(func.max(t.c.id), 0)))
    start = int(largest or 0) + 1
    return list(range(start, start + count))


async def insert_with_ids(
    session: AsyncSession,
    table: type[Base],
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
) -> list[int]:
    """Insert `records` (values of `columns`) in bulk with fresh ids; the ids, in order.

    The caller's transaction must already have written something (see allocate_ids)."""
    ids = await allocate_ids(session, table, len(records))
    await bulk_insert(
        session, table, ("id", *columns), [(i, *r) for i, r in zip(ids, records, strict=True)]
    )
    return ids


def _process_column(values: Sequence[Any], process: Callable[[Any], Any]) -> list[Any]:
    """`process` applied to a column's values, once per distinct value (a batch's rows share
    their timestamps, enum values and most JSON details)."""
    done: dict[Any, Any] = {}
    out = []
    for value in values:
        kind = type(value)
        key = id(value) if kind is dict or kind is list else (kind, value)
        if key not in done:
            done[key] = process(value)
        out.append(done[key])
    return out


async def bulk_insert(
    session: AsyncSession,
    table: type[Base],
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
) -> None:
    """Insert many rows through the driver's own bulk path, inside the session's transaction.

    PostgreSQL: COPY (asyncpg's copy_records_to_table); SQLite: one executemany. Values go
    through the columns' SQLAlchemy bind processors first, so they are stored exactly as an
    ORM insert would store them (UTC datetimes, enum values, JSON text).
    """
    if not records:
        return
    t = table_of(table)
    connection = await session.connection()
    dialect = connection.dialect
    processors = [t.c[name].type._cached_bind_processor(dialect) for name in columns]
    if any(processors):
        values = list(zip(*records, strict=True))
        for index, process in enumerate(processors):
            if process is not None:
                values[index] = tuple(_process_column(values[index], process))
        records = list(zip(*values, strict=True))
    # A statement through SQLAlchemy first: the driver transaction is begun lazily.
    await connection.execute(text("SELECT 1"))
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if dialect.name == "postgresql":
        await driver.copy_records_to_table(t.name, records=records, columns=list(columns))
    else:
        statement = insert(t).values({name: bindparam(name) for name in columns})
        compiled = statement.compile(dialect=dialect)
        positions = compiled.positiontup or list(columns)
        if list(positions) != list(columns):
            order = [list(columns).index(name) for name in positions]
            records = [tuple(r[i] for i in order) for r in records]
        await driver.executemany(str(compiled), records)


async def current_values(
    session: AsyncSession, table: type[Base], ids: Iterable[int], columns: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """`columns` of the rows `ids`, as they are now."""
    t = table_of(table)
    found: dict[int, dict[str, Any]] = {}
    for part in chunks(sorted(set(ids))):
        query = select(t.c.id, *[t.c[c] for c in columns]).where(t.c.id.in_(part))
        for row in await session.execute(query):
            found[row[0]] = dict(zip(columns, row[1:], strict=True))
    return found


async def update_rows(
    session: AsyncSession, table: type[Base], changes: Sequence[tuple[int, dict[str, Any]]]
) -> None:
    """Set each (id, values) pair; rows that change the same columns go in one executemany."""
    t = table_of(table)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in changes:
        columns = tuple(sorted(values))
        groups.setdefault(columns, []).append(
            {"row_id": row_id, **{f"new_{c}": values[c] for c in columns}}
        )
    for columns, params in groups.items():
        statement = (
            update(t)
            .where(t.c.id == bindparam("row_id"))
            .values({c: bindparam(f"new_{c}") for c in columns})
        )
        await session.execute(statement, params)


CHANGE_COLUMNS = ("batch_id", "entity", "entity_id", "action", "before", "after")
AUDIT_COLUMNS = ("at", "user_id", "action", "entity", "entity_id", "details")


async def record_changes(session: AsyncSession, records: Sequence[tuple[Any, ...]]) -> None:
    """Rows of import_changes, as tuples of CHANGE_COLUMNS."""
    await bulk_insert(session, ImportChange, CHANGE_COLUMNS, records)


async def record_audit(session: AsyncSession, records: Sequence[tuple[Any, ...]]) -> None:
    """Audit entries, as tuples of AUDIT_COLUMNS."""
    await bulk_insert(session, AuditEntry, AUDIT_COLUMNS, records)


async def claim(session: AsyncSession, batch_id: int) -> bool:
    """queued → running, atomically; whether this caller got it."""
    result = await session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch_id, ImportBatch.status == BatchStatus.QUEUED)
        .values(status=BatchStatus.RUNNING, started_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def stale_runs(session: AsyncSession, started_before: datetime) -> Sequence[int]:
    """Ids of batches still `running` that were claimed before `started_before`."""
    query = select(ImportBatch.id).where(
        ImportBatch.status == BatchStatus.RUNNING, ImportBatch.started_at < started_before
    )
    return (await session.scalars(query)).all()


async def give_up_run(
    session: AsyncSession, batch_id: int, started_before: datetime, code: str, message: str
) -> bool:
    """running → failed, atomically, if the run is still running and that old; whether it was."""
    result = await session.execute(
        update(ImportBatch)
        .where(
            ImportBatch.id == batch_id,
            ImportBatch.status == BatchStatus.RUNNING,
            ImportBatch.started_at < started_before,
        )
        .values(
            status=BatchStatus.FAILED, error_code=code, error_message=message, finished_at=utcnow()
        )
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def batches_by_stored_name(
    session: AsyncSession, names: Iterable[str]
) -> Sequence[ImportBatch]:
    query = select(ImportBatch).where(ImportBatch.stored_name.in_(list(names)))
    return (await session.scalars(query)).all()


async def set_progress(session: AsyncSession, batch_id: int, done: int) -> bool:
    """Progress of a running batch; False if it is no longer running (given up by a sweep)."""
    result = await session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch_id, ImportBatch.status == BatchStatus.RUNNING)
        .values(progress_done=done)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


# -- undo ---------------------------------------------------------------------------------------


def created_ids(batch_id: int, entity: str) -> Any:
    """A subquery: ids of the `entity` rows the batch created."""
    return select(ImportChange.entity_id).where(
        ImportChange.batch_id == batch_id,
        ImportChange.entity == entity,
        ImportChange.action == ChangeAction.CREATED,
    )


async def updated_changes(
    session: AsyncSession, batch_id: int, entity: str
) -> Sequence[ImportChange]:
    query = select(ImportChange).where(
        ImportChange.batch_id == batch_id,
        ImportChange.entity == entity,
        ImportChange.action == ChangeAction.UPDATED,
    )
    return (await session.scalars(query.order_by(ImportChange.id))).all()


def _referencing_columns(target: Table) -> list[Column[Any]]:
    import callcenter.models  # noqa: F401  (registers every domain's tables)

    return sorted(
        (
            fk.parent
            for table in Base.metadata.sorted_tables
            for fk in table.foreign_keys
            if fk.column.table is target and fk.column.name == "id"
        ),
        key=lambda c: (c.table.name, c.name),
    )


def updated_ids(batch_id: int, entity: str) -> Any:
    """A subquery: ids of the `entity` rows the batch changed."""
    return select(ImportChange.entity_id).where(
        ImportChange.batch_id == batch_id,
        ImportChange.entity == entity,
        ImportChange.action == ChangeAction.UPDATED,
    )


async def foreign_references(
    session: AsyncSession, batch_id: int, written_at: datetime
) -> dict[str, int]:
    """Rows not made by the batch that point at cards it created (calls, tasks, phones
    added later, persons moved into an imported organisation, ...): table.column → count.

    Numbers of cards the batch created are not recorded one by one (deleting the card
    deletes them); they carry the batch's `written_at` as their creation time instead."""
    found: dict[str, int] = {}
    phones = table_of(Phone)
    clients = table_of(Client)
    own: dict[str, ColumnElement[bool]] = {
        "phones": or_(
            phones.c.id.in_(created_ids(batch_id, "phone")), phones.c.created_at == written_at
        ),
        "clients": or_(
            clients.c.id.in_(created_ids(batch_id, "client")),
            clients.c.id.in_(updated_ids(batch_id, "client")),  # their old values come back
        ),
    }
    for target, entity in ((Client, "client"), (Organization, "organization")):
        for column in _referencing_columns(table_of(target)):
            table = column.table
            condition: ColumnElement[bool] = column.in_(created_ids(batch_id, entity))
            if table.name in own:
                condition = and_(condition, not_(own[table.name]))
            count = await session.scalar(select(func.count()).select_from(table).where(condition))
            if count:
                found[f"{table.name}.{column.name}"] = int(count)
    return found


async def phones_of_created_cards(session: AsyncSession, batch_id: int) -> int:
    """How many numbers the cards the batch created hold (they go with the cards)."""
    query = select(func.count()).where(
        or_(
            Phone.client_id.in_(created_ids(batch_id, "client")),
            Phone.organization_id.in_(created_ids(batch_id, "organization")),
        )
    )
    return int(await session.scalar(query) or 0)


async def delete_created(
    session: AsyncSession, batch_id: int, table: type[Base], entity: str
) -> int:
    t = table_of(table)
    result = await session.execute(delete(t).where(t.c.id.in_(created_ids(batch_id, entity))))
    return int(getattr(result, "rowcount", 0) or 0)


def parse_stored(column: str, value: Any) -> Any:
    """A value as kept in a change's JSON → the column's Python value."""
    if column.endswith("_at") and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value
