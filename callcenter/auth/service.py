"""Users, logins, server-side sessions and API tokens. Callers commit; nothing here does."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth import repository
from callcenter.auth.models import ApiToken, AuthSession, Role, User
from callcenter.auth.security import (
    burn_password_check,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)
from callcenter.config import Locale
from callcenter.db import utcnow

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
LOGIN_PATTERN = re.compile(r"^[\w.@+-]{1,64}$")
MAX_NAME_LENGTH = 255
MAX_EXTENSION_LENGTH = 64
MAX_QUEUE_LENGTH = 64
LOCALES: frozenset[str] = frozenset(get_args(Locale))
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
"""`ApiToken.last_used_at` is written at most this often, not on every request."""


class AuthError(Exception):
    """Base of this module's errors; the message is safe to show to an administrator."""


class InvalidUserData(AuthError, ValueError):
    """A field of a user is malformed (login, name, password, locale, extension, queue)."""


class WeakPassword(InvalidUserData):
    """The password is shorter than MIN_PASSWORD_LENGTH (or absurdly long)."""


class LoginTaken(AuthError, ValueError):
    """Another user already has this login (logins are case-insensitive)."""

    def __init__(self, login: str) -> None:
        super().__init__(f"login {login!r} is already taken")
        self.login = login


class ExtensionTaken(AuthError, ValueError):
    """An extension rings exactly one user; this one already belongs to someone else."""

    def __init__(self, extension: str, owner_id: int) -> None:
        super().__init__(f"extension {extension!r} already belongs to user {owner_id}")
        self.extension = extension
        self.owner_id = owner_id


class LastAdmin(AuthError, ValueError):
    """The change would leave no active administrator."""

    def __init__(self) -> None:
        super().__init__("this would leave no active administrator")


class UserNotFound(AuthError, LookupError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} not found")
        self.user_id = user_id


class SessionNotFound(AuthError, LookupError):
    def __init__(self) -> None:
        super().__init__("session not found")


class TokenNotFound(AuthError, LookupError):
    def __init__(self, token_id: int) -> None:
        super().__init__(f"API token {token_id} not found")
        self.token_id = token_id


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user with the extensions that ring their phone."""

    user: User
    extensions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NewSession:
    """A started session; `token` goes into the cookie and is never stored."""

    auth_session: AuthSession
    token: str


@dataclass(frozen=True, slots=True)
class NewApiToken:
    """A created API token; `token` is shown once and never stored."""

    api_token: ApiToken
    token: str


# --- validation --------------------------------------------------------------------------


def normalize_login(login: str) -> str:
    """The canonical (trimmed, lower-case) form of a login; InvalidUserData if malformed."""
    canonical = login.strip().lower()
    if not LOGIN_PATTERN.fullmatch(canonical):
        raise InvalidUserData(
            "login must be 1-64 letters, digits or . _ @ + - characters, without spaces"
        )
    return canonical


def _check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidUserData(f"name must be 1-{MAX_NAME_LENGTH} characters")
    return cleaned


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


def _check_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise InvalidUserData(f"locale must be one of {', '.join(sorted(LOCALES))}")
    return locale


def _clean_list(values: Iterable[str], what: str, max_length: int) -> list[str]:
    cleaned: list[str] = []
    for raw in values:
        value = raw.strip()
        if not value or len(value) > max_length:
            raise InvalidUserData(f"each {what} must be 1-{max_length} characters")
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


async def _check_extensions_free(
    session: AsyncSession, extensions: list[str], user_id: int | None
) -> None:
    owners = await repository.extension_owners(session, extensions)
    for extension in extensions:
        owner = owners.get(extension)
        if owner is not None and owner != user_id:
            raise ExtensionTaken(extension, owner)


# --- users -------------------------------------------------------------------------------


async def create_user(
    session: AsyncSession,
    *,
    login: str,
    name: str,
    password: str,
    role: Role,
    extensions: Iterable[str] = (),
    queues: Iterable[str] = (),
    locale: str = "ru",
) -> User:
    """Create a user with a hashed password and their extensions (flushed, not committed)."""
    canonical = normalize_login(login)
    clean_name = _check_name(name)
    _check_password(password)
    _check_locale(locale)
    clean_extensions = _clean_list(extensions, "extension", MAX_EXTENSION_LENGTH)
    clean_queues = _clean_list(queues, "queue", MAX_QUEUE_LENGTH)
    if await repository.get_user_by_login(session, canonical) is not None:
        raise LoginTaken(canonical)
    await _check_extensions_free(session, clean_extensions, None)
    user = User(
        login=canonical,
        name=clean_name,
        password_hash=hash_password(password),
        role=Role(role),
        locale=locale,
        queues=clean_queues,
        is_active=True,
        created_at=utcnow(),
    )
    session.add(user)
    await session.flush()
    await repository.replace_extensions(session, user.id, clean_extensions)
    return user


async def get_user(session: AsyncSession, user_id: int) -> UserRecord:
    """The user `user_id` with their extensions; UserNotFound otherwise."""
    user = await repository.get_user(session, user_id)
    if user is None:
        raise UserNotFound(user_id)
    extensions = await repository.extensions_by_user(session, [user.id])
    return UserRecord(user, extensions[user.id])


async def list_users(session: AsyncSession) -> list[UserRecord]:
    """Every user, by login, with their extensions."""
    users = await repository.list_users(session)
    extensions = await repository.extensions_by_user(session, [u.id for u in users])
    return [UserRecord(u, extensions[u.id]) for u in users]


async def update_user(
    session: AsyncSession,
    user_id: int,
    *,
    name: str | None = None,
    role: Role | None = None,
    extensions: Iterable[str] | None = None,
    queues: Iterable[str] | None = None,
    is_active: bool | None = None,
    locale: str | None = None,
    password: str | None = None,
    now: datetime | None = None,
) -> tuple[UserRecord, dict[str, Any]]:
    """Apply the changes given (not None); deactivation or a new password ends all sessions."""
    now = now or utcnow()
    record = await get_user(session, user_id)
    user = record.user
    # Validate everything before changing anything.
    clean_name = _check_name(name) if name is not None else None
    clean_locale = _check_locale(locale) if locale is not None else None
    clean_queues = _clean_list(queues, "queue", MAX_QUEUE_LENGTH) if queues is not None else None
    clean_extensions = (
        _clean_list(extensions, "extension", MAX_EXTENSION_LENGTH)
        if extensions is not None
        else None
    )
    if password is not None:
        _check_password(password)
    loses_admin = (role is not None and role != Role.ADMIN) or is_active is False
    if (
        user.role == Role.ADMIN
        and user.is_active
        and loses_admin
        and await repository.count_active_admins(session) <= 1
    ):
        raise LastAdmin()
    if clean_extensions is not None and sorted(clean_extensions) != record.extensions:
        await _check_extensions_free(session, clean_extensions, user.id)

    changes: dict[str, Any] = {}
    if clean_name is not None and clean_name != user.name:
        user.name = clean_name
        changes["name"] = clean_name
    if clean_locale is not None and clean_locale != user.locale:
        user.locale = clean_locale
        changes["locale"] = clean_locale
    if clean_queues is not None and clean_queues != list(user.queues):
        user.queues = clean_queues
        changes["queues"] = clean_queues
    new_extensions = record.extensions
    if clean_extensions is not None and sorted(clean_extensions) != record.extensions:
        await repository.replace_extensions(session, user.id, clean_extensions)
        new_extensions = sorted(clean_extensions)
        changes["extensions"] = new_extensions
    if role is not None and role != user.role:
        user.role = Role(role)
        changes["role"] = user.role.value
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        changes["is_active"] = is_active
    if password is not None:
        user.password_hash = hash_password(password)
        changes["password"] = True
    if changes.get("is_active") is False or "password" in changes:
        changes["sessions_revoked"] = await repository.revoke_sessions_of(session, user.id, now)
    await session.flush()
    return UserRecord(user, new_extensions), changes


async def set_locale(session: AsyncSession, user_id: int, locale: str) -> User:
    """Remember the user's interface language."""
    record = await get_user(session, user_id)
    record.user.locale = _check_locale(locale)
    await session.flush()
    return record.user


# --- logins and sessions -----------------------------------------------------------------


async def authenticate(session: AsyncSession, login: str, password: str) -> User | None:
    """The active user with this login and password, else None (same cost either way)."""
    try:
        canonical = normalize_login(login)
    except InvalidUserData:
        burn_password_check(password)
        return None
    user = await repository.get_user_by_login(session, canonical)
    if user is None:
        burn_password_check(password)
        return None
    check = verify_password(user.password_hash, password)
    if not check.ok or not user.is_active:
        return None
    if check.new_hash is not None:
        user.password_hash = check.new_hash
        await session.flush()
    return user


async def start_session(
    session: AsyncSession,
    user: User,
    *,
    ttl_hours: int,
    ip: str = "",
    user_agent: str = "",
    now: datetime | None = None,
) -> NewSession:
    """A new session with a fresh random id (never reused, so fixation is impossible)."""
    now = now or utcnow()
    token = new_token()
    auth_session = AuthSession(
        id=token_digest(token),
        user_id=user.id,
        csrf_token=new_token(),
        created_at=now,
        expires_at=now + timedelta(hours=ttl_hours),
        revoked_at=None,
        user_agent=user_agent[:255],
        ip=ip[:64],
    )
    session.add(auth_session)
    await session.flush()
    return NewSession(auth_session, token)


async def resolve_session(
    session: AsyncSession, token: str | None, *, now: datetime | None = None
) -> tuple[AuthSession, User] | None:
    """The live session behind a cookie token and its user; None if expired, revoked or inactive."""
    if not token:
        return None
    found = await repository.get_auth_session_with_user(session, token_digest(token))
    if found is None:
        return None
    auth_session, user = found
    if auth_session.revoked_at is not None or not user.is_active:
        return None
    if auth_session.expires_at <= (now or utcnow()):
        return None
    return auth_session, user


async def revoke_session(
    session: AsyncSession, session_id: str, *, now: datetime | None = None
) -> AuthSession:
    """End the session stored under `session_id` (idempotent); SessionNotFound otherwise."""
    auth_session = await repository.get_auth_session(session, session_id)
    if auth_session is None:
        raise SessionNotFound()
    if auth_session.revoked_at is None:
        auth_session.revoked_at = now or utcnow()
        await session.flush()
    return auth_session


async def revoke_session_token(
    session: AsyncSession, token: str | None, *, now: datetime | None = None
) -> AuthSession | None:
    """End the session behind a cookie token, if there is one."""
    if not token:
        return None
    try:
        return await revoke_session(session, token_digest(token), now=now)
    except SessionNotFound:
        return None


async def revoke_user_sessions(
    session: AsyncSession, user_id: int, *, now: datetime | None = None
) -> int:
    """End every open session of a user; how many were ended."""
    return await repository.revoke_sessions_of(session, user_id, now or utcnow())


async def list_sessions(
    session: AsyncSession, user_id: int, *, now: datetime | None = None
) -> Sequence[AuthSession]:
    """The user's live sessions, newest first; UserNotFound for an unknown user."""
    await get_user(session, user_id)
    return await repository.active_sessions(session, user_id, now or utcnow())


# --- API tokens --------------------------------------------------------------------------


async def create_api_token(
    session: AsyncSession, user_id: int, name: str, *, now: datetime | None = None
) -> NewApiToken:
    """A bearer token acting as `user_id`; the plaintext is returned here only."""
    await get_user(session, user_id)
    clean_name = " ".join(name.split())
    if not clean_name or len(clean_name) > 128:
        raise InvalidUserData("token name must be 1-128 characters")
    token = new_token()
    api_token = ApiToken(
        token_hash=token_digest(token),
        name=clean_name,
        user_id=user_id,
        created_at=now or utcnow(),
    )
    session.add(api_token)
    await session.flush()
    return NewApiToken(api_token, token)


async def resolve_api_token(
    session: AsyncSession, token: str | None, *, now: datetime | None = None
) -> tuple[ApiToken, User] | None:
    """The live token and its active owner; marks it used (at most once a minute)."""
    if not token:
        return None
    found = await repository.get_api_token_with_user(session, token_digest(token))
    if found is None:
        return None
    api_token, user = found
    if api_token.revoked_at is not None or not user.is_active:
        return None
    now = now or utcnow()
    last = api_token.last_used_at
    if last is None or now - last >= TOKEN_TOUCH_INTERVAL:
        api_token.last_used_at = now
        await session.flush()
    return api_token, user


async def list_api_tokens(session: AsyncSession, user_id: int) -> Sequence[ApiToken]:
    """The user's tokens that still work; UserNotFound for an unknown user."""
    await get_user(session, user_id)
    return await repository.api_tokens_of(session, user_id)


async def revoke_api_token(
    session: AsyncSession, token_id: int, *, now: datetime | None = None
) -> ApiToken:
    """Stop a token from working (idempotent); TokenNotFound otherwise."""
    api_token = await repository.get_api_token(session, token_id)
    if api_token is None:
        raise TokenNotFound(token_id)
    if api_token.revoked_at is None:
        api_token.revoked_at = now or utcnow()
        await session.flush()
    return api_token
