"""Shared fixtures: a migrated database per test (SQLite by default, PostgreSQL on request).

`CALLCENTER_REQUIRE_SERVICES=1` (set by .ci/run) turns "PostgreSQL/Redis not reachable"
skips into failures, so CI never passes by skipping.
"""

from __future__ import annotations

import asyncio
import os

# Cheap password hashes for the suite only, set before callcenter.auth.security is imported.
os.environ.setdefault("CALLCENTER_ARGON2_TIME_COST", "1")
os.environ.setdefault("CALLCENTER_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("CALLCENTER_ARGON2_PARALLELISM", "1")
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from httpx import ASGITransport, AsyncClient

from callcenter.config import Settings
from callcenter.context import AppContext, build_context
from callcenter.main import create_app
from callcenter.migrate import upgrade

PG_ADMIN_DSN = os.environ.get("CALLCENTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CALLCENTER_TEST_REDIS", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("CALLCENTER_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) when a real service the test needs is not running."""
    if _reachable(host, port):
        return
    _unavailable(f"{name} not reachable at {host}:{port}")


def need_program(name: str, *elsewhere: str) -> str:
    """The path of a server program a test starts itself (skip, or in CI fail, if missing)."""
    found = shutil.which(name) or next((p for p in elsewhere if os.access(p, os.X_OK)), None)
    if found is None:
        _unavailable(f"{name} not installed (looked on PATH and in {', '.join(elsewhere)})")
    return found


def _unavailable(message: str) -> NoReturn:
    if REQUIRE_SERVICES:
        pytest.fail(message + " (CALLCENTER_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated from zero; each test gets a copy."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "test.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated from zero, then dropped."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    import asyncpg

    name = f"cc_test_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{url}/{name}"
    asyncio.run(upgrade(url))
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied before the test."""
    from sqlalchemy import text

    from callcenter.db import make_engine
    from callcenter.models import Base

    engine = make_engine(pg_database)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    return pg_database


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """SQLite by default; tests parametrised with `indirect` may ask for "postgres"."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url="",
        allowed_origins=["http://testserver"],
        login_attempts_per_minute=1000,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[AppContext]:
    context = build_context(settings)
    yield context
    await context.close()


@pytest.fixture
async def client(ctx: AppContext) -> AsyncIterator[AsyncClient]:
    app = create_app(ctx=ctx)
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
