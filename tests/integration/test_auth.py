"""Logging in and out, sessions, CSRF, API tokens, throttling and user administration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import timedelta

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from callcenter.auth import service
from callcenter.auth.models import ApiToken, AuditEntry, AuthSession, Role
from callcenter.auth.ratelimit import LoginRateLimiter, login_key
from callcenter.auth.security import hash_password, token_digest, verify_password
from callcenter.context import AppContext
from callcenter.db import utcnow
from callcenter.main import create_app
from tests.factories import DEFAULT_PASSWORD, api_token_for, bearer, login_as, make_user

Browser = Callable[[], AsyncClient]


@pytest.fixture
async def browser(ctx: AppContext) -> AsyncIterator[Browser]:
    """Opens more clients (separate cookie jars) on one app sharing the test's context."""
    app = create_app(ctx=ctx)
    async with AsyncExitStack() as stack:

        def open_one() -> AsyncClient:
            http = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
            stack.push_async_callback(http.aclose)
            return http

        yield open_one


async def _add_user(
    ctx: AppContext, login: str, role: Role = Role.OPERATOR, extensions: list[str] | None = None
) -> int:
    async with ctx.sessionmaker() as session:
        user = await make_user(session, role=role, login=login, extensions=extensions or [])
        await session.commit()
        return user.id


async def _admin(ctx: AppContext, http: AsyncClient, login: str = "boss") -> dict[str, str]:
    await _add_user(ctx, login, Role.ADMIN)
    return {"X-CSRF-Token": await login_as(http, login)}


async def _audit(ctx: AppContext, action: str) -> list[AuditEntry]:
    async with ctx.sessionmaker() as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return list(rows)


def _set_cookie_attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")]
    attributes = {}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        attributes[name.lower()] = value
    return attributes


# --- logging in and out -----------------------------------------------------------------


@pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_given_user_when_logs_in_and_out_then_session_lives_between(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _add_user(ctx, "anna", extensions=["101"])

    response = await client.post(
        "/api/auth/login", json={"login": "Anna", "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["login"] == "anna"
    assert body["user"]["role"] == "operator"
    assert body["user"]["extensions"] == ["101"]
    assert body["user"]["locale"] == "ru"
    assert "password_hash" not in body["user"]
    csrf = body["csrf_token"]
    token = client.cookies.get("cc_session")
    assert token
    async with ctx.sessionmaker() as session:
        stored = await session.get(AuthSession, token_digest(token))
        assert stored is not None
        assert await session.get(AuthSession, token) is None  # only the digest is stored
        assert stored.expires_at - stored.created_at == timedelta(hours=12)

    me = await client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["csrf_token"] == csrf
    assert me.json()["user"]["name"] == "Anna"

    logout = await client.post("/api/auth/logout", json={}, headers={"X-CSRF-Token": csrf})
    assert logout.status_code == 204
    assert "cc_session" not in client.cookies
    after = await client.get("/api/auth/me")
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == "Bearer"
    assert [e.action for e in await _audit(ctx, "login")] == ["login"]
    assert len(await _audit(ctx, "logout")) == 1


async def test_given_login_when_cookie_set_then_httponly_lax_path_and_max_age(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _add_user(ctx, "anna")

    response = await client.post(
        "/api/auth/login", json={"login": "anna", "password": "secret-pass-1"}
    )

    attributes = _set_cookie_attributes(response.headers["set-cookie"])
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert attributes["max-age"] == str(12 * 3600)
    assert "secure" not in attributes


async def test_given_cookie_secure_setting_when_login_then_cookie_is_secure(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _add_user(ctx, "anna")
    ctx.settings.cookie_secure = True

    response = await client.post(
        "/api/auth/login", json={"login": "anna", "password": "secret-pass-1"}
    )

    assert response.status_code == 200
    assert "secure" in _set_cookie_attributes(response.headers["set-cookie"])


async def test_given_signed_in_browser_when_logs_in_again_then_new_session_id_and_old_dead(
    ctx: AppContext, client: AsyncClient, browser: Browser
) -> None:
    await _add_user(ctx, "anna")
    await login_as(client, "anna")
    first = client.cookies["cc_session"]

    await login_as(client, "anna")
    second = client.cookies["cc_session"]

    assert first != second
    stale = browser()
    stale.cookies.set("cc_session", first)
    assert (await stale.get("/api/auth/me")).status_code == 401
    assert (await client.get("/api/auth/me")).status_code == 200


async def test_given_two_browsers_when_both_log_in_then_each_has_its_own_session(
    ctx: AppContext, client: AsyncClient, browser: Browser
) -> None:
    await _add_user(ctx, "anna")
    other = browser()
    csrf_one = await login_as(client, "anna")
    csrf_two = await login_as(other, "anna")

    assert client.cookies["cc_session"] != other.cookies["cc_session"]
    assert csrf_one != csrf_two
    assert (await client.get("/api/auth/me")).status_code == 200
    assert (await other.get("/api/auth/me")).status_code == 200


async def test_given_wrong_password_or_unknown_login_then_same_401_and_audited_without_password(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _add_user(ctx, "anna")

    wrong = await client.post("/api/auth/login", json={"login": "anna", "password": "nope-nope-1"})
    unknown = await client.post(
        "/api/auth/login", json={"login": "ghost", "password": "nope-nope-1"}
    )

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "cc_session" not in client.cookies
    failures = await _audit(ctx, "login_failed")
    assert sorted(e.entity_id for e in failures) == ["anna", "ghost"]
    assert all("nope-nope-1" not in str(e.details) for e in failures)


async def test_given_bad_payload_when_login_then_422(client: AsyncClient) -> None:
    assert (await client.post("/api/auth/login", json={"login": "anna"})).status_code == 422
    assert (await client.post("/api/auth/login", json={})).status_code == 422
    long_login = {"login": "a" * 65, "password": "x"}
    assert (await client.post("/api/auth/login", json=long_login)).status_code == 422


async def test_given_many_attempts_when_limit_reached_then_429_with_retry_after_until_window_ends(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _add_user(ctx, "anna")
    now = [1000.0]
    ctx.login_limiter = LoginRateLimiter(3, clock=lambda: now[0])
    wrong = {"login": "anna", "password": "wrong-password"}
    right = {"login": "ANNA", "password": DEFAULT_PASSWORD}

    for _ in range(3):
        assert (await client.post("/api/auth/login", json=wrong)).status_code == 401
    now[0] += 10
    blocked = await client.post("/api/auth/login", json=right)

    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "50"
    other_login = await client.post("/api/auth/login", json={**wrong, "login": "igor"})
    assert other_login.status_code == 401
    now[0] += 51
    assert (await client.post("/api/auth/login", json=right)).status_code == 200


# --- CSRF ---------------------------------------------------------------------------------


async def test_given_cookie_session_when_unsafe_request_without_csrf_then_403(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _add_user(ctx, "anna")
    csrf = await login_as(client, "anna")
    locale = {"locale": "en"}

    missing = await client.put("/api/auth/me/locale", json=locale)
    wrong = await client.put("/api/auth/me/locale", json=locale, headers={"X-CSRF-Token": "x"})
    logout = await client.post("/api/auth/logout", json={})
    right = await client.put("/api/auth/me/locale", json=locale, headers={"X-CSRF-Token": csrf})

    assert missing.status_code == wrong.status_code == logout.status_code == 403
    assert right.status_code == 200
    assert (await client.get("/api/auth/me")).status_code == 200  # GET needs no token


async def test_given_bearer_token_when_unsafe_request_without_csrf_then_allowed(
    ctx: AppContext, client: AsyncClient
) -> None:
    user_id = await _add_user(ctx, "robot")
    async with ctx.sessionmaker() as session:
        token = await api_token_for(session, user_id)
        await session.commit()

    response = await client.put("/api/auth/me/locale", json={"locale": "en"}, headers=bearer(token))

    assert response.status_code == 200
    assert response.json()["csrf_token"] is None
    assert response.json()["user"]["locale"] == "en"


# --- revocation and deactivation ----------------------------------------------------------


async def test_given_admin_revokes_session_then_its_next_request_is_401(
    ctx: AppContext, client: AsyncClient, browser: Browser
) -> None:
    headers = await _admin(ctx, client)
    anna_id = await _add_user(ctx, "anna")
    anna = browser()
    await login_as(anna, "anna")
    assert (await anna.get("/api/auth/me")).status_code == 200

    sessions = await client.get(f"/api/users/{anna_id}/sessions")
    assert sessions.status_code == 200
    [listed] = sessions.json()
    assert listed["id"] == token_digest(anna.cookies["cc_session"])
    revoked = await client.delete(f"/api/auth/sessions/{listed['id']}", headers=headers)

    assert revoked.status_code == 204
    assert (await anna.get("/api/auth/me")).status_code == 401
    assert (await client.get(f"/api/users/{anna_id}/sessions")).json() == []
    unknown = await client.delete("/api/auth/sessions/" + "0" * 64, headers=headers)
    assert unknown.status_code == 404
    [entry] = await _audit(ctx, "revoke")
    assert entry.entity == "session"
    assert entry.details == {"user_id": anna_id}


async def test_given_user_deactivated_then_sessions_end_and_login_fails(
    ctx: AppContext, client: AsyncClient, browser: Browser
) -> None:
    headers = await _admin(ctx, client)
    anna_id = await _add_user(ctx, "anna")
    anna = browser()
    await login_as(anna, "anna")

    patched = await client.patch(
        f"/api/users/{anna_id}", json={"is_active": False}, headers=headers
    )

    assert patched.status_code == 200
    assert patched.json()["is_active"] is False
    assert (await anna.get("/api/auth/me")).status_code == 401
    again = await anna.post("/api/auth/login", json={"login": "anna", "password": DEFAULT_PASSWORD})
    assert again.status_code == 401
    [entry] = await _audit(ctx, "update")
    assert entry.details["is_active"] is False


async def test_given_only_admin_when_demotes_or_deactivates_self_then_409(
    ctx: AppContext, client: AsyncClient
) -> None:
    headers = await _admin(ctx, client)
    me = (await client.get("/api/auth/me")).json()["user"]

    demote = await client.patch(
        f"/api/users/{me['id']}", json={"role": "operator"}, headers=headers
    )
    leave = await client.patch(f"/api/users/{me['id']}", json={"is_active": False}, headers=headers)

    assert demote.status_code == leave.status_code == 409
    assert (await client.get("/api/auth/me")).json()["user"]["role"] == "admin"


# --- API tokens ---------------------------------------------------------------------------


async def test_given_api_token_when_used_then_works_until_revoked(
    ctx: AppContext, client: AsyncClient, browser: Browser
) -> None:
    headers = await _admin(ctx, client)
    robot_id = await _add_user(ctx, "robot", Role.SUPERVISOR)

    created = await client.post(
        f"/api/users/{robot_id}/tokens", json={"name": "1C import"}, headers=headers
    )
    assert created.status_code == 201
    token = created.json()["token"]
    token_id = created.json()["id"]
    async with ctx.sessionmaker() as session:
        stored = await session.get(ApiToken, token_id)
        assert stored is not None
        assert stored.token_hash == token_digest(token)
    listed = (await client.get(f"/api/users/{robot_id}/tokens")).json()
    assert [t["id"] for t in listed] == [token_id]
    assert "token" not in listed[0]

    integration = browser()
    me = await integration.get("/api/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["user"]["login"] == "robot"
    assert me.json()["csrf_token"] is None
    assert (await integration.get("/api/users", headers=bearer(token))).status_code == 403

    revoked = await client.delete(f"/api/tokens/{token_id}", headers=headers)
    assert revoked.status_code == 204
    after = await integration.get("/api/auth/me", headers=bearer(token))
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == "Bearer"
    assert (await client.delete("/api/tokens/99999", headers=headers)).status_code == 404


async def test_given_unknown_bearer_token_then_401_even_with_valid_cookie(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _add_user(ctx, "anna")
    await login_as(client, "anna")

    response = await client.get("/api/auth/me", headers=bearer("made-up"))

    assert response.status_code == 401


async def test_given_token_used_often_then_last_used_written_at_most_once_a_minute(
    ctx: AppContext,
) -> None:
    user_id = await _add_user(ctx, "robot")
    t0 = utcnow()
    async with ctx.sessionmaker() as session:
        token = await api_token_for(session, user_id)
        first = await service.resolve_api_token(session, token, now=t0)
        assert first is not None
        assert first[0].last_used_at == t0
        second = await service.resolve_api_token(session, token, now=t0 + timedelta(seconds=30))
        assert second is not None
        assert second[0].last_used_at == t0
        third = await service.resolve_api_token(session, token, now=t0 + timedelta(seconds=61))
        assert third is not None
        assert third[0].last_used_at == t0 + timedelta(seconds=61)


async def test_given_session_past_expiry_then_not_resolved(ctx: AppContext) -> None:
    user_id = await _add_user(ctx, "anna")
    t0 = utcnow()
    async with ctx.sessionmaker() as session:
        user = (await service.get_user(session, user_id)).user
        started = await service.start_session(session, user, ttl_hours=1, now=t0)
        almost = t0 + timedelta(minutes=59)
        assert await service.resolve_session(session, started.token, now=almost) is not None
        later = t0 + timedelta(hours=1)
        assert await service.resolve_session(session, started.token, now=later) is None


# --- locale ---------------------------------------------------------------------------------


async def test_given_locale_chosen_when_logging_in_later_then_remembered(
    ctx: AppContext, client: AsyncClient, browser: Browser
) -> None:
    await _add_user(ctx, "anna")
    csrf = await login_as(client, "anna")

    chosen = await client.put(
        "/api/auth/me/locale", json={"locale": "en"}, headers={"X-CSRF-Token": csrf}
    )
    bad = await client.put(
        "/api/auth/me/locale", json={"locale": "de"}, headers={"X-CSRF-Token": csrf}
    )

    assert chosen.status_code == 200
    assert bad.status_code == 422
    later = browser()
    response = await later.post(
        "/api/auth/login", json={"login": "anna", "password": DEFAULT_PASSWORD}
    )
    assert response.json()["user"]["locale"] == "en"


# --- user administration --------------------------------------------------------------------


async def test_given_admin_when_manages_users_then_validated_and_audited(
    ctx: AppContext, client: AsyncClient, browser: Browser
) -> None:
    headers = await _admin(ctx, client)
    await _add_user(ctx, "anna", extensions=["101"])
    new = {
        "login": "igor",
        "name": "Игорь Петров",
        "password": "long-enough",
        "role": "operator",
        "extensions": ["102", "SIP/102"],
        "queues": ["support"],
    }

    created = await client.post("/api/users", json=new, headers=headers)
    assert created.status_code == 201, created.text
    igor = created.json()
    assert igor["extensions"] == ["102", "SIP/102"]
    assert igor["queues"] == ["support"]
    assert igor["locale"] == "ru"
    assert "password" not in igor
    assert "password_hash" not in igor

    duplicate = await client.post("/api/users", json={**new, "login": "IGOR"}, headers=headers)
    taken = await client.post(
        "/api/users", json={**new, "login": "olga", "extensions": ["101"]}, headers=headers
    )
    short = await client.post(
        "/api/users", json={**new, "login": "olga", "password": "short"}, headers=headers
    )
    bad_role = await client.post(
        "/api/users", json={**new, "login": "olga", "role": "root"}, headers=headers
    )
    assert duplicate.status_code == 409
    assert taken.status_code == 409
    assert "101" in taken.json()["detail"]
    assert short.status_code == bad_role.status_code == 422

    moved = await client.patch(
        f"/api/users/{igor['id']}",
        json={"extensions": ["103"], "role": "supervisor", "name": "Игорь"},
        headers=headers,
    )
    assert moved.status_code == 200
    assert moved.json()["extensions"] == ["103"]
    assert moved.json()["role"] == "supervisor"
    steal = await client.patch(
        f"/api/users/{igor['id']}", json={"extensions": ["101"]}, headers=headers
    )
    assert steal.status_code == 409
    missing = await client.patch("/api/users/4242", json={"name": "x"}, headers=headers)
    assert missing.status_code == 404
    assert (await client.get("/api/users/4242/sessions")).status_code == 404
    unknown_field = await client.patch(
        f"/api/users/{igor['id']}", json={"password_hash": "x"}, headers=headers
    )
    assert unknown_field.status_code == 422

    users = await client.get("/api/users")
    assert [u["login"] for u in users.json()] == ["anna", "boss", "igor"]

    igor_browser = browser()
    await login_as(igor_browser, "igor", "long-enough")
    assert (await igor_browser.get("/api/auth/me")).json()["user"]["role"] == "supervisor"
    assert (await igor_browser.get("/api/users")).status_code == 403

    reset = await client.patch(
        f"/api/users/{igor['id']}", json={"password": "another-one"}, headers=headers
    )
    assert reset.status_code == 200
    assert (await igor_browser.get("/api/auth/me")).status_code == 401
    await login_as(igor_browser, "igor", "another-one")

    [create] = [e for e in await _audit(ctx, "create") if e.entity == "user"]
    assert create.details["login"] == "igor"
    updates = await _audit(ctx, "update")
    assert any(e.details.get("role") == "supervisor" for e in updates)
    assert all("another-one" not in str(e.details) for e in updates)
    assert any(e.details.get("password") is True for e in updates)


async def test_given_service_when_creating_user_then_typed_errors(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as session:
        await make_user(session, login="anna", extensions=["101"])
        with pytest.raises(service.LoginTaken):
            await make_user(session, login="ANNA ")
        with pytest.raises(service.WeakPassword):
            await make_user(session, login="igor", password="1234567")
        with pytest.raises(service.ExtensionTaken) as taken:
            await make_user(session, login="igor", extensions=["101"])
        assert taken.value.extension == "101"
        with pytest.raises(service.InvalidUserData):
            await make_user(session, login="has space")
        with pytest.raises(ValueError):  # the CLI reports every one of them as ValueError
            await make_user(session, login="olga", locale="de")


# --- building blocks ------------------------------------------------------------------------


def test_given_password_hash_when_verified_then_only_the_password_matches() -> None:
    stored = hash_password("correct horse")

    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse").ok
    assert not verify_password(stored, "wrong horse").ok
    assert not verify_password("not-a-hash", "correct horse").ok


def test_given_outdated_hash_parameters_when_verified_then_rehash_offered() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("correct horse")

    check = verify_password(weak, "correct horse")

    assert check.ok
    assert check.new_hash is not None
    assert verify_password(check.new_hash, "correct horse") == type(check)(ok=True)


def test_given_limiter_when_window_slides_then_old_attempts_expire() -> None:
    now = [0.0]
    limiter = LoginRateLimiter(2, clock=lambda: now[0])
    key = login_key("10.0.0.1", "Anna")

    assert key == ("10.0.0.1", "anna")
    assert limiter.hit(key)
    now[0] = 30.0
    assert limiter.hit(key)
    assert not limiter.hit(key)
    assert limiter.retry_after(key) == pytest.approx(30.0)
    now[0] = 60.5
    assert limiter.hit(key)  # the first attempt left the window
    assert not limiter.hit(key)
    limiter.reset(key)
    assert limiter.hit(key)
    assert limiter.retry_after(key) == 0.0
    assert limiter.hit(("10.0.0.2", "anna"))
