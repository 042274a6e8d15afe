"""Heartbeats over a real socket, from the process's one heartbeat loop: they arrive, and a
revoked session ends its sockets with 4401 while the others go on."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from callcenter.auth import service as auth
from callcenter.config import Settings
from callcenter.realtime.api import CLOSE_UNAUTHENTICATED
from tests.e2e.conftest import LiveServer
from tests.e2e.test_websocket_protocol import _login, _open

HEARTBEAT_S = 0.4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ws_heartbeat_s": HEARTBEAT_S})


async def _ready(server: LiveServer, login: str) -> tuple[ClientConnection, str]:
    cookie, last_ids = await _login(server, login)
    ws = await _open(server, cookie, server.url)
    await ws.send(json.dumps({"type": "resume", "last_ids": last_ids}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"
    return ws, cookie


async def _read_until_closed(ws: ClientConnection, most: int) -> None:
    """Read on (heartbeats may come before the loop reaches the socket's slot) until the
    server closes the socket; at most `most` messages."""
    for _ in range(most):
        await asyncio.wait_for(ws.recv(), 10 * HEARTBEAT_S)


async def _revoke(server: LiveServer, cookie: str) -> None:
    async with server.ctx.sessionmaker() as db:
        assert await auth.revoke_session_token(db, cookie) is not None
        await db.commit()


async def test_given_an_idle_socket_then_heartbeats_arrive_once_per_interval(
    live_server: LiveServer,
) -> None:
    live_server.create_user("anna", extensions=["101"])
    ws, _ = await _ready(live_server, "anna")
    async with ws:
        beats = [json.loads(await asyncio.wait_for(ws.recv(), 10 * HEARTBEAT_S)) for _ in range(3)]

    assert beats == [{"type": "heartbeat"}] * 3


async def test_given_a_revoked_session_then_its_socket_is_closed_and_the_others_beat_on(
    live_server: LiveServer,
) -> None:
    live_server.create_user("anna", extensions=["101"])
    live_server.create_user("igor", extensions=["102"])
    anna, anna_cookie = await _ready(live_server, "anna")
    igor, _ = await _ready(live_server, "igor")
    async with anna, igor:
        live_server.run(_revoke(live_server, anna_cookie))

        with pytest.raises(ConnectionClosed) as closed:
            await _read_until_closed(anna, most=20)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CLOSE_UNAUTHENTICATED
        # igor's session is live: his socket still gets heartbeats after anna's was closed
        assert json.loads(await asyncio.wait_for(igor.recv(), 10 * HEARTBEAT_S)) == {
            "type": "heartbeat"
        }
