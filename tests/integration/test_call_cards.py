"""Screen-pop cards made for many calls at once (a batch of rings) say what one card says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.calls.models import Call, Outcome
from callcenter.calls.service import caller_card, caller_cards
from callcenter.calls.state import CallStatus
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, OrganizationIn, PhoneIn
from callcenter.context import AppContext
from callcenter.events import Direction, EndReason
from callcenter.tasks.models import Task

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PERSON = "+79161234567"
COMPANY = "+74951112233"
STRANGER = "+442079460958"


def _call(key: str, caller: str, at: datetime, **facts: object) -> Call:
    facts.setdefault("status", CallStatus.ENDED)
    return Call(
        pbx="main",
        call_key=key,
        direction=Direction.INBOUND,
        caller_num=caller,
        caller_e164=caller,
        started_at=at,
        **facts,
    )


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_a_batch_of_rings_then_each_card_equals_the_card_made_alone(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        person = await clients.create_client(
            session, ctx.phones, ClientIn(name="Мария Сидорова", phones=[PhoneIn(raw=PERSON)])
        )
        company = await clients.create_organization(
            session, ctx.phones, OrganizationIn(name="ООО Ромашка", phones=[PhoneIn(raw=COMPANY)])
        )
        for name in ("Пётр", "Анна", "Борис"):
            await clients.create_client(
                session, ctx.phones, ClientIn(name=name, organization_id=company.id)
            )
        session.add_all(
            [
                Task(title="перезвонить", client_id=person.id, due_at=T0 + timedelta(days=2)),
                Task(title="счёт", client_id=person.id, due_at=T0 + timedelta(days=1)),
                Task(title="сделано", client_id=person.id, done_at=T0),
                Task(title="договор", organization_id=company.id),
            ]
        )
        history = [
            _call(
                f"p{i}",
                PERSON,
                T0 + timedelta(hours=i),
                client_id=person.id,
                end_reason=EndReason.COMPLETED,
                outcome=Outcome.SALE,
                agent_name="Ольга",
            )
            for i in range(7)
        ] + [
            _call(f"s{i}", STRANGER, T0 + timedelta(hours=i), end_reason=EndReason.ABANDONED)
            for i in range(2)
        ]
        session.add_all(history)
        await session.flush()
        live = [
            _call(
                f"live{i}",
                number,
                T0 + timedelta(days=3, seconds=i),
                status=CallStatus.QUEUED,
                client_id=person.id if number == PERSON else None,
                organization_id=company.id if number == COMPANY else None,
            )
            for i, number in enumerate([PERSON, COMPANY, STRANGER] * 15)
        ]
        session.add_all(live)
        await session.flush()

        together = await caller_cards(session, ctx.ingest_policy(), live)
        alone = [await caller_card(session, ctx.ingest_policy(), row) for row in live]
        await session.rollback()

    assert together == alone
    person_card, company_card, stranger_card = together[:3]

    def newest_five_but(own: Call, number: str) -> list[int]:
        theirs = [c for c in history + live if c.caller_e164 == number and c is not own]
        return [c.id for c in sorted(theirs, key=lambda c: c.started_at, reverse=True)[:5]]

    assert person_card["known"] is True
    assert [c["id"] for c in person_card["last_calls"]] == newest_five_but(live[0], PERSON)
    assert [t["title"] for t in person_card["open_tasks"]] == ["счёт", "перезвонить"]
    assert person_card["contacts"] == []
    assert [c["name"] for c in company_card["contacts"]] == ["Анна", "Борис", "Пётр"]
    assert [t["title"] for t in company_card["open_tasks"]] == ["договор"]
    assert stranger_card["known"] is False
    assert stranger_card["owners"] == []
    assert [c["id"] for c in stranger_card["last_calls"]] == newest_five_but(live[2], STRANGER)
