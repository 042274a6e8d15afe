"""The client card over the API: personal-data rights, timeline, tags, notes, and the person
picked on a company call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from callcenter import audit
from callcenter.auth.models import AuditEntry, Role
from callcenter.calls.models import Call, Outcome
from callcenter.calls.service import ingest
from callcenter.config import Settings
from callcenter.context import AppContext, build_context
from callcenter.events import AgentRinging, CallEvent, CallStarted, Direction
from callcenter.main import create_app
from callcenter.realtime.streams import user_topic
from callcenter.tasks.models import Meeting, MeetingParticipant, Task
from tests.crm_helpers import T0, actor, add_calls, call_row, seed_company

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


# --- personal data rights --------------------------------------------------------------------


@both_databases
async def test_given_an_operator_when_changing_personal_data_then_403_but_events_are_added(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    operator = await actor(ctx, Role.OPERATOR, "op")
    maria = f"/api/clients/{company.maria_id}"

    renamed = await client.patch(
        maria, json={"name": "X", "position": "y"}, headers=operator.headers
    )
    phone = await client.post(
        f"{maria}/phones", json={"raw": "+7 926 000-00-01"}, headers=operator.headers
    )
    card = (await client.get(maria, headers=operator.headers)).json()
    removed = await client.delete(
        f"/api/phones/{card['phones'][0]['id']}", headers=operator.headers
    )
    moved = await client.patch(maria, json={"organization_id": None}, headers=operator.headers)
    note = await client.post(
        f"{maria}/notes", json={"text": "Просила счёт"}, headers=operator.headers
    )
    tags = await client.post(f"{maria}/tags", json={"names": ["VIP"]}, headers=operator.headers)
    task = await client.post(
        "/api/tasks",
        json={"title": "Отправить счёт", "client_id": company.maria_id},
        headers=operator.headers,
    )

    assert renamed.status_code == 403
    assert renamed.json()["detail"]["fields"] == ["name", "position"]
    assert "personal data" in renamed.json()["detail"]["message"]
    assert phone.status_code == 403
    assert removed.status_code == 403
    assert moved.status_code == 200, moved.text
    assert note.status_code == 201, note.text
    assert [t["name"] for t in tags.json()] == ["VIP"]
    assert task.status_code == 201, task.text
    after = (await client.get(maria, headers=operator.headers)).json()
    assert after["name"] == "Мария Сидорова"
    assert len(after["phones"]) == 1


@both_databases
async def test_given_a_supervisor_when_changing_personal_data_then_allowed_and_audited(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    supervisor = await actor(ctx, Role.SUPERVISOR, "sup")
    maria = f"/api/clients/{company.maria_id}"

    renamed = await client.patch(maria, json={"name": "Мария Петрова"}, headers=supervisor.headers)
    phone = await client.post(
        f"{maria}/phones", json={"raw": "+7 926 000-00-01"}, headers=supervisor.headers
    )

    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Мария Петрова"
    assert phone.status_code == 201
    async with ctx.sessionmaker() as session:
        entries = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.entity == "client", AuditEntry.entity_id == str(company.maria_id)
                )
            )
        ).all()
    changes = [(e.action, e.details.get("fields"), e.user_id) for e in entries]
    assert ("update", ["name"], supervisor.id) in changes
    assert ("update", ["phones"], supervisor.id) in changes


@pytest.fixture
async def lenient_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """The app of a deployment that lets operators edit personal data."""
    context = build_context(settings.model_copy(update={"operators_edit_personal_data": True}))
    app = create_app(ctx=context)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        http.app_context = context  # type: ignore[attr-defined]
        yield http
    await context.close()


async def test_given_operators_may_edit_personal_data_when_an_operator_renames_then_200(
    lenient_client: AsyncClient,
) -> None:
    ctx: AppContext = lenient_client.app_context  # type: ignore[attr-defined]
    company = await seed_company(ctx)
    operator = await actor(ctx, Role.OPERATOR, "op")

    renamed = await lenient_client.patch(
        f"/api/clients/{company.maria_id}", json={"name": "Мария П."}, headers=operator.headers
    )
    rights = await lenient_client.get("/api/crm/rights", headers=operator.headers)

    assert renamed.status_code == 200
    assert "edit_personal_data" in rights.json()["rights"]
    assert "export" not in rights.json()["rights"]


# --- timeline --------------------------------------------------------------------------------


async def _seed_history(ctx: AppContext, company_ids: tuple[int, int, int], user_id: int) -> None:
    org_id, maria_id, petr_id = company_ids
    await add_calls(
        ctx,
        call_row(
            "m1",
            started_at=T0,
            client_id=maria_id,
            organization_id=org_id,
            outcome=Outcome.SALE,
            recording="rec/m1.wav",
            agent_user_id=user_id,
        ),
        call_row(
            "m2",
            started_at=T0 + timedelta(days=2),
            client_id=maria_id,
            organization_id=org_id,
            outcome=Outcome.CALL_BACK,
        ),
        call_row(
            "o1",
            started_at=T0 + timedelta(days=1),
            organization_id=org_id,
            caller_num="84951234567",
        ),
        call_row(
            "p1", started_at=T0 + timedelta(days=3), client_id=petr_id, organization_id=org_id
        ),
    )
    async with ctx.sessionmaker() as session:
        session.add(
            Task(
                title="Счёт",
                client_id=maria_id,
                organization_id=org_id,
                assignee_id=user_id,
                created_at=T0 + timedelta(hours=1),
                due_at=T0 + timedelta(days=1),
            )
        )
        meeting = Meeting(
            subject="Переговоры",
            starts_at=T0 + timedelta(days=1, hours=2),
            organization_id=org_id,
            assignee_id=user_id,
        )
        session.add(meeting)
        await session.flush()
        session.add(MeetingParticipant(meeting_id=meeting.id, client_id=maria_id))
        await audit.record(
            session,
            user_id=user_id,
            action="client.imported",
            entity="client",
            entity_id=str(maria_id),
            details={"batch_id": 7},
            at=T0 + timedelta(days=2, hours=1),
        )
        await audit.record(
            session,
            user_id=user_id,
            action="client.merged",
            entity="client",
            entity_id=str(maria_id),
            details={"merged_id": 99},
            at=T0 + timedelta(days=2, hours=2),
        )
        await audit.record(
            session,
            user_id=user_id,
            action="view",
            entity="client",
            entity_id=str(maria_id),
            at=T0 + timedelta(days=2, hours=3),
        )
        await session.commit()


@both_databases
async def test_given_a_persons_history_when_paged_then_every_kind_newest_first_once(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    operator = await actor(ctx, Role.OPERATOR, "op")
    await _seed_history(
        ctx, (company.organization_id, company.maria_id, company.petr_id), operator.id
    )
    note = await client.post(
        f"/api/clients/{company.maria_id}/notes", json={"text": "Заметка"}, headers=operator.headers
    )
    assert note.status_code == 201

    seen: list[dict[str, object]] = []
    before = None
    pages = 0
    while True:
        params = {"limit": 2, **({"before": before} if before else {})}
        page = await client.get(
            f"/api/clients/{company.maria_id}/timeline", params=params, headers=operator.headers
        )
        assert page.status_code == 200, page.text
        body = page.json()
        seen.extend(body["items"])
        pages += 1
        before = body["next_before"]
        if before is None:
            break

    kinds = [
        (
            e["kind"],
            e.get("action")
            or e.get("title")
            or e.get("subject")
            or e.get("outcome")
            or e.get("text"),
        )
        for e in seen
    ]
    assert kinds == [
        ("note", "Заметка"),  # now
        ("record", "client.merged"),
        ("record", "client.imported"),
        ("call", "call_back"),
        ("meeting", "Переговоры"),  # Мария takes part
        ("task", "Счёт"),
        ("call", "sale"),
    ]  # the company number's call and Пётр's are not Мария's
    assert pages == (len(seen) + 1) // 2
    first_call = next(e for e in seen if e["kind"] == "call" and e["outcome"] == "sale")
    assert first_call["has_recording"] is True
    assert first_call["talk_seconds"] == 60.0
    assert next(e for e in seen if e["kind"] == "task")["overdue"] is True
    assert next(e for e in seen if e["kind"] == "meeting")["participants"][0]["name"] == (
        "Мария Сидорова"
    )


@both_databases
async def test_given_an_organisation_then_its_timeline_holds_its_persons_events_too(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    operator = await actor(ctx, Role.OPERATOR, "op")
    await _seed_history(
        ctx, (company.organization_id, company.maria_id, company.petr_id), operator.id
    )

    page = await client.get(
        f"/api/organizations/{company.organization_id}/timeline",
        params={"limit": 50},
        headers=operator.headers,
    )

    assert page.status_code == 200
    calls = [e["id"] for e in page.json()["items"] if e["kind"] == "call"]
    assert len(calls) == 4  # Мария's two, the company number's, Пётр's
    assert page.json()["next_before"] is None


async def test_given_a_forged_cursor_then_422(ctx: AppContext, client: AsyncClient) -> None:
    company = await seed_company(ctx)
    operator = await actor(ctx, Role.OPERATOR, "op")

    page = await client.get(
        f"/api/clients/{company.maria_id}/timeline",
        params={"before": "bm9wZQ"},
        headers=operator.headers,
    )

    assert page.status_code == 422


# --- tags ------------------------------------------------------------------------------------


async def test_given_tags_in_any_case_then_one_tag_each_and_removable(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    operator = await actor(ctx, Role.OPERATOR, "op")
    maria = f"/api/clients/{company.maria_id}/tags"

    first = await client.post(
        maria, json={"names": ["VIP", " ключевой  клиент "]}, headers=operator.headers
    )
    again = await client.post(maria, json={"names": ["vip"]}, headers=operator.headers)
    org = await client.post(
        f"/api/organizations/{company.organization_id}/tags",
        json={"names": ["Vip"]},
        headers=operator.headers,
    )
    every = await client.get("/api/tags", headers=operator.headers)
    vip = next(t for t in every.json() if t["name"] == "VIP")
    removed = await client.delete(f"{maria}/{vip['id']}", headers=operator.headers)
    gone = await client.delete(f"{maria}/{vip['id']}", headers=operator.headers)

    assert [t["name"] for t in first.json()] == ["VIP", "ключевой клиент"]
    assert [t["name"] for t in again.json()] == ["VIP", "ключевой клиент"]
    assert [t["name"] for t in org.json()] == ["VIP"]
    assert sorted(t["name"] for t in every.json()) == ["VIP", "ключевой клиент"]
    assert removed.status_code == 204
    assert gone.status_code == 404
    left = await client.get(maria, headers=operator.headers)
    assert [t["name"] for t in left.json()] == ["ключевой клиент"]


# --- the person on a company call ------------------------------------------------------------


async def _screen_pop(
    ctx: AppContext, call_key: str, caller_num: str, user_id: int
) -> dict[str, Any]:
    """`caller_num` rings extension 101 (user `user_id`): the card sent to that user."""
    events: list[CallEvent] = [
        CallStarted(
            call_key=call_key,
            event_id=f"{call_key}:start",
            at=T0,
            direction=Direction.INBOUND,
            caller_num=caller_num,
            callee_num="8001",
        ),
        AgentRinging(
            call_key=call_key,
            event_id=f"{call_key}:ring",
            at=T0,
            agent="Local/101@agents",
            queue="support",
        ),
    ]
    async with ctx.sessionmaker() as session:
        notes = await ingest(session, ctx.ingest_policy(), events)
        await session.commit()
    card: dict[str, Any] = next(n for n in notes if n.topic == user_topic(user_id)).payload["card"]
    return card


@both_databases
async def test_given_the_company_number_rings_then_its_persons_are_listed_and_a_pick_sets_the_call(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    anna = await actor(ctx, Role.OPERATOR, "anna", extensions=["101"])
    igor = await actor(ctx, Role.OPERATOR, "igor", extensions=["102"])
    card = await _screen_pop(ctx, "k1", "84951234567", anna.id)
    async with ctx.sessionmaker() as session:
        call = (await session.scalars(select(Call))).one()
    assert call.organization_id == company.organization_id
    assert call.client_id is None
    assert [o["organization_name"] for o in card["owners"]] == ["ООО «Ромашка»"]
    assert card["contacts"] == [
        {"client_id": company.maria_id, "name": "Мария Сидорова", "position": "бухгалтер"},
        {"client_id": company.petr_id, "name": "Пётр Иванов", "position": "директор"},
    ]

    async with ctx.sessionmaker() as session:
        row = await session.get(Call, call.id)
        assert row is not None
        row.agent = "Local/101@agents"
        await session.commit()
    stranger = await client.put(
        f"/api/calls/{call.id}/client", json={"client_id": company.petr_id}, headers=igor.headers
    )
    picked = await client.put(
        f"/api/calls/{call.id}/client", json={"client_id": company.petr_id}, headers=anna.headers
    )

    assert stranger.status_code == 403
    assert picked.status_code == 200, picked.text
    assert picked.json()["client_id"] == company.petr_id
    assert picked.json()["organization_id"] == company.organization_id
    async with ctx.sessionmaker() as session:
        entry = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "call.client_picked")
            )
        ).one()
    assert (entry.user_id, entry.entity_id, entry.details) == (
        anna.id,
        str(call.id),
        {"client_id": company.petr_id},
    )


async def test_given_a_persons_direct_number_then_the_pop_names_that_person_and_lists_nobody(
    ctx: AppContext,
) -> None:
    company = await seed_company(ctx)
    anna = await actor(ctx, Role.OPERATOR, "anna", extensions=["101"])

    card = await _screen_pop(ctx, "k2", "89161112233", anna.id)
    assert [o["client_id"] for o in card["owners"]] == [company.maria_id]
    assert card["contacts"] == []


@both_databases
async def test_given_two_ranked_tagged_cards_when_merged_then_tags_join_and_history_moves(
    ctx: AppContext, client: AsyncClient
) -> None:
    from callcenter.clients.merge import merge_clients
    from callcenter.crm.service import recompute_abc

    company = await seed_company(ctx)
    operator = await actor(ctx, Role.OPERATOR, "op")
    for person, names in ((company.maria_id, ["VIP", "опт"]), (company.petr_id, ["VIP", "юг"])):
        tagged = await client.post(
            f"/api/clients/{person}/tags", json={"names": names}, headers=operator.headers
        )
        assert tagged.status_code == 200
    await client.post(
        f"/api/clients/{company.petr_id}/notes", json={"text": "от Петра"}, headers=operator.headers
    )
    async with ctx.sessionmaker() as session:
        await recompute_abc(session, "calls")
        await session.commit()

    async with ctx.sessionmaker() as session:
        await merge_clients(session, company.maria_id, company.petr_id, user_id=operator.id)
        await session.commit()

    tags = await client.get(f"/api/clients/{company.maria_id}/tags", headers=operator.headers)
    ranks = await client.get(f"/api/clients/{company.maria_id}/ranks", headers=operator.headers)
    timeline = await client.get(
        f"/api/clients/{company.maria_id}/timeline", headers=operator.headers
    )
    assert [t["name"] for t in tags.json()] == ["VIP", "опт", "юг"]
    assert [r["basis"] for r in ranks.json()] == ["calls"]
    kinds = [(e["kind"], e.get("text") or e.get("action")) for e in timeline.json()["items"]]
    assert kinds == [("record", "client.merged"), ("note", "от Петра")]
