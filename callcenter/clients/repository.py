"""SQL for organisations, clients and phones. No decisions here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.clients.models import Client, Organization, Phone


async def phones_by_e164(session: AsyncSession, e164: str) -> Sequence[Phone]:
    result = await session.scalars(select(Phone).where(Phone.e164 == e164).order_by(Phone.id))
    return result.all()


OwnerRow = tuple[int, str, bool, int | None, str | None, str | None, int | None, str | None]
"""phone id, extension, shared, client id, client name, position, organisation id and name."""


async def owner_rows_by_e164(session: AsyncSession, e164: str) -> list[OwnerRow]:
    """Every card holding `e164`, with the person's organisation, in one query."""
    return (await owner_rows_by_e164s(session, [e164])).get(e164, [])


def _owner_rows_query() -> Select[*tuple[Any, ...]]:
    org_id = func.coalesce(Client.organization_id, Phone.organization_id)
    return (
        select(
            Phone.e164,
            Phone.id,
            Phone.extension,
            Phone.shared,
            Client.id,
            Client.name,
            Client.position,
            Organization.id,
            Organization.name,
        )
        .select_from(Phone)
        .outerjoin(Client, Client.id == Phone.client_id)
        .outerjoin(Organization, Organization.id == org_id)
        .where(Phone.e164.in_(bindparam("e164s", expanding=True)))
        .order_by(Phone.id)
    )


_OWNER_ROWS = _owner_rows_query()
"""Built once: every ring runs it, and building a statement costs more than running it."""


async def owner_rows_by_e164s(
    session: AsyncSession, numbers: Iterable[str]
) -> dict[str, list[OwnerRow]]:
    """`owner_rows_by_e164` for many numbers in one query (numbers nobody holds are absent)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    found: dict[str, list[OwnerRow]] = {}
    for e164, *owner in await (await session.connection()).execute(_OWNER_ROWS, {"e164s": wanted}):
        found.setdefault(e164, []).append(tuple(owner))
    return found


async def phones_of_clients(session: AsyncSession, client_ids: Sequence[int]) -> Sequence[Phone]:
    if not client_ids:
        return []
    query = select(Phone).where(Phone.client_id.in_(client_ids)).order_by(Phone.id)
    return (await session.scalars(query)).all()


async def phones_of_organization(session: AsyncSession, organization_id: int) -> Sequence[Phone]:
    query = select(Phone).where(Phone.organization_id == organization_id).order_by(Phone.id)
    return (await session.scalars(query)).all()


async def clients_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Client]:
    if not ids:
        return {}
    rows = await session.scalars(select(Client).where(Client.id.in_(set(ids))))
    return {c.id: c for c in rows}


async def organizations_by_ids(
    session: AsyncSession, ids: Sequence[int]
) -> dict[int, Organization]:
    if not ids:
        return {}
    rows = await session.scalars(select(Organization).where(Organization.id.in_(set(ids))))
    return {o.id: o for o in rows}


async def contacts_of(session: AsyncSession, organization_id: int) -> Sequence[Client]:
    return (await contacts_of_organizations(session, [organization_id])).get(organization_id, [])


async def contacts_of_organizations(
    session: AsyncSession, organization_ids: Iterable[int]
) -> dict[int, list[Client]]:
    """`contacts_of` for many organisations in one query."""
    wanted = sorted(set(organization_ids))
    if not wanted:
        return {}
    query = (
        select(Client).where(Client.organization_id.in_(wanted)).order_by(Client.name, Client.id)
    )
    found: dict[int, list[Client]] = {}
    for client in await session.scalars(query):
        if client.organization_id is not None:
            found.setdefault(client.organization_id, []).append(client)
    return found


def _client_search(q: str | None, organization_id: int | None) -> Select[Client]:
    query = select(Client)
    if organization_id is not None:
        query = query.where(Client.organization_id == organization_id)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(or_(func.lower(Client.name).like(pattern), Client.email.ilike(pattern)))
    return query


async def search_clients(
    session: AsyncSession, *, q: str | None, organization_id: int | None, offset: int, limit: int
) -> tuple[Sequence[Client], int]:
    query = _client_search(q, organization_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    page = await session.scalars(query.order_by(Client.name, Client.id).offset(offset).limit(limit))
    return page.all(), int(total or 0)


async def search_organizations(
    session: AsyncSession, *, q: str | None, offset: int, limit: int
) -> tuple[Sequence[Organization], int]:
    query = select(Organization)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(or_(func.lower(Organization.name).like(pattern), Organization.inn == q))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Organization.name, Organization.id).offset(offset).limit(limit)
    )
    return rows.all(), int(total or 0)
