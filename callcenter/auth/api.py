"""HTTP endpoints for logging in and out, the current user, and user administration."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, NoReturn

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from callcenter import audit
from callcenter.auth import service
from callcenter.auth.deps import SESSION_COOKIE, AdminP, OperatorP
from callcenter.auth.models import ApiToken, AuthSession, Role
from callcenter.auth.ratelimit import login_key
from callcenter.config import Locale, Settings
from callcenter.deps import Ctx, Db

router = APIRouter(prefix="/api", tags=["auth"])

WRONG_CREDENTIALS = "wrong login or password"

UserId = Annotated[int, Path(ge=1, le=2_147_483_647)]
TokenId = Annotated[int, Path(ge=1, le=2_147_483_647)]
SessionId = Annotated[str, Path(min_length=1, max_length=128)]
Extension = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Queue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Password = Annotated[
    str,
    StringConstraints(min_length=service.MIN_PASSWORD_LENGTH, max_length=1024),
]


# --- request and response models ---------------------------------------------------------


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: int
    login: str
    name: str
    role: Role
    locale: str
    queues: list[str]
    extensions: list[str]
    is_active: bool
    created_at: datetime


class MeOut(BaseModel):
    user: UserOut
    csrf_token: str | None
    """Echo it in `X-CSRF-Token` on unsafe requests; None when signed in with an API token."""


class LocaleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: Locale


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1, max_length=64, pattern=r"^\s*[\w.@+-]+\s*$")
    name: str = Field(min_length=1, max_length=255)
    password: Password
    role: Role = Role.OPERATOR
    extensions: list[Extension] = Field(default_factory=list, max_length=50)
    queues: list[Queue] = Field(default_factory=list, max_length=100)
    locale: Locale = "ru"


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    role: Role | None = None
    extensions: list[Extension] | None = Field(default=None, max_length=50)
    queues: list[Queue] | None = Field(default=None, max_length=100)
    is_active: bool | None = None
    locale: Locale | None = None
    password: Password | None = None


class SessionOut(BaseModel):
    id: str
    user_id: int
    created_at: datetime
    expires_at: datetime
    ip: str
    user_agent: str


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)


class TokenOut(BaseModel):
    id: int
    name: str
    user_id: int
    created_at: datetime
    last_used_at: datetime | None


class NewTokenOut(TokenOut):
    token: str
    """The bearer token itself; shown this once, only its hash is kept."""


# --- helpers -----------------------------------------------------------------------------


def _user_out(record: service.UserRecord) -> UserOut:
    user = record.user
    return UserOut(
        id=user.id,
        login=user.login,
        name=user.name,
        role=Role(user.role),
        locale=user.locale,
        queues=list(user.queues),
        extensions=list(record.extensions),
        is_active=user.is_active,
        created_at=user.created_at,
    )


def _session_out(row: AuthSession) -> SessionOut:
    return SessionOut(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        ip=row.ip,
        user_agent=row.user_agent,
    )


def _token_out(row: ApiToken) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        user_id=row.user_id,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _raise_http(exc: service.AuthError) -> NoReturn:
    if isinstance(exc, LookupError):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    if isinstance(exc, service.InvalidUserData):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc


def _set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_hours * 3600,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def _clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=settings.cookie_secure, httponly=True, samesite="lax"
    )


# --- the signed-in user ------------------------------------------------------------------


@router.post("/auth/login", response_model=MeOut)
async def login(body: LoginIn, request: Request, response: Response, db: Db, ctx: Ctx) -> MeOut:
    """Exchange a login and password for a session cookie and its CSRF token."""
    ip = _client_ip(request)
    user_agent = request.headers.get("user-agent", "")[:255]
    key = login_key(ip, body.login)
    if not ctx.login_limiter.hit(key):
        retry = max(1, math.ceil(ctx.login_limiter.retry_after(key)))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many login attempts; try again later",
            headers={"Retry-After": str(retry)},
        )
    user = await service.authenticate(db, body.login, body.password)
    if user is None:
        await audit.record(
            db,
            user_id=None,
            action="login_failed",
            entity="user",
            entity_id=body.login.strip().lower(),
            details={"ip": ip, "user_agent": user_agent},
        )
        await db.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=WRONG_CREDENTIALS)
    ctx.login_limiter.reset(key)
    # A browser that was signed in before gets a new session; the old one ends here.
    await service.revoke_session_token(db, request.cookies.get(SESSION_COOKIE))
    started = await service.start_session(
        db, user, ttl_hours=ctx.settings.session_ttl_hours, ip=ip, user_agent=user_agent
    )
    await audit.record(
        db,
        user_id=user.id,
        action="login",
        entity="user",
        entity_id=str(user.id),
        details={"ip": ip, "user_agent": user_agent},
    )
    record = await service.get_user(db, user.id)
    await db.commit()
    _set_session_cookie(response, started.token, ctx.settings)
    return MeOut(user=_user_out(record), csrf_token=started.auth_session.csrf_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(db: Db, ctx: Ctx, who: OperatorP) -> Response:
    """End the current session and clear its cookie."""
    if who.session_id is not None:
        await service.revoke_session(db, who.session_id)
        await audit.record(
            db,
            user_id=who.user_id,
            action="logout",
            entity="user",
            entity_id=str(who.user_id),
            details={},
        )
        await db.commit()
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_session_cookie(response, ctx.settings)
    return response


@router.get("/auth/me", response_model=MeOut)
async def me(db: Db, who: OperatorP) -> MeOut:
    """The signed-in user and, for cookie sessions, the CSRF token."""
    record = await service.get_user(db, who.user_id)
    return MeOut(user=_user_out(record), csrf_token=who.csrf_token)


@router.put("/auth/me/locale", response_model=MeOut)
async def set_my_locale(db: Db, who: OperatorP, body: LocaleIn) -> MeOut:
    """Remember the signed-in user's interface language."""
    await service.set_locale(db, who.user_id, body.locale)
    record = await service.get_user(db, who.user_id)
    await db.commit()
    return MeOut(user=_user_out(record), csrf_token=who.csrf_token)


# --- administration ----------------------------------------------------------------------


@router.get("/users", response_model=list[UserOut])
async def list_users(db: Db, who: AdminP) -> list[UserOut]:
    """Every user with role, extensions and queues."""
    records = await service.list_users(db)
    await audit.record(
        db, user_id=who.user_id, action="list", entity="user", entity_id="*", details={}
    )
    await db.commit()
    return [_user_out(r) for r in records]


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(db: Db, who: AdminP, body: UserIn) -> UserOut:
    """Create a user (logins are unique; an extension rings one user only)."""
    try:
        user = await service.create_user(
            db,
            login=body.login,
            name=body.name,
            password=body.password,
            role=body.role,
            extensions=body.extensions,
            queues=body.queues,
            locale=body.locale,
        )
        record = await service.get_user(db, user.id)
    except service.AuthError as exc:
        _raise_http(exc)
    await audit.record(
        db,
        user_id=who.user_id,
        action="create",
        entity="user",
        entity_id=str(user.id),
        details={
            "login": user.login,
            "role": user.role.value,
            "extensions": record.extensions,
            "queues": list(user.queues),
        },
    )
    await db.commit()
    return _user_out(record)


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(db: Db, who: AdminP, user_id: UserId, body: UserPatch) -> UserOut:
    """Change a user's name, role, extensions, queues, locale, password or active flag."""
    try:
        record, changes = await service.update_user(
            db,
            user_id,
            name=body.name,
            role=body.role,
            extensions=body.extensions,
            queues=body.queues,
            is_active=body.is_active,
            locale=body.locale,
            password=body.password,
        )
    except service.AuthError as exc:
        _raise_http(exc)
    if changes:
        await audit.record(
            db,
            user_id=who.user_id,
            action="update",
            entity="user",
            entity_id=str(user_id),
            details=changes,
        )
    await db.commit()
    return _user_out(record)


@router.get("/users/{user_id}/sessions", response_model=list[SessionOut])
async def list_user_sessions(db: Db, who: AdminP, user_id: UserId) -> list[SessionOut]:
    """The user's live sessions, newest first."""
    try:
        rows: Sequence[AuthSession] = await service.list_sessions(db, user_id)
    except service.AuthError as exc:
        _raise_http(exc)
    await audit.record(
        db,
        user_id=who.user_id,
        action="list",
        entity="session",
        entity_id=str(user_id),
        details={},
    )
    await db.commit()
    return [_session_out(r) for r in rows]


@router.delete("/auth/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(db: Db, who: AdminP, session_id: SessionId) -> Response:
    """End a session at once: its next request is answered 401."""
    try:
        row = await service.revoke_session(db, session_id)
    except service.AuthError as exc:
        _raise_http(exc)
    await audit.record(
        db,
        user_id=who.user_id,
        action="revoke",
        entity="session",
        entity_id=session_id,
        details={"user_id": row.user_id},
    )
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/{user_id}/tokens", response_model=list[TokenOut])
async def list_user_tokens(db: Db, who: AdminP, user_id: UserId) -> list[TokenOut]:
    """The user's API tokens that still work (never their values)."""
    try:
        rows = await service.list_api_tokens(db, user_id)
    except service.AuthError as exc:
        _raise_http(exc)
    await audit.record(
        db,
        user_id=who.user_id,
        action="list",
        entity="api_token",
        entity_id=str(user_id),
        details={},
    )
    await db.commit()
    return [_token_out(r) for r in rows]


@router.post(
    "/users/{user_id}/tokens", response_model=NewTokenOut, status_code=status.HTTP_201_CREATED
)
async def create_user_token(db: Db, who: AdminP, user_id: UserId, body: TokenIn) -> NewTokenOut:
    """A new bearer token acting as the user; the response is the only time it is shown."""
    try:
        created = await service.create_api_token(db, user_id, body.name)
    except service.AuthError as exc:
        _raise_http(exc)
    row = created.api_token
    await audit.record(
        db,
        user_id=who.user_id,
        action="create",
        entity="api_token",
        entity_id=str(row.id),
        details={"user_id": user_id, "name": row.name},
    )
    await db.commit()
    return NewTokenOut(**_token_out(row).model_dump(), token=created.token)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(db: Db, who: AdminP, token_id: TokenId) -> Response:
    """Stop an API token from working."""
    try:
        row = await service.revoke_api_token(db, token_id)
    except service.AuthError as exc:
        _raise_http(exc)
    await audit.record(
        db,
        user_id=who.user_id,
        action="revoke",
        entity="api_token",
        entity_id=str(token_id),
        details={"user_id": row.user_id},
    )
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
