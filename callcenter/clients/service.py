"""Decisions about clients, organisations and phones: identity by phone, ownership, cards."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.clients import repository
from callcenter.clients.models import Client, Organization, Phone
from callcenter.clients.schemas import (
    ClientIn,
    ClientOut,
    ClientPatch,
    OrganizationIn,
    OrganizationOut,
    OrganizationPatch,
    Owner,
    PhoneIn,
    PhoneOut,
)
from callcenter.phones import PhoneIdentity, PhoneNumber, PhoneRejected


class PhoneInvalid(ValueError):
    def __init__(self, rejected: PhoneRejected) -> None:
        super().__init__(f"{rejected.raw!r}: {rejected.detail}")
        self.rejected = rejected


class PhoneTaken(ValueError):
    """The number already belongs to another card and was not marked shared."""

    def __init__(self, e164: str, owners: list[Owner]) -> None:
        super().__init__(f"{e164} already belongs to another card")
        self.e164 = e164
        self.owners = owners


class NotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Lookup:
    number: PhoneNumber
    owners: list[Owner]

    @property
    def ambiguous(self) -> bool:
        return len(self.owners) > 1


def normalize_or_raise(phones: PhoneIdentity, raw: str) -> PhoneNumber:
    """The E.164 form of `raw`, or PhoneInvalid saying why there is none."""
    result = phones.normalize(raw)
    if isinstance(result, PhoneRejected):
        raise PhoneInvalid(result)
    return result


async def owners_of(session: AsyncSession, e164: str, extension: str | None = None) -> list[Owner]:
    """Every card holding the number; an exact extension match wins over the main number."""
    return owners_from_rows(await repository.owner_rows_by_e164(session, e164), extension)


async def owners_by_e164(session: AsyncSession, numbers: Iterable[str]) -> dict[str, list[Owner]]:
    """`owners_of` (main numbers) for many numbers in one query; every number is a key."""
    wanted = set(numbers)
    found = await repository.owner_rows_by_e164s(session, wanted)
    return {number: owners_from_rows(found.get(number, [])) for number in wanted}


def owners_from_rows(
    rows: Sequence[repository.OwnerRow], extension: str | None = None
) -> list[Owner]:
    """The owners a number's phone rows name: with an extension dialled, the phones of that
    extension (else the main number's); without one, the main number's when there are any."""
    if extension:
        exact = [r for r in rows if r[1] == extension]
        rows = exact or [r for r in rows if not r[1]]
    elif any(not r[1] for r in rows):
        rows = [r for r in rows if not r[1]]
    return [
        Owner(
            phone_id=phone_id,
            client_id=client_id,
            client_name=client_name,
            organization_id=org_id,
            organization_name=org_name,
            position=position,
            shared=shared,
        )
        for phone_id, _, shared, client_id, client_name, position, org_id, org_name in rows
    ]


async def _owners(session: AsyncSession, rows: Sequence[Phone]) -> list[Owner]:
    clients = await repository.clients_by_ids(session, [p.client_id for p in rows if p.client_id])
    org_ids = [p.organization_id for p in rows if p.organization_id] + [
        c.organization_id for c in clients.values() if c.organization_id
    ]
    orgs = await repository.organizations_by_ids(session, org_ids)
    owners = []
    for phone in rows:
        client = clients.get(phone.client_id) if phone.client_id else None
        org_id = client.organization_id if client else phone.organization_id
        org = orgs.get(org_id) if org_id else None
        owners.append(
            Owner(
                phone_id=phone.id,
                client_id=client.id if client else None,
                client_name=client.name if client else None,
                organization_id=org.id if org else None,
                organization_name=org.name if org else None,
                position=client.position if client else None,
                shared=phone.shared,
            )
        )
    return owners


async def lookup(session: AsyncSession, phones: PhoneIdentity, raw: str) -> Lookup:
    """Who owns the number written as `raw`, in any format."""
    number = normalize_or_raise(phones, raw)
    return Lookup(number, await owners_of(session, number.e164, number.extension))


async def add_phone(
    session: AsyncSession,
    phones: PhoneIdentity,
    data: PhoneIn,
    *,
    client_id: int | None = None,
    organization_id: int | None = None,
) -> Phone:
    """Attach a number to one card; a number owned elsewhere must be explicitly shared."""
    number = normalize_or_raise(phones, data.raw)
    extension = number.extension or ""
    existing = [
        p for p in await repository.phones_by_e164(session, number.e164) if p.extension == extension
    ]
    same_card = [
        p for p in existing if p.client_id == client_id and p.organization_id == organization_id
    ]
    if same_card:
        return same_card[0]
    if existing and not data.shared:
        raise PhoneTaken(number.e164, await _owners(session, existing))
    for other in existing:
        other.shared = True
    phone = Phone(
        raw=data.raw.strip(),
        e164=number.e164,
        extension=extension,
        kind=data.kind,
        shared=data.shared,
        client_id=client_id,
        organization_id=organization_id,
    )
    session.add(phone)
    await session.flush()
    return phone


async def create_organization(
    session: AsyncSession, phones: PhoneIdentity, data: OrganizationIn
) -> Organization:
    """A new organisation with its phones."""
    org = Organization(name=data.name.strip(), inn=data.inn, email=data.email, notes=data.notes)
    session.add(org)
    await session.flush()
    for phone in data.phones:
        await add_phone(session, phones, phone, organization_id=org.id)
    return org


async def create_client(session: AsyncSession, phones: PhoneIdentity, data: ClientIn) -> Client:
    """A new person, optionally a contact of an organisation, with their phones."""
    if data.organization_id is not None:
        await get_organization(session, data.organization_id)
    client = Client(
        name=data.name.strip(),
        organization_id=data.organization_id,
        position=data.position,
        email=data.email,
        notes=data.notes,
    )
    session.add(client)
    await session.flush()
    for phone in data.phones:
        await add_phone(session, phones, phone, client_id=client.id)
    return client


async def get_client(session: AsyncSession, client_id: int) -> Client:
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFound(f"client {client_id}")
    return client


async def get_organization(session: AsyncSession, organization_id: int) -> Organization:
    org = await session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"organization {organization_id}")
    return org


async def update_client(session: AsyncSession, client_id: int, data: ClientPatch) -> Client:
    """Change the fields given in `data`."""
    client = await get_client(session, client_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("organization_id") is not None:
        await get_organization(session, changes["organization_id"])
    for field, value in changes.items():
        setattr(client, field, value)
    await session.flush()
    return client


async def update_organization(
    session: AsyncSession, organization_id: int, data: OrganizationPatch
) -> Organization:
    """Change the fields given in `data`."""
    org = await get_organization(session, organization_id)
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(org, field, value)
    await session.flush()
    return org


async def delete_client(session: AsyncSession, client_id: int) -> None:
    await session.delete(await get_client(session, client_id))
    await session.flush()


async def get_phone(session: AsyncSession, phone_id: int) -> Phone:
    phone = await session.get(Phone, phone_id)
    if phone is None:
        raise NotFound(f"phone {phone_id}")
    return phone


async def delete_phone(session: AsyncSession, phone_id: int) -> None:
    await session.delete(await get_phone(session, phone_id))
    await session.flush()


async def client_views(session: AsyncSession, clients: Sequence[Client]) -> list[ClientOut]:
    """Clients with their phones and organisation names, in two queries."""
    phones = await repository.phones_of_clients(session, [c.id for c in clients])
    orgs = await repository.organizations_by_ids(
        session, [c.organization_id for c in clients if c.organization_id]
    )
    by_client: dict[int, list[PhoneOut]] = {}
    for phone in phones:
        if phone.client_id is not None:
            by_client.setdefault(phone.client_id, []).append(PhoneOut.model_validate(phone))
    views = []
    for client in clients:
        view = ClientOut.model_validate(client)
        view.phones = by_client.get(client.id, [])
        org = orgs.get(client.organization_id) if client.organization_id else None
        view.organization_name = org.name if org else None
        views.append(view)
    return views


async def organization_view(session: AsyncSession, org: Organization) -> OrganizationOut:
    """An organisation with its own phones and its contact persons."""
    view = OrganizationOut.model_validate(org)
    view.phones = [
        PhoneOut.model_validate(p) for p in await repository.phones_of_organization(session, org.id)
    ]
    view.contacts = await client_views(session, await repository.contacts_of(session, org.id))
    return view
