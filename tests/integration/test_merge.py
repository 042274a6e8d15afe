"""Merging duplicate cards: calls, tasks and phones move to the survivor, history is kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import AuditEntry, Role
from callcenter.calls.models import Call
from callcenter.calls.state import CallStatus
from callcenter.clients.merge import ClientMerge, MergeError, merge_clients, merge_organizations
from callcenter.clients.models import Client, Organization, Phone
from callcenter.context import AppContext
from callcenter.events import Direction
from callcenter.tasks.models import Task
from tests.factories import login_as, make_user


def _call(key: str, client_id: int | None = None, organization_id: int | None = None) -> Call:
    return Call(
        pbx="default",
        call_key=key,
        direction=Direction.INBOUND,
        status=CallStatus.ENDED,
        started_at=datetime(2026, 11, 1, 10, 0, tzinfo=UTC),
        client_id=client_id,
        organization_id=organization_id,
    )


async def _two_people(session: AsyncSession) -> tuple[int, int]:
    """Ivanov (survivor) and his duplicate, sharing a switchboard number, each with history."""
    survivor = Client(name="Иванов И.", position="", notes="первая карточка")
    duplicate = Client(
        name="Иванов Иван Иванович", position="Директор", email="ivanov@mail.ru", notes="вторая"
    )
    session.add_all([survivor, duplicate])
    await session.flush()
    session.add_all(
        [
            Phone(raw="8 495 123-45-67", e164="+74951234567", client_id=survivor.id, shared=True),
            Phone(raw="84951234567", e164="+74951234567", client_id=duplicate.id, shared=True),
            Phone(raw="8 916 123-45-67", e164="+79161234567", client_id=duplicate.id),
            _call("c1", client_id=survivor.id),
            _call("c2", client_id=duplicate.id),
            _call("c3", client_id=duplicate.id),
            Task(title="Перезвонить", client_id=duplicate.id),
        ]
    )
    await session.flush()
    return survivor.id, duplicate.id


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_two_cards_of_one_person_when_merged_then_history_moves_to_the_survivor(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        survivor_id, duplicate_id = await _two_people(session)
        await session.commit()

    async with ctx.sessionmaker() as session:
        result = await merge_clients(session, survivor_id, duplicate_id, user_id=None)
        await session.commit()

    assert result.moved == {"calls.client_id": 2, "phones.client_id": 1, "tasks.client_id": 1}
    assert result.dropped_phones == 1
    async with ctx.sessionmaker() as session:
        assert await session.get(Client, duplicate_id) is None
        survivor = await session.get(Client, survivor_id)
        assert survivor is not None
        assert (survivor.name, survivor.position, survivor.email) == (
            "Иванов Иван Иванович",
            "Директор",
            "ivanov@mail.ru",
        )
        assert survivor.notes == "первая карточка\n\nвторая"
        phones = (
            await session.scalars(select(Phone.e164).where(Phone.client_id == survivor_id))
        ).all()
        assert sorted(phones) == ["+74951234567", "+79161234567"]
        calls = (
            await session.scalars(select(Call.call_key).where(Call.client_id == survivor_id))
        ).all()
        assert sorted(calls) == ["c1", "c2", "c3"]
        task = await session.scalar(select(Task))
        assert task is not None
        assert task.client_id == survivor_id
        record = await session.scalar(select(ClientMerge))
        assert record is not None
        assert (record.survivor_id, record.merged_id) == (survivor_id, duplicate_id)
        assert record.snapshot["name"] == "Иванов Иван Иванович"
        assert {p["e164"] for p in record.snapshot["phones"]} == {"+74951234567", "+79161234567"}
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "client.merged"))
        assert entry is not None
        assert (entry.entity, entry.entity_id) == ("client", str(survivor_id))


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_two_organisations_when_merged_then_contacts_phones_calls_and_inn_move(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        kept = Organization(name="ООО «Ромашка»", notes="")
        gone = Organization(name="Ромашка", inn="7707083893", notes="")
        session.add_all([kept, gone])
        await session.flush()
        session.add_all(
            [
                Client(name="Петров Петр", organization_id=gone.id, position="", notes=""),
                Phone(raw="84957654321", e164="+74957654321", organization_id=gone.id),
                _call("o1", organization_id=gone.id),
                Task(title="Договор", organization_id=gone.id),
            ]
        )
        await session.commit()
        kept_id, gone_id = kept.id, gone.id

    async with ctx.sessionmaker() as session:
        result = await merge_organizations(session, kept_id, gone_id, user_id=None)
        await session.commit()

    assert result.moved == {
        "calls.organization_id": 1,
        "clients.organization_id": 1,
        "phones.organization_id": 1,
        "tasks.organization_id": 1,
    }
    async with ctx.sessionmaker() as session:
        assert await session.get(Organization, gone_id) is None
        survivor = await session.get(Organization, kept_id)
        assert survivor is not None
        assert survivor.inn == "7707083893"


async def test_given_bad_pairs_when_merging_then_merge_error(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as session:
        client = Client(name="Иванов", position="", notes="")
        session.add(client)
        await session.flush()

        with pytest.raises(MergeError):
            await merge_clients(session, client.id, client.id, user_id=None)
        with pytest.raises(MergeError):
            await merge_clients(session, client.id, client.id + 100, user_id=None)


async def test_given_duplicates_when_asking_over_http_then_suggestions_and_a_merge(
    client: AsyncClient, ctx: AppContext
) -> None:
    async with ctx.sessionmaker() as session:
        await make_user(session, role=Role.SUPERVISOR, login="boss")
        org = Organization(name="ООО «Вектор»", notes="")
        twin = Organization(name="Вектор, ООО", notes="")
        session.add_all([org, twin])
        await session.flush()
        first = Client(name="Сидоров Олег", organization_id=org.id, position="", notes="")
        second = Client(name="Сидоров О.", organization_id=org.id, position="", notes="")
        other = Client(name="Козлова Анна", organization_id=org.id, position="", notes="")
        session.add_all([first, second, other])
        await session.commit()
        ids = (org.id, twin.id, first.id, second.id)
    csrf = await login_as(client, "boss")

    people = await client.get(f"/api/clients/{ids[2]}/merge-suggestions")
    companies = await client.get(f"/api/organizations/{ids[0]}/merge-suggestions")
    merged = await client.post(
        f"/api/clients/{ids[2]}/merge", json={"merged_id": ids[3]}, headers={"X-CSRF-Token": csrf}
    )
    missing = await client.post(
        f"/api/clients/{ids[2]}/merge", json={"merged_id": 9999}, headers={"X-CSRF-Token": csrf}
    )

    assert people.json() == [{"id": ids[3], "name": "Сидоров О.", "reasons": ["name"]}]
    assert companies.json() == [{"id": ids[1], "name": "Вектор, ООО", "reasons": ["org_name"]}]
    assert merged.status_code == 200, merged.text
    assert merged.json()["merged_id"] == ids[3]
    assert missing.status_code == 404
