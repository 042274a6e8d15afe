"""A whole call posted by a cloud PBX to the webhook pops the card on the operator's real
websocket and leaves one call record."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect

from callcenter.auth.models import Role
from callcenter.calls.models import Call
from callcenter.config import Settings
from callcenter.context import AppContext
from tests.e2e.conftest import PASSWORD, LiveServer
from tests.factories import api_token_for, bearer
from tests.integration.test_webhook import whole_call


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_pbxs": ["cloud"]})


async def _token(ctx: AppContext, user_id: int) -> str:
    async with ctx.sessionmaker() as session:
        token = await api_token_for(session, user_id, "cloud pbx")
        await session.commit()
    return token


async def _calls(ctx: AppContext) -> list[Call]:
    async with ctx.sessionmaker() as session:
        return list((await session.scalars(select(Call))).all())


async def _next(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] != "heartbeat":
            return dict(message)


async def test_given_an_operator_online_when_a_cloud_pbx_posts_a_whole_call_then_the_card_pops(
    live_server: LiveServer,
) -> None:
    live_server.create_user("anna", extensions=["101"])
    integrator = live_server.create_user("cloud-pbx", role=Role.ADMIN)
    token = live_server.run(_token(live_server.ctx, integrator.id))
    async with httpx.AsyncClient(base_url=live_server.url) as browser:
        login = await browser.post("/api/auth/login", json={"login": "anna", "password": PASSWORD})
        assert login.status_code == 200
        last_ids = (await browser.get("/api/realtime/snapshot")).json()["last_ids"]
        cookie = login.cookies["cc_session"]
    ws_url = live_server.url.replace("http://", "ws://") + "/ws"
    headers = {"Cookie": f"cc_session={cookie}"}
    async with (
        connect(ws_url, additional_headers=headers, origin=live_server.url) as ws,  # type: ignore[arg-type]
        httpx.AsyncClient(base_url=live_server.url) as pbx,
    ):
        await ws.send(json.dumps({"type": "resume", "last_ids": last_ids}))
        assert (await _next(ws))["type"] == "ready"

        posted = await pbx.post("/api/pbx/cloud/events", json=whole_call(), headers=bearer(token))

        assert posted.status_code == 200, posted.text
        ringing = await _next(ws)
        assert ringing["type"] == "call.ringing"
        assert ringing["card"]["number"] == "+74951234567"
        assert ringing["call"]["call_key"] == "cl-1"
        assert [(await _next(ws))["type"] for _ in range(2)] == ["call.connected", "call.ended"]
    [call] = live_server.run(_calls(live_server.ctx))
    assert (call.pbx, call.call_key, call.status.value) == ("cloud", "cl-1", "ended")
