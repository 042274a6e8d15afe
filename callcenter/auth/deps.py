"""Who is asking: the principal behind a session cookie or a bearer token, and role checks.

Use the aliases in endpoints: `who: OperatorP` lets in every signed-in user, `SupervisorP`
supervisors and admins, `AdminP` admins only. Anonymous requests get 401, too-low roles 403.
Cookie-authenticated unsafe requests must echo the session's CSRF token in `X-CSRF-Token`;
bearer-token requests are exempt (browsers never attach them by themselves).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from callcenter.auth import service
from callcenter.auth.models import ROLE_RANK, ApiToken, AuthSession, Role, User
from callcenter.auth.security import same_token
from callcenter.context import AppContext
from callcenter.deps import Ctx

SESSION_COOKIE = "cc_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False)
_bearer_scheme = HTTPBearer(auto_error=False)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user of one request, as of the start of that request."""

    user_id: int
    login: str
    name: str
    role: Role
    locale: str
    session_id: str | None
    """The stored id (token digest) of the cookie session, None for API tokens."""
    token_id: int | None
    """The API token used, None for cookie sessions."""
    csrf_token: str | None
    """The session's CSRF token; None for API tokens."""

    def has_role(self, role: Role) -> bool:
        """Whether this user's role ranks at or above `role`."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def _from_session(auth_session: AuthSession, user: User) -> Principal:
    return Principal(
        user_id=user.id,
        login=user.login,
        name=user.name,
        role=Role(user.role),
        locale=user.locale,
        session_id=auth_session.id,
        token_id=None,
        csrf_token=auth_session.csrf_token,
    )


def _from_token(api_token: ApiToken, user: User) -> Principal:
    return Principal(
        user_id=user.id,
        login=user.login,
        name=user.name,
        role=Role(user.role),
        locale=user.locale,
        session_id=None,
        token_id=api_token.id,
        csrf_token=None,
    )


async def principal_from_cookie(ctx: AppContext, token: str | None) -> Principal | None:
    """The principal behind a `cc_session` cookie value, None if it is not a live session."""
    if not token:
        return None
    async with ctx.sessionmaker() as db:
        found = await service.resolve_session(db, token)
    return _from_session(*found) if found else None


async def principal_from_api_token(ctx: AppContext, token: str | None) -> Principal | None:
    """The principal behind a bearer token, None if it is unknown, revoked or its user inactive."""
    if not token:
        return None
    async with ctx.sessionmaker() as db:
        found = await service.resolve_api_token(db, token)
        if found is None:
            return None
        principal = _from_token(*found)
        await db.commit()  # last_used_at, when it moved
    return principal


def _unauthenticated() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="not authenticated",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def optional_principal(
    ctx: Ctx,
    cookie: Annotated[str | None, Depends(_cookie_scheme)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> Principal | None:
    """The caller if authenticated, else None. A bearer token wins over a cookie.

    Auth is resolved in its own short database session, so the endpoint's transaction holds
    only what the endpoint does.
    """
    if bearer is not None:
        return await principal_from_api_token(ctx, bearer.credentials)
    return await principal_from_cookie(ctx, cookie)


async def current_principal(
    request: Request,
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """The authenticated caller (401 otherwise), CSRF-checked for cookie-based unsafe requests."""
    if principal is None:
        raise _unauthenticated()
    if (
        principal.session_id is not None
        and request.method in UNSAFE_METHODS
        and not same_token(request.headers.get(CSRF_HEADER), principal.csrf_token)
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="CSRF token missing or wrong")
    return principal


@cache
def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers whose role ranks at or above `role` (403 below it)."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.has_role(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"requires the {role.value} role")
        return principal

    dependency.__name__ = f"require_{role.value}"
    dependency.__qualname__ = dependency.__name__
    return dependency


OperatorP = Annotated[Principal, Depends(require(Role.OPERATOR))]
SupervisorP = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
AdminP = Annotated[Principal, Depends(require(Role.ADMIN))]
