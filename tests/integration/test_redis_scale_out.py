"""Two API processes on one Redis and one database (two `create_app`, each with its own
context, served by uvicorn on its own port): what happens on one reaches the websockets of
the other — an operator's pop, and the live queue board an adapter process maintains."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from callcenter.auth.models import Role
from callcenter.config import Settings
from callcenter.context import AppContext, build_context
from callcenter.events import (
    AgentRinging,
    CallAnswered,
    CallerLeftQueue,
    CallQueued,
    CallStarted,
    Direction,
    MemberView,
    PbxEvent,
    QueueParams,
    QueueSnapshot,
)
from callcenter.main import create_app
from callcenter.queues.board import LiveQueues
from callcenter.realtime.metrics import MeteredStreams
from callcenter.realtime.redis_streams import RedisStreams
from callcenter.realtime.streams import user_topic
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.redis_streams_support import STREAMS_REDIS_URL, delete_keys, need_streams_redis

pytestmark = pytest.mark.redis

ANNA = "Local/101@agents"


@dataclass
class Process:
    """One API process: its context and where it listens."""

    ctx: AppContext
    url: str


async def _serve(ctx: AppContext) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        create_app(ctx=ctx), log_level="warning", lifespan="off", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.01)
    return server, task, url


@pytest.fixture
async def processes(settings: Settings) -> AsyncIterator[tuple[Process, Process]]:
    need_streams_redis()
    deployment = f"test{secrets.token_hex(4)}:"
    shared = settings.model_copy(
        update={
            "redis_url": STREAMS_REDIS_URL,
            "jobs_key_prefix": deployment,
            "reminders_interval_s": 0.0,
            "queues_publish_interval_s": 0.0,
        }
    )
    contexts = [build_context(shared), build_context(shared)]
    assert all(
        isinstance(c.streams, MeteredStreams) and isinstance(c.streams.inner, RedisStreams)
        for c in contexts
    )
    served = [await _serve(ctx) for ctx in contexts]
    origins = [url for _, _, url in served]
    for ctx in contexts:
        ctx.settings = ctx.settings.model_copy(update={"allowed_origins": origins})
    yield Process(contexts[0], origins[0]), Process(contexts[1], origins[1])
    for server, task, _ in served:
        server.should_exit = True
        await task
    for ctx in contexts:
        await ctx.close()
    await delete_keys(deployment)


async def _user(ctx: AppContext, login: str, role: Role, extensions: list[str]) -> int:
    async with ctx.sessionmaker() as session:
        user = await make_user(
            session, login=login, role=role, extensions=extensions, queues=["support"]
        )
        await session.commit()
        return user.id


async def _sign_in(http: httpx.AsyncClient, login: str) -> dict[str, Any]:
    """Sign in on `http`'s process; the realtime snapshot there."""
    response = await http.post(
        "/api/auth/login", json={"login": login, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    http.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    snapshot = await http.get("/api/realtime/snapshot")
    assert snapshot.status_code == 200, snapshot.text
    body: dict[str, Any] = snapshot.json()
    return body


async def _open(process: Process, http: httpx.AsyncClient) -> ClientConnection:
    return await connect(
        process.url.replace("http://", "ws://") + "/ws",
        additional_headers={"Cookie": f"cc_session={http.cookies['cc_session']}"},
        origin=process.url,  # type: ignore[arg-type]
    )


async def _resume(ws: ClientConnection, last_ids: dict[str, str]) -> None:
    await ws.send(json.dumps({"type": "resume", "last_ids": last_ids}))
    assert (await _next(ws))["type"] == "ready"


async def _next(ws: ClientConnection, event_type: str | None = None) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] != "heartbeat" and event_type in (None, message["type"]):
            return message


async def test_given_an_operator_on_one_process_when_the_other_ingests_a_call_then_the_pop_arrives(
    processes: tuple[Process, Process],
) -> None:
    adapter_side, operator_side = processes
    anna = await _user(adapter_side.ctx, "anna", Role.OPERATOR, ["101"])
    async with httpx.AsyncClient(base_url=operator_side.url) as http:
        snapshot = await _sign_in(http, "anna")
        async with await _open(operator_side, http) as ws:
            await _resume(ws, snapshot["last_ids"])
            pop = await _pop_after_ingest(adapter_side.ctx, ws)

    assert pop["topic"] == user_topic(anna)
    assert pop["call"]["call_key"] == "k1"
    assert pop["id"].rsplit("-", 1)[0] == snapshot["last_ids"][user_topic(anna)].rsplit("-", 1)[0]


async def _pop_after_ingest(
    adapter: AppContext, ws: ClientConnection, expect: str | None = None
) -> dict[str, Any]:
    """Ring Anna on the adapter's process; the next message (of type `expect`) here."""
    now = datetime.now(UTC)
    await adapter.call_event_sink()(
        [
            CallStarted(
                call_key="k1",
                event_id="k1:start",
                at=now,
                direction=Direction.INBOUND,
                caller_num="89161234567",
            ),
            AgentRinging(call_key="k1", event_id="k1:ring", at=now, agent=ANNA, queue="support"),
        ]
    )
    return await _next(ws, expect)


def _queue_events(now: datetime) -> list[PbxEvent]:
    return [
        QueueSnapshot(
            pbx="default",
            event_id="snap-1",
            at=now - timedelta(seconds=60),
            queues=(QueueParams(queue="support", strategy="rrmemory", service_level_s=20),),
            members=(MemberView(queue="support", interface=ANNA, name="Анна"),),
        ),
        CallStarted(
            call_key="c1",
            event_id="c1:start",
            at=now - timedelta(seconds=30),
            direction=Direction.INBOUND,
            caller_num="89161234567",
            caller_name="Мария",
        ),
        CallQueued(
            call_key="c1", event_id="c1:queued", at=now - timedelta(seconds=25), queue="support"
        ),
    ]


async def test_given_the_adapters_board_on_one_process_then_a_supervisor_on_the_other_follows_it(
    processes: tuple[Process, Process],
) -> None:
    adapter_side, supervisor_side = processes
    await _user(adapter_side.ctx, "olga", Role.SUPERVISOR, [])
    now = datetime.now(UTC)
    board = adapter_side.ctx.live_queues()
    await board(_queue_events(now))
    await board.flush()

    async with httpx.AsyncClient(base_url=supervisor_side.url) as http:
        snapshot = await _sign_in(http, "olga")
        (support,) = snapshot["queues"]["queues"]
        assert [(w["call_key"], w["caller_name"]) for w in support["waiting"]] == [("c1", "Мария")]
        assert support["longest_wait_s"] >= 25
        async with await _open(supervisor_side, http) as ws:
            await _resume(ws, snapshot["last_ids"])
            answered, changed = await _answer_then_change_settings(board, http, ws, now)
        board_there = (await http.get("/api/queues/live")).json()["queues"][0]

    assert [a["state"] for a in answered["queue"]["agents"]] == ["in_call"]
    assert changed["queue"]["service_level_s"] == 15  # KPI definitions: in snapshots only
    assert board_there["service_level_s"] == 15


async def _answer_then_change_settings(
    board: LiveQueues, http: httpx.AsyncClient, ws: ClientConnection, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The caller answered on the adapter's process, then the settings changed on this one:
    each view as the supervisor's socket here gets it."""
    await board(
        [
            CallAnswered(call_key="c1", event_id="c1:answer", at=now, agent=ANNA),
            CallerLeftQueue(
                pbx="default", event_id="c1:left", at=now, queue="support", call_key="c1"
            ),
        ]
    )
    answered = await _next(ws, "queues.updated")
    while answered["queue"]["waiting"]:
        answered = await _next(ws, "queues.updated")
    put = await http.put("/api/queues/support/settings", json={"service_level_s": 15})
    assert put.status_code == 200, put.text
    changed = await _next(ws, "queues.updated")
    while changed["queue"]["service_level_s"] != 15:
        changed = await _next(ws, "queues.updated")
    return answered, changed


async def test_given_redis_lost_its_data_then_a_connected_browser_is_told_to_reload(
    processes: tuple[Process, Process],
) -> None:
    adapter_side, operator_side = processes
    await _user(adapter_side.ctx, "anna", Role.OPERATOR, ["101"])
    async with httpx.AsyncClient(base_url=operator_side.url) as http:
        snapshot = await _sign_in(http, "anna")
        async with await _open(operator_side, http) as ws:
            await _resume(ws, snapshot["last_ids"])
            admin = Redis.from_url(STREAMS_REDIS_URL)
            try:
                await admin.flushdb()
            finally:
                await admin.aclose()
            await _pop_after_ingest(adapter_side.ctx, ws, expect="reload")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4000
