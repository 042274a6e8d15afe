"""The websocket resume protocol over a real socket: auth, Origin, replay, gaps, revocation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from callcenter.auth.models import Role
from callcenter.realtime.streams import SUPERVISOR_CALLS_TOPIC, SUPERVISORS_TOPIC, user_topic
from tests.e2e.conftest import PASSWORD, LiveServer


async def _login(server: LiveServer, login: str) -> tuple[str, dict[str, str]]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post("/api/auth/login", json={"login": login, "password": PASSWORD})
        assert response.status_code == 200, response.text
        cookie = response.cookies["cc_session"]
        snapshot = await http.get("/api/realtime/snapshot")
        assert snapshot.status_code == 200
        last_ids: dict[str, str] = snapshot.json()["last_ids"]
    return cookie, last_ids


def _ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/ws"


async def _open(server: LiveServer, cookie: str | None, origin: str | None) -> ClientConnection:
    headers = {"Cookie": f"cc_session={cookie}"} if cookie else {}
    return await connect(_ws_url(server), additional_headers=headers, origin=origin)  # type: ignore[arg-type]


async def _next(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] != "heartbeat":
            return dict(message)


async def test_given_missed_events_when_client_resumes_then_it_gets_each_once_then_live(
    live_server: LiveServer,
) -> None:
    user = live_server.create_user("anna", extensions=["101"])
    cookie, last_ids = await _login(live_server, "anna")
    topic = user_topic(user.id)
    await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(
            live_server.ctx.streams.publish(topic, "call.ringing", {"n": 1}), live_server.loop
        )
    )
    await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(
            live_server.ctx.streams.publish(topic, "call.withdrawn", {"n": 2}), live_server.loop
        )
    )
    async with await _open(live_server, cookie, live_server.url) as ws:
        await ws.send(json.dumps({"type": "resume", "last_ids": last_ids}))
        assert (await _next(ws))["type"] == "ready"
        replayed = [await _next(ws), await _next(ws)]
        assert [e["n"] for e in replayed] == [1, 2]
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(
                live_server.ctx.streams.publish(topic, "call.connected", {"n": 3}), live_server.loop
            )
        )
        live = await _next(ws)
        assert live["n"] == 3
        last = live["id"]
    async with await _open(live_server, cookie, live_server.url) as ws:
        await ws.send(json.dumps({"type": "resume", "last_ids": {topic: last}}))
        assert (await _next(ws))["type"] == "ready"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)


async def test_given_too_old_or_foreign_last_id_when_resuming_then_told_to_reload(
    live_server: LiveServer,
) -> None:
    user = live_server.create_user("anna", extensions=["101"])
    cookie, _ = await _login(live_server, "anna")
    async with await _open(live_server, cookie, live_server.url) as ws:
        await ws.send(
            json.dumps({"type": "resume", "last_ids": {user_topic(user.id): "old-epoch-5"}})
        )
        assert (await _next(ws))["type"] == "reload"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4000


async def test_given_no_session_or_foreign_origin_then_the_socket_is_refused(
    live_server: LiveServer,
) -> None:
    live_server.create_user("anna", extensions=["101"])
    cookie, _ = await _login(live_server, "anna")
    with pytest.raises(InvalidStatus) as refused:
        await _open(live_server, cookie, "http://evil.example")
    assert refused.value.response.status_code == 403
    async with await _open(live_server, None, live_server.url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


async def test_given_operator_when_subscribing_then_other_users_and_supervisor_topics_are_not_sent(
    live_server: LiveServer,
) -> None:
    anna = live_server.create_user("anna", extensions=["101"])
    igor = live_server.create_user("igor", extensions=["102"])
    cookie, last_ids = await _login(live_server, "anna")
    forged = {**last_ids, user_topic(igor.id): "x-0", "supervisors": "x-0"}
    async with await _open(live_server, cookie, live_server.url) as ws:
        await ws.send(json.dumps({"type": "resume", "last_ids": forged}))
        ready = await _next(ws)
        assert ready["topics"] == [user_topic(anna.id)]
        for topic in (user_topic(igor.id), "supervisors", user_topic(anna.id)):
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(
                    live_server.ctx.streams.publish(topic, "probe", {"to": topic}), live_server.loop
                )
            )
        assert (await _next(ws))["to"] == user_topic(anna.id)


async def test_given_supervisors_then_only_those_who_ask_follow_every_call_record_change(
    live_server: LiveServer,
) -> None:
    live_server.create_user("olga", role=Role.SUPERVISOR)
    live_server.create_user("anna", extensions=["101"])
    calls = SUPERVISOR_CALLS_TOPIC
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        await http.post("/api/auth/login", json={"login": "olga", "password": PASSWORD})
        cookie = http.cookies["cc_session"]
        plain = (await http.get("/api/realtime/snapshot")).json()["last_ids"]
        asking = (await http.get("/api/realtime/snapshot", params={"follow": calls})).json()
    assert calls not in plain
    assert set(asking["last_ids"]) == {*plain, calls}

    async def publish(topic: str, n: int) -> None:
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(
                live_server.ctx.streams.publish(topic, "call.updated", {"n": n}), live_server.loop
            )
        )

    async with (
        await _open(live_server, cookie, live_server.url) as default,
        await _open(live_server, cookie, live_server.url) as opted_in,
    ):
        await default.send(json.dumps({"type": "resume", "last_ids": plain}))
        await opted_in.send(json.dumps({"type": "resume", "last_ids": asking["last_ids"]}))
        assert calls not in (await _next(default))["topics"]
        assert calls in (await _next(opted_in))["topics"]
        await publish(calls, 1)
        await publish(SUPERVISORS_TOPIC, 2)
        assert (await _next(opted_in))["n"] == 1
        assert (await _next(default))["n"] == 2

    anna_cookie, anna_ids = await _login(live_server, "anna")
    async with await _open(live_server, anna_cookie, live_server.url) as ws:
        await ws.send(json.dumps({"type": "resume", "last_ids": {**anna_ids, calls: "x-0"}}))
        assert calls not in (await _next(ws))["topics"]
