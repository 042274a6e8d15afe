"""Segments and their export, the ABC ranking, and the audit log reader (append-only)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from callcenter import audit
from callcenter.auth.models import Role
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, PhoneIn
from callcenter.context import AppContext
from callcenter.db import utcnow
from tests.crm_helpers import T0, Company, actor, add_calls, call_row, seed_company

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def _seed(ctx: AppContext) -> tuple[Company, int]:
    """The company, and a person whose name and email try to be spreadsheet formulas."""
    company = await seed_company(ctx)
    async with ctx.sessionmaker() as session:
        evil = await clients.create_client(
            session,
            ctx.phones,
            ClientIn(
                name='=HYPERLINK("http://evil","x")',
                email="a@b.ru",
                phones=[PhoneIn(raw="+7 926 555-44-33"), PhoneIn(raw="+7 926 555-44-34")],
            ),
        )
        await session.commit()
        return company, evil.id


def _rows(body: str) -> list[list[str]]:
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))


@both_databases
async def test_given_segments_when_exported_then_the_mailing_list_is_right_safe_and_audited(
    ctx: AppContext, client: AsyncClient
) -> None:
    company, evil_id = await _seed(ctx)
    operator = await actor(ctx, Role.OPERATOR, "op")
    supervisor = await actor(ctx, Role.SUPERVISOR, "sup")
    await client.post(
        f"/api/clients/{company.maria_id}/tags", json={"names": ["VIP"]}, headers=operator.headers
    )
    await client.post(
        f"/api/clients/{evil_id}/tags", json={"names": ["VIP"]}, headers=operator.headers
    )
    await client.post(
        f"/api/organizations/{company.organization_id}/tags",
        json={"names": ["Партнёр"]},
        headers=operator.headers,
    )

    by_operator = await client.post("/api/segments", json={"name": "x"}, headers=operator.headers)
    vip = await client.post(
        "/api/segments",
        json={"name": "VIP с почтой", "filter": {"tags": ["vip"], "has_email": True}},
        headers=supervisor.headers,
    )
    partners = await client.post(
        "/api/segments",
        json={"name": "Партнёры", "filter": {"tags": ["партнёр"]}},
        headers=supervisor.headers,
    )
    duplicate = await client.post(
        "/api/segments", json={"name": "Партнёры"}, headers=supervisor.headers
    )
    vip_id, partners_id = vip.json()["id"], partners.json()["id"]

    refused = await client.get(f"/api/segments/{vip_id}/export", headers=operator.headers)
    exported = await client.get(f"/api/segments/{vip_id}/export", headers=supervisor.headers)
    members = await client.get(f"/api/segments/{partners_id}/clients", headers=operator.headers)

    assert by_operator.status_code == 403
    assert vip.status_code == 201
    assert vip.json()["filter"]["tags"] == ["vip"]
    assert duplicate.status_code == 409
    assert refused.status_code == 403
    assert refused.json()["detail"]["right"] == "export"
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    assert _rows(exported.text) == [
        ["name", "organization", "position", "email", "phones"],
        ['\'=HYPERLINK("http://evil","x")', "", "", "a@b.ru", "'+79265554433; +79265554434"],
        ["Мария Сидорова", "ООО «Ромашка»", "бухгалтер", "maria@romashka.ru", "'+79161112233"],
    ]
    assert [c["name"] for c in members.json()["items"]] == ["Мария Сидорова", "Пётр Иванов"]

    admin = await actor(ctx, Role.ADMIN, "admin")
    log = await client.get("/api/audit", params={"action": "export"}, headers=admin.headers)
    [entry] = log.json()["items"]
    assert entry["user"] == {"id": supervisor.id, "name": "Sup"}
    assert (entry["entity"], entry["entity_id"]) == ("segment", str(vip_id))
    assert entry["details"]["count"] == 2
    assert entry["details"]["filter"] == {"tags": ["vip"], "has_email": True}
    assert sorted(entry["details"]["ids"]) == sorted([company.maria_id, evil_id])


@both_databases
async def test_given_calls_when_ranked_then_segments_find_a_clients_and_recent_callers(
    ctx: AppContext, client: AsyncClient
) -> None:
    company, evil_id = await _seed(ctx)
    supervisor = await actor(ctx, Role.SUPERVISOR, "sup")
    now = utcnow()
    await add_calls(
        ctx,
        *[
            call_row(f"m{i}", started_at=now - timedelta(days=i + 1), client_id=company.maria_id)
            for i in range(8)
        ],
        call_row("p1", started_at=now - timedelta(days=40), client_id=company.petr_id),
        call_row("old", started_at=now - timedelta(days=800), client_id=evil_id),
    )

    ranked = await client.post("/api/ranking/abc", json={"by": "calls"}, headers=supervisor.headers)
    a_class = await client.post(
        "/api/segments",
        json={"name": "A", "filter": {"abc_classes": ["A"]}},
        headers=supervisor.headers,
    )
    recent = await client.post(
        "/api/segments",
        json={
            "name": "recent",
            "filter": {"last_call_after": (now - timedelta(days=30)).isoformat()},
        },
        headers=supervisor.headers,
    )
    by_talk = await client.post(
        "/api/ranking/abc", json={"by": "talk_time"}, headers=supervisor.headers
    )
    ranks = await client.get(f"/api/clients/{company.petr_id}/ranks", headers=supervisor.headers)

    assert ranked.status_code == 200, ranked.text
    assert ranked.json()["counts"] == {"A": 1, "B": 1, "C": 1}
    assert by_talk.status_code == 200
    assert [(r["basis"], r["abc_class"]) for r in ranks.json()] == [
        ("calls", "B"),
        ("talk_time", "B"),
    ]
    a_members = await client.get(
        f"/api/segments/{a_class.json()['id']}/clients", headers=supervisor.headers
    )
    recent_members = await client.get(
        f"/api/segments/{recent.json()['id']}/clients", headers=supervisor.headers
    )
    assert [c["id"] for c in a_members.json()["items"]] == [company.maria_id]
    assert [c["id"] for c in recent_members.json()["items"]] == [company.maria_id]


@both_databases
async def test_given_views_changes_and_listening_then_the_admin_reads_them_per_client(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    operator = await actor(ctx, Role.OPERATOR, "op")
    supervisor = await actor(ctx, Role.SUPERVISOR, "sup")
    admin = await actor(ctx, Role.ADMIN, "admin")
    [call_id] = await add_calls(ctx, call_row("r1", client_id=company.maria_id, recording="r1.wav"))
    maria = company.maria_id

    await client.get(f"/api/clients/{maria}", headers=operator.headers)
    await client.get("/api/clients", params={"q": "мари"}, headers=operator.headers)
    await client.get("/api/lookup", params={"phone": "89161112233"}, headers=operator.headers)
    await client.get(f"/api/organizations/{company.organization_id}", headers=operator.headers)
    await client.patch(
        f"/api/clients/{maria}", json={"email": "m@r.ru"}, headers=supervisor.headers
    )
    async with ctx.sessionmaker() as session:  # as the recordings download endpoint does
        await audit.record(
            session,
            user_id=supervisor.id,
            action="recording.listened",
            entity="call",
            entity_id=str(call_id),
            details={},
        )
        await session.commit()

    for reader in (operator, supervisor):
        refused = await client.get("/api/audit", headers=reader.headers)
        assert refused.status_code == 403
    page = await client.get("/api/audit", params={"client_id": maria}, headers=admin.headers)

    assert page.status_code == 200
    seen = [
        (e["action"], e["entity"], e["entity_id"], e["user"]["id"]) for e in page.json()["items"]
    ]
    assert seen == [
        ("recording.listened", "call", str(call_id), supervisor.id),
        ("update", "client", str(maria), supervisor.id),
        ("view", "organization", str(company.organization_id), operator.id),
        ("view", "client", "lookup", operator.id),
        ("view", "client", "list", operator.id),
        ("view", "client", str(maria), operator.id),
    ]
    listened = await client.get(
        "/api/audit", params={"action": "recording.*"}, headers=admin.headers
    )
    assert [e["action"] for e in listened.json()["items"]] == ["recording.listened"]
    by_user = await client.get(
        "/api/audit", params={"user_id": operator.id, "limit": 2}, headers=admin.headers
    )
    first = by_user.json()
    rest = await client.get(
        "/api/audit",
        params={"user_id": operator.id, "limit": 2, "before": first["next_before"]},
        headers=admin.headers,
    )
    assert [e["entity_id"] for e in first["items"] + rest.json()["items"]] == [
        str(company.organization_id),
        "lookup",
        "list",
        str(maria),
    ]
    assert rest.json()["next_before"] is None
    window = await client.get(
        "/api/audit",
        params={"from": (T0 + timedelta(days=3650)).isoformat()},
        headers=admin.headers,
    )
    assert window.json()["items"] == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_given_postgres_when_an_audit_entry_is_updated_or_deleted_then_the_database_refuses(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        await audit.record(session, user_id=None, action="view", entity="client", entity_id="1")
        await session.commit()

    for statement in ("UPDATE audit_log SET action = 'nothing'", "DELETE FROM audit_log"):
        async with ctx.sessionmaker() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement))
            await session.rollback()

    async with ctx.sessionmaker() as session:
        kept = (await session.execute(text("SELECT action FROM audit_log"))).scalars().all()
    assert kept == ["view"]
