"""Clients, organisations, phones and lookup over the REST API."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from callcenter.auth.models import Role
from callcenter.context import AppContext
from tests.factories import login_as, make_user

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def _operator(ctx: AppContext, client: AsyncClient, login: str = "op") -> dict[str, str]:
    async with ctx.sessionmaker() as session:
        await make_user(session, role=Role.OPERATOR, login=login, password="secret-pass-1")
        await session.commit()
    csrf = await login_as(client, login, "secret-pass-1")
    return {"X-CSRF-Token": csrf}


async def test_given_client_stored_in_one_format_when_looked_up_in_any_format_then_found(
    ctx: AppContext, client: AsyncClient
) -> None:
    headers = await _operator(ctx, client)
    created = await client.post(
        "/api/clients",
        json={"name": "Мария Сидорова", "phones": [{"raw": "8 (916) 123-45-67", "kind": "mobile"}]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["phones"][0]["e164"] == "+79161234567"
    for written in ["+7 916 123-45-67", "89161234567", "79161234567", "9161234567",
                    "+7(916)1234567", "8-916-123-45-67"]:
        found = await client.get("/api/lookup", params={"phone": written})
        assert found.status_code == 200, (written, found.text)
        body = found.json()
        assert body["e164"] == "+79161234567"
        assert [o["client_name"] for o in body["owners"]] == ["Мария Сидорова"]
        assert body["ambiguous"] is False


async def test_given_garbage_number_when_looked_up_then_422_with_reason(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _operator(ctx, client)
    response = await client.get("/api/lookup", params={"phone": "not a phone"})
    assert response.status_code == 422
    assert response.json()["detail"]["reason"]


async def test_given_number_owned_when_another_card_claims_it_then_409_unless_shared(
    ctx: AppContext, client: AsyncClient
) -> None:
    headers = await _operator(ctx, client)
    first = await client.post(
        "/api/clients", json={"name": "A", "phones": [{"raw": "+74951112233"}]}, headers=headers
    )
    assert first.status_code == 201
    taken = await client.post(
        "/api/clients", json={"name": "B", "phones": [{"raw": "84951112233"}]}, headers=headers
    )
    assert taken.status_code == 409
    assert taken.json()["detail"]["owners"][0]["client_name"] == "A"
    shared = await client.post(
        "/api/clients",
        json={"name": "B", "phones": [{"raw": "84951112233", "shared": True}]},
        headers=headers,
    )
    assert shared.status_code == 201
    lookup = (await client.get("/api/lookup", params={"phone": "4951112233"})).json()
    assert lookup["ambiguous"] is True
    assert sorted(o["client_name"] for o in lookup["owners"]) == ["A", "B"]


async def test_given_organization_with_contacts_when_company_number_looked_up_then_company(
    ctx: AppContext, client: AsyncClient
) -> None:
    headers = await _operator(ctx, client)
    org = await client.post(
        "/api/organizations",
        json={"name": "ООО Ромашка", "inn": "7701234567", "phones": [{"raw": "+7 495 123-45-67"}]},
        headers=headers,
    )
    assert org.status_code == 201, org.text
    org_id = org.json()["id"]
    person = await client.post(
        "/api/clients",
        json={"name": "Павел", "organization_id": org_id, "position": "бухгалтер",
              "phones": [{"raw": "+7 903 555-12-12"}]},
        headers=headers,
    )
    assert person.status_code == 201
    detail = (await client.get(f"/api/organizations/{org_id}")).json()
    assert [c["name"] for c in detail["contacts"]] == ["Павел"]
    company = (await client.get("/api/lookup", params={"phone": "123-45-67"})).json()
    assert company["owners"][0]["organization_name"] == "ООО Ромашка"
    assert company["owners"][0]["client_id"] is None
    direct = (await client.get("/api/lookup", params={"phone": "89035551212"})).json()
    assert direct["owners"][0]["client_name"] == "Павел"
    assert direct["owners"][0]["organization_name"] == "ООО Ромашка"
    assert direct["owners"][0]["position"] == "бухгалтер"


async def test_given_invalid_payloads_then_422_and_unknown_ids_404(
    ctx: AppContext, client: AsyncClient
) -> None:
    headers = await _operator(ctx, client)
    assert (await client.post("/api/clients", json={}, headers=headers)).status_code == 422
    bad_phone = await client.post(
        "/api/clients", json={"name": "X", "phones": [{"raw": "12"}]}, headers=headers
    )
    assert bad_phone.status_code == 422
    assert (await client.get("/api/clients/999999")).status_code == 404
    assert (await client.get("/api/organizations/999999")).status_code == 404
    missing_org = await client.post(
        "/api/clients", json={"name": "X", "organization_id": 424242}, headers=headers
    )
    assert missing_org.status_code == 404
    listing = (await client.get("/api/clients", params={"per_page": 1000})).status_code
    assert listing == 422


async def test_given_many_clients_when_listing_then_paginated_and_searchable(
    ctx: AppContext, client: AsyncClient
) -> None:
    headers = await _operator(ctx, client)
    for n in range(7):
        response = await client.post("/api/clients", json={"name": f"Клиент {n}"}, headers=headers)
        assert response.status_code == 201
    page = (await client.get("/api/clients", params={"per_page": 3, "page": 3})).json()
    assert page["total"] == 7
    assert [c["name"] for c in page["items"]] == ["Клиент 6"]
    found = (await client.get("/api/clients", params={"q": "клиент 4"})).json()
    assert [c["name"] for c in found["items"]] == ["Клиент 4"]
