"""Every HTTP route declares who may call it, and the app enforces exactly that.

Adding an endpoint? Add it to ROUTE_ROLES with its minimum role (or "public"); the test
fails for any route of `create_app()` the table does not list, and for stale entries.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any, Literal

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from httpx import ASGITransport, AsyncClient, Response

from callcenter.auth.models import ROLE_RANK, Role
from callcenter.config import Settings
from callcenter.context import AppContext
from callcenter.main import create_app
from tests.factories import login_as, make_user

Minimum = Role | Literal["public"]
PUBLIC: Literal["public"] = "public"
OP, SUP, ADM = Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN

ROUTE_ROLES: dict[tuple[str, str], Minimum] = {
    # pages and probes
    ("GET", "/"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("GET", "/operator"): PUBLIC,
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    # auth: the signed-in user
    ("POST", "/api/auth/logout"): OP,
    ("GET", "/api/auth/me"): OP,
    ("PUT", "/api/auth/me/locale"): OP,
    # auth: administration
    ("GET", "/api/users"): ADM,
    ("POST", "/api/users"): ADM,
    ("PATCH", "/api/users/{user_id}"): ADM,
    ("GET", "/api/users/{user_id}/sessions"): ADM,
    ("DELETE", "/api/auth/sessions/{session_id}"): ADM,
    ("GET", "/api/users/{user_id}/tokens"): ADM,
    ("POST", "/api/users/{user_id}/tokens"): ADM,
    ("DELETE", "/api/tokens/{token_id}"): ADM,
    # clients, organisations, phones
    ("GET", "/api/lookup"): OP,
    ("GET", "/api/clients"): OP,
    ("POST", "/api/clients"): OP,
    ("GET", "/api/clients/{client_id}"): OP,
    ("PATCH", "/api/clients/{client_id}"): OP,
    ("DELETE", "/api/clients/{client_id}"): SUP,
    ("POST", "/api/clients/{client_id}/phones"): OP,
    ("DELETE", "/api/phones/{phone_id}"): OP,
    ("GET", "/api/organizations"): OP,
    ("POST", "/api/organizations"): OP,
    ("GET", "/api/organizations/{organization_id}"): OP,
    ("PATCH", "/api/organizations/{organization_id}"): OP,
    ("POST", "/api/organizations/{organization_id}/phones"): OP,
    # calls
    ("GET", "/api/calls"): OP,
    ("GET", "/api/calls/{call_id}"): OP,
    ("PATCH", "/api/calls/{call_id}"): OP,
    # realtime
    ("GET", "/api/realtime/snapshot"): OP,
    # -- queues, wallboard and call control (issue 4): add rows below this line --
    ("GET", "/api/queues/live"): SUP,
    ("GET", "/api/queues/{queue}/settings"): SUP,
    ("PUT", "/api/queues/{queue}/settings"): SUP,
    ("GET", "/api/control/me"): OP,
    ("POST", "/api/agents/{extension}/pause"): OP,
    ("POST", "/api/agents/{extension}/unpause"): OP,
    ("PUT", "/api/agents/{extension}/queues/{queue}"): SUP,
    ("DELETE", "/api/agents/{extension}/queues/{queue}"): SUP,
    ("POST", "/api/agents/{extension}/spy"): SUP,
    ("POST", "/api/outbound-calls"): OP,
    ("GET", "/api/worklist/missed"): OP,
    ("POST", "/api/worklist/missed/{call_id}/call-back"): OP,
    ("POST", "/api/worklist/missed/{call_id}/close"): OP,
    ("GET", "/supervisor"): PUBLIC,
    # -- imports and merges (issue 6): add rows below this line --
    ("GET", "/imports"): PUBLIC,
    ("POST", "/api/imports"): SUP,
    ("GET", "/api/imports"): SUP,
    ("GET", "/api/imports/limits"): SUP,
    ("GET", "/api/imports/{batch_id}"): SUP,
    ("PUT", "/api/imports/{batch_id}/mapping"): SUP,
    ("GET", "/api/imports/{batch_id}/preview"): SUP,
    ("POST", "/api/imports/{batch_id}/run"): SUP,
    ("GET", "/api/imports/{batch_id}/rejected.csv"): SUP,
    ("GET", "/api/imports/{batch_id}/rejected.xlsx"): SUP,
    ("POST", "/api/imports/{batch_id}/undo"): SUP,
    ("GET", "/api/import-templates"): SUP,
    ("POST", "/api/import-templates"): SUP,
    ("GET", "/api/clients/{client_id}/merge-suggestions"): OP,
    ("POST", "/api/clients/{client_id}/merge"): SUP,
    ("GET", "/api/organizations/{organization_id}/merge-suggestions"): OP,
    ("POST", "/api/organizations/{organization_id}/merge"): SUP,
    # -- client card, tags, tasks, meetings, personal data, audit (issue 6): below this line --
    ("GET", "/api/crm/rights"): OP,
    ("GET", "/api/clients/{client_id}/timeline"): OP,
    ("GET", "/api/organizations/{organization_id}/timeline"): OP,
    ("GET", "/api/clients/{client_id}/ranks"): OP,
    ("GET", "/api/tags"): OP,
    ("GET", "/api/clients/{client_id}/tags"): OP,
    ("POST", "/api/clients/{client_id}/tags"): OP,
    ("DELETE", "/api/clients/{client_id}/tags/{tag_id}"): OP,
    ("GET", "/api/organizations/{organization_id}/tags"): OP,
    ("POST", "/api/organizations/{organization_id}/tags"): OP,
    ("DELETE", "/api/organizations/{organization_id}/tags/{tag_id}"): OP,
    ("POST", "/api/clients/{client_id}/notes"): OP,
    ("POST", "/api/organizations/{organization_id}/notes"): OP,
    ("PUT", "/api/calls/{call_id}/client"): OP,
    ("GET", "/api/segments"): OP,
    ("POST", "/api/segments"): SUP,
    ("GET", "/api/segments/{segment_id}"): OP,
    ("PATCH", "/api/segments/{segment_id}"): SUP,
    ("DELETE", "/api/segments/{segment_id}"): SUP,
    ("GET", "/api/segments/{segment_id}/clients"): OP,
    ("GET", "/api/segments/{segment_id}/export"): SUP,
    ("POST", "/api/ranking/abc"): SUP,
    ("GET", "/api/tasks"): OP,
    ("POST", "/api/tasks"): OP,
    ("GET", "/api/tasks/{task_id}"): OP,
    ("PATCH", "/api/tasks/{task_id}"): OP,
    ("POST", "/api/tasks/{task_id}/close"): OP,
    ("POST", "/api/calls/{call_id}/task"): OP,
    ("GET", "/api/meetings"): OP,
    ("POST", "/api/meetings"): OP,
    ("GET", "/api/meetings/{meeting_id}"): OP,
    ("PATCH", "/api/meetings/{meeting_id}"): OP,
    ("POST", "/api/meetings/{meeting_id}/close"): OP,
    ("GET", "/api/audit"): ADM,
    ("GET", "/admin/audit"): PUBLIC,
    # -- workers: wrong numbers and recordings (issue 5): add rows below this line --
    ("POST", "/api/calls/{call_id}/wrong-number/undo"): OP,
    ("GET", "/api/admin/dead-letters"): ADM,
    ("POST", "/api/admin/dead-letters/{dead_letter_id}/requeue"): ADM,
    ("GET", "/api/calls/{call_id}/analysis"): OP,
    ("GET", "/api/calls/{call_id}/recording"): OP,
    # -- reports and plans (issue 5): add rows below this line --
    ("GET", "/reports"): PUBLIC,
    ("GET", "/api/reports/queues"): SUP,
    ("GET", "/api/reports/agents"): OP,
    ("GET", "/api/reports/calls"): OP,
    ("GET", "/api/reports/{kind}.{fmt}"): SUP,
    ("GET", "/api/plans"): SUP,
    ("PUT", "/api/plans"): SUP,
    ("DELETE", "/api/plans/{target_id}"): SUP,
    ("GET", "/api/plans/progress"): OP,
    ("GET", "/api/plans/assignees"): SUP,
    # -- PBX webhook (issue 7) --
    ("POST", "/api/pbx/{pbx}/events"): ADM,
}

NOT_WALKED = {("POST", "/api/auth/login")}
"""Public by nature and exercised in test_auth.py (walking it would sign the callers in)."""

IGNORED_PATHS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
ROLES = sorted(ROLE_RANK, key=ROLE_RANK.__getitem__)
PASSWORD = "matrix-pass-1"


def _api_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, full path) of every APIRoute, through included routers."""
    try:  # FastAPI keeps included routers nested and exposes the flattened view here.
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        for route in app.routes:
            if isinstance(route, APIRoute):
                for method in route.methods or ():
                    yield method, route.path
        return
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.path:
            for method in context.methods or ():
                yield method, context.path


def _declared_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method, path)
        for method, path in _api_routes(app)
        if path not in IGNORED_PATHS and method != "HEAD"
    }


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


class Caller:
    """A browser signed in as one role (or anonymous), re-signing in if a route logged it out."""

    def __init__(self, http: AsyncClient, login: str | None) -> None:
        self.http = http
        self.login = login
        self.csrf = ""

    async def sign_in(self) -> None:
        if self.login is not None:
            self.csrf = await login_as(self.http, self.login, PASSWORD)

    async def call(self, method: str, path: str) -> Response:
        kwargs: dict[str, Any] = {"headers": {"X-CSRF-Token": self.csrf} if self.csrf else {}}
        if method in {"POST", "PUT", "PATCH"}:
            kwargs["json"] = {}
        response = await self.http.request(method, path, **kwargs)
        if self.login is not None and (await self.http.get("/api/auth/me")).status_code != 200:
            await self.sign_in()
        return response


@pytest.fixture
async def callers(ctx: AppContext) -> AsyncIterator[dict[Role | None, Caller]]:
    app = create_app(ctx=ctx)
    async with ctx.sessionmaker() as session:
        for role in ROLES:
            await make_user(session, role=role, login=f"matrix-{role.value}", password=PASSWORD)
        await session.commit()
    async with AsyncExitStack() as stack:
        found: dict[Role | None, Caller] = {}
        for who in [None, *ROLES]:
            http = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
            await stack.enter_async_context(http)
            caller = Caller(http, None if who is None else f"matrix-{who.value}")
            await caller.sign_in()
            found[who] = caller
        yield found


def test_given_the_app_then_every_route_declares_its_roles() -> None:
    routes = _declared_routes(create_app(Settings(_env_file=None)))

    undeclared = sorted(routes - ROUTE_ROLES.keys() - NOT_WALKED)
    stale = sorted(ROUTE_ROLES.keys() - routes)

    assert not undeclared, f"add these routes to ROUTE_ROLES with their minimum role: {undeclared}"
    assert not stale, f"ROUTE_ROLES lists routes the app no longer has: {stale}"


async def test_given_each_role_when_calling_every_route_then_401_403_exactly_as_declared(
    ctx: AppContext, callers: dict[Role | None, Caller]
) -> None:
    routes = sorted(_declared_routes(create_app(ctx=ctx)) - NOT_WALKED)
    failures: list[str] = []

    for method, template in routes:
        minimum = ROUTE_ROLES.get((method, template))
        if minimum is None:
            failures.append(f"{method} {template}: not in ROUTE_ROLES")
            continue
        path = _concrete(template)
        for role, caller in callers.items():
            status = (await caller.call(method, path)).status_code
            who = "anonymous" if role is None else role.value
            if minimum == PUBLIC:
                expected_ok = True
            elif role is None:
                if status != 401:
                    failures.append(f"{method} {path} as {who}: {status}, expected 401")
                continue
            else:
                expected_ok = ROLE_RANK[role] >= ROLE_RANK[minimum]
            if expected_ok and status in (401, 403):
                failures.append(f"{method} {path} as {who}: {status}, expected access")
            if not expected_ok and status != 403:
                failures.append(f"{method} {path} as {who}: {status}, expected 403")

    assert not failures, "\n".join(failures)
