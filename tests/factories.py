"""Helpers that other tests use to make users and sign in."""

from __future__ import annotations

from collections.abc import Sequence

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth import service
from callcenter.auth.models import Role, User

DEFAULT_PASSWORD = "secret-pass-1"


async def make_user(
    session: AsyncSession,
    *,
    role: Role = Role.OPERATOR,
    login: str = "operator",
    extensions: Sequence[str] = (),
    password: str = DEFAULT_PASSWORD,
    name: str | None = None,
    queues: Sequence[str] = (),
    locale: str = "ru",
) -> User:
    """A user created through the service (flushed; the caller commits)."""
    return await service.create_user(
        session,
        login=login,
        name=name or login.title(),
        password=password,
        role=role,
        extensions=extensions,
        queues=queues,
        locale=locale,
    )


async def login_as(client: AsyncClient, login: str, password: str = DEFAULT_PASSWORD) -> str:
    """Sign `client` in (the cookie stays on it) and return the session's CSRF token."""
    response = await client.post("/api/auth/login", json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    return csrf


async def api_token_for(session: AsyncSession, user_id: int, name: str = "test") -> str:
    """A fresh API token for `user_id` (flushed; the caller commits); the plaintext value."""
    return (await service.create_api_token(session, user_id, name)).token


def bearer(token: str) -> dict[str, str]:
    """Request headers that authenticate with an API token."""
    return {"Authorization": f"Bearer {token}"}
