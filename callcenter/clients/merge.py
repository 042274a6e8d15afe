"""Merging duplicate cards (a person into a person, an organisation into an organisation).

The surviving card takes over every row that references the merged one (calls, tasks, phones
and whatever other domains add later: found through the metadata's foreign keys), fills its
own empty fields from it, and a snapshot of the merged card is kept in `client_merges`.

Also here: when two cards are probably the same (names that agree, shared numbers), used by
merge suggestions and by the import planner.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, aliased, mapped_column

from callcenter import audit
from callcenter.clients.models import Client, Organization, Phone
from callcenter.db import Base, utcnow

CardKind = Literal["client", "organization"]


class ClientMerge(Base):
    """A card merged into another: who into whom, by whom, and the merged card as it was."""

    __tablename__ = "client_merges"
    __table_args__ = (Index("ix_client_merges_survivor", "entity", "survivor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))
    """"client" or "organization"."""
    survivor_id: Mapped[int] = mapped_column(Integer)
    merged_id: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    merged_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    merged_at: Mapped[datetime] = mapped_column(default=utcnow)


class MergeError(ValueError):
    """The two cards cannot be merged (the same card, or one of them does not exist)."""


@dataclass(frozen=True, slots=True)
class MergeResult:
    entity: CardKind
    survivor_id: int
    merged_id: int
    moved: dict[str, int]
    """Rows moved to the survivor, per referencing table.column."""
    dropped_phones: int
    """The merged card's numbers the survivor already had."""


# -- names: when two cards are probably one -------------------------------------------------

_PUNCT_RE: Final = re.compile(r"[^\w\s]+", re.UNICODE)
_LEGAL_FORMS: Final = frozenset(
    {
        "ооо",
        "оао",
        "зао",
        "пао",
        "ао",
        "нао",
        "ип",
        "чп",
        "гуп",
        "муп",
        "фгуп",
        "нко",
        "ано",
        "тоо",
        "llc",
        "ltd",
        "inc",
        "gmbh",
        "plc",
        "corp",
        "co",
        "jsc",
        "ojsc",
        "cjsc",
    }
)


@functools.lru_cache(maxsize=65536)
def name_tokens(name: str) -> tuple[str, ...]:
    """Lower-case words of a name, ё folded to е, punctuation dropped (cached: an import
    compares the same names many times)."""
    text = unicodedata.normalize("NFKC", name).casefold().replace("ё", "е")
    return tuple(_PUNCT_RE.sub(" ", text).split())


@functools.lru_cache(maxsize=65536)
def organization_name_key(name: str) -> str:
    """`ООО «Ромашка»`, `Ромашка, ООО`, `ромашка`: one key, the words without legal forms."""
    words = [w for w in name_tokens(name) if w not in _LEGAL_FORMS]
    return " ".join(words) if words else " ".join(name_tokens(name))


def _token_matches(a: str, b: str) -> bool:
    """Equal words, or an initial and a word that starts with it."""
    if a == b:
        return True
    if len(a) == 1:
        return b.startswith(a)
    if len(b) == 1:
        return a.startswith(b)
    return False


def names_compatible(a: str, b: str) -> bool:
    """Whether two person names can be the same person.

    Word order is free (exports write "Имя Фамилия" and "Фамилия Имя"); an initial stands for
    a word ("Иванов И. И." ~ "Иванов Иван Иванович"); one of the names may have fewer words,
    but at least one whole word must agree. An empty name agrees with anything.
    """
    left, right = name_tokens(a), name_tokens(b)
    if not left or not right:
        return True
    short, long_ = (left, right) if len(left) <= len(right) else (right, left)
    free = list(long_)
    whole_word_agrees = False
    # Whole words first, so an initial cannot take the word a full match needs.
    pending = []
    for word in short:
        if len(word) > 1 and word in free:
            free.remove(word)
            whole_word_agrees = True
        else:
            pending.append(word)
    for word in pending:
        match = next((other for other in free if _token_matches(word, other)), None)
        if match is None:
            return False
        free.remove(match)
    return whole_word_agrees


def more_complete_name(current: str, incoming: str) -> str:
    """Of two compatible names, the one that says more (more words, then more letters)."""
    if not incoming.strip():
        return current
    if not current.strip():
        return incoming
    key_current = (len(name_tokens(current)), len(current.strip()))
    key_incoming = (len(name_tokens(incoming)), len(incoming.strip()))
    return incoming if key_incoming > key_current else current


# -- moving references ------------------------------------------------------------------------


def _referencing_columns(target: Table) -> list[Column[Any]]:
    """Every column of every table that has a foreign key to `target.id`."""
    import callcenter.models  # noqa: F401  (registers every domain's tables)

    found = []
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is target and fk.column.name == "id":
                found.append(fk.parent)
    return sorted(found, key=lambda c: (c.table.name, c.name))


def _unique_column_sets(table: Table, column: Column[Any]) -> list[list[str]]:
    """The other columns of each unconditional unique key of `table` that includes `column`."""
    sets: list[list[str]] = []
    keys: list[Sequence[Column[Any]]] = [list(table.primary_key.columns)]
    keys += [list(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)]
    keys += [
        list(i.columns)
        for i in table.indexes
        if i.unique
        and i.dialect_options["postgresql"].get("where") is None
        and i.dialect_options["sqlite"].get("where") is None
    ]
    for key in keys:
        names = [c.name for c in key]
        if column.name in names and len(names) > 1:
            sets.append([n for n in names if n != column.name])
    return sets


async def _drop_phone_duplicates(
    session: AsyncSession, owner: Column[Any], survivor_id: int, merged_id: int
) -> int:
    """Delete the merged card's numbers that the survivor already holds."""
    survivor_phone = aliased(Phone)
    survivor_owner = getattr(survivor_phone, owner.name)
    already_held = exists(
        select(survivor_phone.id).where(
            survivor_owner == survivor_id,
            survivor_phone.e164 == Phone.e164,
            survivor_phone.extension == Phone.extension,
        )
    )
    result = await session.execute(
        delete(Phone)
        .where(owner == merged_id, already_held)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _move_references(
    session: AsyncSession, target: Table, survivor_id: int, merged_id: int
) -> tuple[dict[str, int], int]:
    moved: dict[str, int] = {}
    dropped_phones = 0
    phones_table = Phone.__table__
    for column in _referencing_columns(target):
        table = column.table
        if not isinstance(table, Table):  # pragma: no cover - metadata holds only tables
            continue
        if table is phones_table:
            dropped_phones += await _drop_phone_duplicates(session, column, survivor_id, merged_id)
        for others in _unique_column_sets(table, column):
            twin = table.alias("survivor_rows")
            clash = exists(
                select(1)
                .select_from(twin)
                .where(twin.c[column.name] == survivor_id)
                .where(*[twin.c[name] == table.c[name] for name in others])
            )
            await session.execute(delete(table).where(column == merged_id, clash))
        result = await session.execute(
            update(table).where(column == merged_id).values({column.name: survivor_id})
        )
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            moved[f"{table.name}.{column.name}"] = count
    return moved, dropped_phones


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _snapshot(card: Client | Organization, phones: Sequence[Phone]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in _table(type(card)).columns:
        value = getattr(card, column.key)
        values[column.key] = value.isoformat() if isinstance(value, datetime) else value
    values["phones"] = [
        {
            "raw": p.raw,
            "e164": p.e164,
            "extension": p.extension,
            "kind": p.kind.value,
            "shared": p.shared,
        }
        for p in phones
    ]
    return values


def _join_notes(survivor: str, merged: str) -> str:
    if not merged.strip() or merged.strip() in survivor:
        return survivor
    return f"{survivor.rstrip()}\n\n{merged.strip()}" if survivor.strip() else merged


async def merge_clients(
    session: AsyncSession, survivor_id: int, merged_id: int, *, user_id: int | None
) -> MergeResult:
    """Merge person `merged_id` into `survivor_id` (flushed; the caller commits)."""
    if survivor_id == merged_id:
        raise MergeError("a card cannot be merged into itself")
    survivor = await session.get(Client, survivor_id)
    merged = await session.get(Client, merged_id)
    if survivor is None or merged is None:
        raise MergeError(f"client {merged_id if survivor else survivor_id} does not exist")
    phones = (await session.scalars(select(Phone).where(Phone.client_id == merged_id))).all()
    snapshot = _snapshot(merged, phones)
    await session.flush()
    moved, dropped = await _move_references(session, _table(Client), survivor_id, merged_id)
    if not survivor.position and merged.position:
        survivor.position = merged.position
    if not survivor.email and merged.email:
        survivor.email = merged.email
    if survivor.organization_id is None and merged.organization_id is not None:
        survivor.organization_id = merged.organization_id
    survivor.notes = _join_notes(survivor.notes, merged.notes)
    survivor.name = more_complete_name(survivor.name, merged.name)
    await session.delete(merged)
    return await _record(
        session, "client", survivor_id, merged_id, snapshot, moved, dropped, user_id
    )


async def merge_organizations(
    session: AsyncSession, survivor_id: int, merged_id: int, *, user_id: int | None
) -> MergeResult:
    """Merge organisation `merged_id` (its contacts, phones, calls, ...) into `survivor_id`."""
    if survivor_id == merged_id:
        raise MergeError("a card cannot be merged into itself")
    survivor = await session.get(Organization, survivor_id)
    merged = await session.get(Organization, merged_id)
    if survivor is None or merged is None:
        raise MergeError(f"organization {merged_id if survivor else survivor_id} does not exist")
    phones = (await session.scalars(select(Phone).where(Phone.organization_id == merged_id))).all()
    snapshot = _snapshot(merged, phones)
    inn = merged.inn
    merged.inn = None  # the INN is unique: free it before the survivor takes it
    await session.flush()
    moved, dropped = await _move_references(session, _table(Organization), survivor_id, merged_id)
    if survivor.inn is None and inn is not None:
        survivor.inn = inn
    if not survivor.email and merged.email:
        survivor.email = merged.email
    survivor.notes = _join_notes(survivor.notes, merged.notes)
    await session.delete(merged)
    return await _record(
        session, "organization", survivor_id, merged_id, snapshot, moved, dropped, user_id
    )


async def _record(
    session: AsyncSession,
    entity: CardKind,
    survivor_id: int,
    merged_id: int,
    snapshot: dict[str, Any],
    moved: dict[str, int],
    dropped: int,
    user_id: int | None,
) -> MergeResult:
    session.add(
        ClientMerge(
            entity=entity,
            survivor_id=survivor_id,
            merged_id=merged_id,
            snapshot=snapshot,
            merged_by=user_id,
        )
    )
    await audit.record(
        session,
        user_id=user_id,
        action=f"{entity}.merged",
        entity=entity,
        entity_id=str(survivor_id),
        details={"merged_id": merged_id, "moved": moved, "dropped_phones": dropped},
    )
    await session.flush()
    return MergeResult(entity, survivor_id, merged_id, moved, dropped)


# -- suggestions ----------------------------------------------------------------------------


@dataclass(slots=True)
class Suggestion:
    id: int
    name: str
    reasons: list[str] = field(default_factory=list)
    """"phone", "email", "name" (a compatible name in the same organisation) or "org_name"."""


_MAX_SUGGESTIONS: Final = 20


async def client_suggestions(session: AsyncSession, client_id: int) -> list[Suggestion]:
    """Other persons that are probably `client_id`: same number or e-mail, or a compatible
    name in the same organisation."""
    client = await session.get(Client, client_id)
    if client is None:
        raise MergeError(f"client {client_id} does not exist")
    found: dict[int, Suggestion] = {}

    def add(other_id: int, other_name: str, reason: str) -> None:
        if other_id == client_id:
            return
        item = found.setdefault(other_id, Suggestion(other_id, other_name))
        if reason not in item.reasons:
            item.reasons.append(reason)

    mine = select(Phone.e164, Phone.extension).where(Phone.client_id == client_id).subquery()
    same_phone = (
        select(Client.id, Client.name)
        .join(Phone, Phone.client_id == Client.id)
        .join(mine, (mine.c.e164 == Phone.e164) & (mine.c.extension == Phone.extension))
        .limit(_MAX_SUGGESTIONS)
    )
    for other_id, other_name in await session.execute(same_phone):
        add(other_id, other_name, "phone")
    if client.email:
        same_email = (
            select(Client.id, Client.name)
            .where(func.lower(Client.email) == client.email.lower())
            .limit(_MAX_SUGGESTIONS)
        )
        for other_id, other_name in await session.execute(same_email):
            add(other_id, other_name, "email")
    if client.organization_id is not None:
        colleagues = select(Client.id, Client.name).where(
            Client.organization_id == client.organization_id
        )
        for other_id, other_name in await session.execute(colleagues):
            if names_compatible(client.name, other_name):
                add(other_id, other_name, "name")
    return sorted(found.values(), key=lambda s: s.id)[:_MAX_SUGGESTIONS]


async def organization_suggestions(session: AsyncSession, organization_id: int) -> list[Suggestion]:
    """Other organisations that are probably `organization_id`: same name without the legal
    form, or a shared number."""
    org = await session.get(Organization, organization_id)
    if org is None:
        raise MergeError(f"organization {organization_id} does not exist")
    found: dict[int, Suggestion] = {}

    def add(other_id: int, other_name: str, reason: str) -> None:
        if other_id == organization_id:
            return
        item = found.setdefault(other_id, Suggestion(other_id, other_name))
        if reason not in item.reasons:
            item.reasons.append(reason)

    key = organization_name_key(org.name)
    words = sorted(key.split(), key=len, reverse=True)
    if words:
        candidates = select(Organization.id, Organization.name).where(
            func.lower(Organization.name).contains(words[0], autoescape=True)
        )
        for other_id, other_name in await session.execute(candidates.limit(500)):
            if organization_name_key(other_name) == key:
                add(other_id, other_name, "org_name")
    mine = (
        select(Phone.e164, Phone.extension)
        .where(Phone.organization_id == organization_id)
        .subquery()
    )
    same_phone = (
        select(Organization.id, Organization.name)
        .join(Phone, Phone.organization_id == Organization.id)
        .join(mine, (mine.c.e164 == Phone.e164) & (mine.c.extension == Phone.extension))
        .limit(_MAX_SUGGESTIONS)
    )
    for other_id, other_name in await session.execute(same_phone):
        add(other_id, other_name, "phone")
    return sorted(found.values(), key=lambda s: s.id)[:_MAX_SUGGESTIONS]
