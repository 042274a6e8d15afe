"""Two requests that both pass a uniqueness check: the database refuses one, the API says 409."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from callcenter.auth import repository
from callcenter.auth.models import Role
from callcenter.context import AppContext
from tests.factories import login_as, make_user


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_a_login_taken_after_the_check_when_creating_then_409_not_500(
    ctx: AppContext, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ctx.sessionmaker() as session:
        await make_user(session, role=Role.ADMIN, login="admin")
        await session.commit()
    csrf = await login_as(client, "admin")
    body = {"login": "igor", "name": "Igor", "password": "long-enough-1", "role": "operator"}
    assert (await client.post("/api/users", json=body, headers={"X-CSRF-Token": csrf})).is_success

    async def nobody(*args: object, **kwargs: object) -> None:
        return None

    # The race: the second request's check ran before the first one's commit.
    monkeypatch.setattr(repository, "get_user_by_login", nobody)
    again = await client.post("/api/users", json=body, headers={"X-CSRF-Token": csrf})

    assert again.status_code == 409
    assert "conflicts" in again.json()["detail"]
