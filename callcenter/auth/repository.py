"""SQL for users, their extensions, sessions and API tokens. No decisions here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import AgentExtension, ApiToken, AuthSession, Role, User


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_login(session: AsyncSession, login: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.login) == login.lower()))


async def list_users(session: AsyncSession) -> Sequence[User]:
    return (await session.scalars(select(User).order_by(User.login))).all()


async def count_active_admins(session: AsyncSession) -> int:
    query = select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.is_active)
    return int(await session.scalar(query) or 0)


async def extensions_by_user(
    session: AsyncSession, user_ids: Iterable[int]
) -> dict[int, list[str]]:
    ids = list(user_ids)
    found: dict[int, list[str]] = {user_id: [] for user_id in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(AgentExtension.user_id, AgentExtension.extension)
        .where(AgentExtension.user_id.in_(ids))
        .order_by(AgentExtension.extension)
    )
    for user_id, extension in rows:
        found[user_id].append(extension)
    return found


async def extension_owners(session: AsyncSession, extensions: Iterable[str]) -> dict[str, int]:
    wanted = list(extensions)
    if not wanted:
        return {}
    rows = await session.execute(
        select(AgentExtension.extension, AgentExtension.user_id).where(
            AgentExtension.extension.in_(wanted)
        )
    )
    return {extension: user_id for extension, user_id in rows}


async def replace_extensions(session: AsyncSession, user_id: int, extensions: list[str]) -> None:
    await session.execute(delete(AgentExtension).where(AgentExtension.user_id == user_id))
    session.add_all(AgentExtension(extension=e, user_id=user_id) for e in extensions)
    await session.flush()


async def get_auth_session(session: AsyncSession, session_id: str) -> AuthSession | None:
    return await session.get(AuthSession, session_id)


async def get_auth_session_with_user(
    session: AsyncSession, session_id: str
) -> tuple[AuthSession, User] | None:
    row = (
        await session.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == session_id)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def active_sessions(
    session: AsyncSession, user_id: int, now: datetime
) -> Sequence[AuthSession]:
    query = (
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(AuthSession.created_at.desc())
    )
    return (await session.scalars(query)).all()


async def revoke_sessions_of(session: AsyncSession, user_id: int, now: datetime) -> int:
    result = await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def get_api_token(session: AsyncSession, token_id: int) -> ApiToken | None:
    return await session.get(ApiToken, token_id)


async def get_api_token_with_user(
    session: AsyncSession, token_hash: str
) -> tuple[ApiToken, User] | None:
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == token_hash)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def api_tokens_of(session: AsyncSession, user_id: int) -> Sequence[ApiToken]:
    query = (
        select(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.id)
    )
    return (await session.scalars(query)).all()
