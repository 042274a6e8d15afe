"""The websocket connections gauge of `/metrics`, over a real socket."""

from __future__ import annotations

import asyncio
import json

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.e2e.conftest import PASSWORD, LiveServer


async def _connections(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        if family.name == "callcenter_websocket_connections":
            return float(family.samples[0].value)
    raise AssertionError("no callcenter_websocket_connections in /metrics")


async def _until(http: httpx.AsyncClient, value: float) -> float:
    for _ in range(50):
        seen = await _connections(http)
        if seen == value:
            return seen
        await asyncio.sleep(0.05)
    return await _connections(http)


async def test_given_an_operator_socket_when_it_opens_and_closes_then_the_gauge_follows(
    live_server: LiveServer,
) -> None:
    live_server.create_user("anna", extensions=["101"])
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        login = await http.post("/api/auth/login", json={"login": "anna", "password": PASSWORD})
        cookie = login.cookies["cc_session"]
        last_ids = (await http.get("/api/realtime/snapshot")).json()["last_ids"]
        assert await _connections(http) == 0
        async with connect(
            live_server.url.replace("http://", "ws://") + "/ws",
            additional_headers={"Cookie": f"cc_session={cookie}"},
            origin=live_server.url,  # type: ignore[arg-type]
        ) as ws:
            await ws.send(json.dumps({"type": "resume", "last_ids": last_ids}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"
            assert await _until(http, 1) == 1
        assert await _until(http, 0) == 0
