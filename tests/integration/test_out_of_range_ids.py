"""Ids no database column can hold are the request's fault: 422, never a 500 (found by
tests/integration/test_api_fuzz.py)."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from callcenter.auth.models import Role
from callcenter.context import AppContext
from tests.factories import api_token_for, bearer, make_user

PAST_INT32 = 2**31
PAST_INT64 = 2**63


@pytest.fixture
async def admin(ctx: AppContext) -> dict[str, str]:
    async with ctx.sessionmaker() as session:
        user = await make_user(session, role=Role.ADMIN, login="admin")
        token = await api_token_for(session, user.id)
        await session.commit()
    return bearer(token)


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("value", [PAST_INT32, PAST_INT64])
async def test_given_a_huge_id_in_a_path_then_422_at_that_parameter(
    client: AsyncClient, admin: dict[str, str], value: int
) -> None:
    response = await client.get(f"/api/calls/{value}", headers=admin)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "call_id"]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize(
    "path",
    [f"/api/calls?client_id={PAST_INT64}", f"/api/clients?organization_id={PAST_INT64}"],
)
async def test_given_a_huge_id_in_a_filter_then_422_not_a_server_error(
    client: AsyncClient, admin: dict[str, str], path: str
) -> None:
    response = await client.get(path, headers=admin)

    assert response.status_code == 422
    assert "out of the range" in response.json()["detail"]
