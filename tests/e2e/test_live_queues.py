"""Supervisors' live queues over the whole path: the simulator (a real TCP AMI server) plays
calls, the app's adapter (wired by `make_adapter`) feeds the live board, and a supervisor sees
them in `GET /api/queues/live` and as `queues.updated` on the websocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from callcenter.auth.models import Role
from pbx_adapter.simulator import AmiSimulator
from tests.e2e.conftest import PASSWORD, LiveServer, start_pbx, stop_pbx


async def _on_server_loop(server: LiveServer, coro: Any) -> Any:
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, server.loop))


@contextlib.asynccontextmanager
async def _pbx(server: LiveServer) -> AsyncIterator[AmiSimulator]:
    sim, adapter, task = await _on_server_loop(server, start_pbx(server.ctx, seed=3))
    try:
        yield sim
    finally:
        await _on_server_loop(server, stop_pbx(sim, adapter, task))
    assert adapter.pipeline.poisoned == 0


async def _next_queue_update(ws: ClientConnection, queue: str, **wanted: Any) -> dict[str, Any]:
    """The next `queues.updated` of `queue` whose view has the `wanted` values."""
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") != "queues.updated" or message["queue"]["queue"] != queue:
                continue
            view: dict[str, Any] = message["queue"]
            if all(check(view) for check in wanted.values()):
                return view


async def test_given_calls_in_the_simulator_then_a_supervisor_sees_them_live(
    live_server: LiveServer,
) -> None:
    live_server.create_user("olga", role=Role.SUPERVISOR)
    async with (
        _pbx(live_server) as sim,
        httpx.AsyncClient(base_url=live_server.url) as http,
    ):
        login = await http.post("/api/auth/login", json={"login": "olga", "password": PASSWORD})
        assert login.status_code == 200
        cookie = login.cookies["cc_session"]
        snapshot = (await http.get("/api/realtime/snapshot")).json()
        members = {
            q["queue"]: sorted(a["interface"] for a in q["agents"])
            for q in snapshot["queues"]["queues"]
        }
        assert members["support"] == [f"Local/{n}@agents" for n in (101, 102, 103)]
        ws_url = live_server.url.replace("http://", "ws://") + "/ws"
        headers = {"Cookie": f"cc_session={cookie}"}
        async with connect(ws_url, additional_headers=headers, origin=live_server.url) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"type": "resume", "last_ids": snapshot["last_ids"]}))
            assert json.loads(await ws.recv())["type"] == "ready"

            async def call() -> str:
                return sim.start_call("support", caller_num="89161234567", caller_name="Мария")

            key = await _on_server_loop(live_server, call())
            update = await _next_queue_update(
                ws,
                "support",
                waiting=lambda v: [w["call_key"] for w in v["waiting"]] == [key],
                ringing=lambda v: any(a["state"] == "ringing" for a in v["agents"]),
            )
            (agent,) = [a for a in update["agents"] if a["state"] == "ringing"]
            assert agent["call"]["caller_name"] == "Мария"

            board = (await http.get("/api/queues/live")).json()
            (support,) = [q for q in board["queues"] if q["queue"] == "support"]
            assert [
                (w["call_key"], w["caller_num"], w["position"]) for w in support["waiting"]
            ] == [(key, "89161234567", 1)]
            ringing = [a for a in support["agents"] if a["state"] == "ringing"]
            assert [a["call"]["call_key"] for a in ringing] == [key]

            async def answer() -> None:
                sim.answer(key)

            await _on_server_loop(live_server, answer())
            update = await _next_queue_update(
                ws,
                "support",
                talking=lambda v: any(
                    a["state"] == "in_call" and a["call"] and a["call"]["call_key"] == key
                    for a in v["agents"]
                ),
            )
            assert update["waiting"] == []

            async def hang_up() -> None:
                sim.hangup(key, "agent")

            await _on_server_loop(live_server, hang_up())
            update = await _next_queue_update(
                ws, "support", counted=lambda v: v["kpis"]["answered"]["value"] == 1
            )
            assert update["kpis"]["offered"]["value"] == 1
            assert update["kpis"]["service_level"]["value"] == 100
