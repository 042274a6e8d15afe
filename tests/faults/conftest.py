"""The live server of the browser tests (a real app under uvicorn), for the websocket faults,
and a private Redis server that a test may kill and start again."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import need_program
from tests.e2e.conftest import live_server as live_server
from tests.faults.redis_server import RedisServer


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A `redis-server` of this test alone (on a free port, keeping nothing on disk)."""
    server = RedisServer(need_program("redis-server", "/usr/bin/redis-server"), tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        await server.kill()
