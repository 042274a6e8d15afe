"""PostgreSQL connections dropped during a simulated run, by a relay cut (the database
unreachable for a while) and by `pg_terminate_backend` (every backend of the test database
killed): the adapter keeps the events, retries, and loses nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest

from callcenter.config import Settings
from callcenter.context import AppContext, build_context
from tests.conftest import PG_ADMIN_DSN
from tests.faults.harness import assert_complete, chaos_scale, run_with_faults
from tests.tcp_relay import TcpRelay

pytestmark = pytest.mark.postgres


@pytest.fixture
async def relay() -> AsyncIterator[TcpRelay]:
    where = urlsplit(PG_ADMIN_DSN)
    proxy = TcpRelay(where.hostname or "127.0.0.1", where.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def relayed_ctx(pg_url: str, relay: TcpRelay) -> AsyncIterator[AppContext]:
    where = urlsplit(pg_url)
    through_relay = where._replace(netloc=f"{where.username}@127.0.0.1:{relay.port}").geturl()
    settings = Settings(
        database_url=through_relay,
        redis_url="",
        allowed_origins=["http://testserver"],
        _env_file=None,
    )
    context = build_context(settings)
    yield context
    await context.close()


async def _terminate_backends(database: str) -> int:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    return int(killed or 0)


async def test_given_database_unreachable_repeatedly_then_the_adapter_retries_and_loses_nothing(
    relayed_ctx: AppContext, relay: TcpRelay
) -> None:
    scale = chaos_scale()
    outages = max(3, scale.link_faults // 3)
    result = await run_with_faults(
        relayed_ctx,
        calls=scale.calls // 2,
        faults=["db_cut"] * outages,
        seed=5,
        db_cut=relay.cut,
        db_restore=relay.start,
    )
    print(result.figures())
    assert_complete(result)
    assert relay.cuts == outages
    assert result.sink_retries > 0, "an outage under traffic must make the sink retry"


async def test_given_backends_terminated_repeatedly_then_the_adapter_reconnects_and_loses_nothing(
    relayed_ctx: AppContext, pg_url: str
) -> None:
    database = urlsplit(pg_url).path.lstrip("/")
    killed: list[int] = []

    async def terminate() -> None:
        killed.append(await _terminate_backends(database))

    async def nothing() -> None:
        return None

    scale = chaos_scale()
    result = await run_with_faults(
        relayed_ctx,
        calls=scale.calls // 2,
        faults=["db_cut"] * max(3, scale.link_faults // 3),
        seed=6,
        db_cut=terminate,
        db_restore=nothing,
        db_outage_s=0.2,
    )
    print(result.figures(), killed)
    assert_complete(result)
    assert sum(killed) > 0, "there were backends to kill"
