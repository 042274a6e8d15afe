"""Helpers for the client-card tests: users with API tokens, cards, and call records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from callcenter.auth.models import Role
from callcenter.calls.models import Call, Outcome
from callcenter.calls.state import CallStatus
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, OrganizationIn, PhoneIn
from callcenter.context import AppContext
from callcenter.events import Direction, EndReason
from tests.factories import api_token_for, bearer, make_user

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Actor:
    id: int
    headers: dict[str, str]


async def actor(ctx: AppContext, role: Role, login: str, extensions: Sequence[str] = ()) -> Actor:
    """A user who calls the API with a bearer token (no cookie, no CSRF)."""
    async with ctx.sessionmaker() as session:
        user = await make_user(session, role=role, login=login, extensions=extensions)
        token = await api_token_for(session, user.id)
        await session.commit()
    return Actor(user.id, bearer(token))


@dataclass(frozen=True)
class Company:
    organization_id: int
    maria_id: int
    petr_id: int


async def seed_company(ctx: AppContext) -> Company:
    """ООО «Ромашка» (+7 495 123-45-67) with Мария (+7 916 111-22-33) and Пётр (no phone)."""
    async with ctx.sessionmaker() as session:
        org = await clients.create_organization(
            session,
            ctx.phones,
            OrganizationIn(name="ООО «Ромашка»", phones=[PhoneIn(raw="+7 495 123-45-67")]),
        )
        maria = await clients.create_client(
            session,
            ctx.phones,
            ClientIn(
                name="Мария Сидорова",
                organization_id=org.id,
                position="бухгалтер",
                email="maria@romashka.ru",
                phones=[PhoneIn(raw="+7 916 111-22-33")],
            ),
        )
        petr = await clients.create_client(
            session,
            ctx.phones,
            ClientIn(name="Пётр Иванов", organization_id=org.id, position="директор"),
        )
        await session.commit()
        return Company(org.id, maria.id, petr.id)


def call_row(
    key: str,
    *,
    started_at: datetime = T0,
    client_id: int | None = None,
    organization_id: int | None = None,
    agent_user_id: int | None = None,
    caller_num: str = "89161112233",
    outcome: Outcome | None = None,
    talk_seconds: float | None = 60.0,
    recording: str | None = None,
    status: CallStatus = CallStatus.ENDED,
) -> Call:
    return Call(
        pbx="default",
        call_key=key,
        direction=Direction.INBOUND,
        status=status,
        caller_num=caller_num,
        started_at=started_at,
        answered_at=started_at + timedelta(seconds=5),
        ended_at=None if status is not CallStatus.ENDED else started_at + timedelta(minutes=2),
        end_reason=EndReason.COMPLETED if status is CallStatus.ENDED else None,
        talk_seconds=talk_seconds,
        agent_name="Анна",
        agent_user_id=agent_user_id,
        client_id=client_id,
        organization_id=organization_id,
        outcome=outcome,
        recording=recording,
    )


async def add_calls(ctx: AppContext, *calls: Call) -> list[int]:
    async with ctx.sessionmaker() as session:
        session.add_all(calls)
        await session.commit()
        return [c.id for c in calls]
