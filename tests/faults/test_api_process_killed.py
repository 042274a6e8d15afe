"""One of two API processes (real `callcenter serve` subprocesses on one Redis and one
database) killed with SIGKILL while an operator's websocket is open on it: the operator's
client reconnects to the other process with its last event id and gets exactly the events
it missed (or is told to reload)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from callcenter.config import Settings
from callcenter.context import build_context
from callcenter.realtime.redis_streams import RedisStreams
from callcenter.realtime.streams import user_topic
from tests.conftest import REDIS_URL, need_service
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.faults.ws_client import ResumingClient

pytestmark = pytest.mark.redis

CHAOS_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/11"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _callcenter() -> list[str]:
    script = Path(sys.executable).with_name("callcenter")
    return [str(script)] if script.exists() else [sys.executable, "-m", "callcenter.cli"]


@pytest.fixture
def deployment() -> Iterator[str]:
    need_service("Redis", "127.0.0.1", 6379)
    prefix = f"chaos{secrets.token_hex(4)}:"
    yield prefix

    async def clean() -> None:
        redis = Redis.from_url(CHAOS_REDIS_URL)
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    asyncio.run(clean())


@pytest.fixture
async def api_processes(
    sqlite_url: str, deployment: str, tmp_path: Path
) -> AsyncIterator[list[tuple[Process, str]]]:
    ports = [_free_port(), _free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    started: list[tuple[Process, str]] = []
    for port, url in zip(ports, urls, strict=True):
        env = {
            **os.environ,
            "CALLCENTER_DATABASE_URL": sqlite_url,
            "CALLCENTER_REDIS_URL": CHAOS_REDIS_URL,
            "CALLCENTER_JOBS_KEY_PREFIX": deployment,
            "CALLCENTER_HOST": "127.0.0.1",
            "CALLCENTER_PORT": str(port),
            "CALLCENTER_ALLOWED_ORIGINS": json.dumps(urls),
        }
        with (tmp_path / f"api-{port}.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *_callcenter(), "serve", env=env, stdout=log, stderr=log, cwd=tmp_path
            )
        started.append((process, url))
    async with httpx.AsyncClient() as http:
        for process, url in started:
            async with asyncio.timeout(60):
                while True:
                    assert process.returncode is None, f"{url} exited: see {tmp_path}"
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{url}/api/health")).status_code < 500:
                            break
                    await asyncio.sleep(0.2)
    yield started
    for process, _ in started:
        if process.returncode is None:
            process.terminate()
    for process, _ in started:
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_given_api_process_killed_then_its_operator_resumes_on_the_other_and_misses_nothing(
    sqlite_url: str, deployment: str, api_processes: list[tuple[Process, str]]
) -> None:
    settings = Settings(database_url=sqlite_url, redis_url="", _env_file=None)
    ctx = build_context(settings)
    async with ctx.sessionmaker() as session:
        user = await make_user(session, login="anna", extensions=["101"], queues=["support"])
        await session.commit()
        topic = user_topic(user.id)
    await ctx.close()
    (victim, url_a), (_, url_b) = api_processes
    async with httpx.AsyncClient(base_url=url_a) as http:
        response = await http.post(
            "/api/auth/login", json={"login": "anna", "password": DEFAULT_PASSWORD}
        )
        assert response.status_code == 200, response.text
        cookie = str(response.cookies["cc_session"])
    adapter_side = RedisStreams(CHAOS_REDIS_URL, prefix=f"{deployment}callcenter:rt:")
    client = ResumingClient(url_a, cookie)
    try:
        await client.load_snapshot()
        await client.connect()
        receiving = asyncio.create_task(client.receive_until_closed())
        published = [await adapter_side.publish(topic, "call.ringing", {"n": n}) for n in range(5)]
        async with asyncio.timeout(10):
            while client.last_ids.get(topic) != published[-1]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        victim.kill()  # SIGKILL: no goodbye on the socket, no shutdown hook
        await asyncio.wait_for(victim.wait(), 10)
        published += [
            await adapter_side.publish(topic, "call.ringing", {"n": n}) for n in range(5, 15)
        ]
        await asyncio.wait_for(receiving, 10)
        client.base_url = url_b
        await client.connect()
        receiving = asyncio.create_task(client.receive_until_closed())
        published += [
            await adapter_side.publish(topic, "call.ringing", {"n": n}) for n in range(15, 20)
        ]
        async with asyncio.timeout(10):
            while client.last_ids.get(topic) != published[-1]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        client.drop()
        await asyncio.wait_for(receiving, 10)
    finally:
        await adapter_side.close()
    ids = [str(event["id"]) for event in client.delivered if event["topic"] == topic]
    print(f"delivered {len(ids)} of {len(published)}, reloads {len(client.reloads)}")
    assert not client.reloads, "the history was there: no reload needed"
    assert ids == published, "every event exactly once, in order, across the kill"
