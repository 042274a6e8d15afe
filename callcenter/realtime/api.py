"""Register → snapshot + last event ids → websocket that replays what was missed, then live.

The browser first GETs /api/realtime/snapshot (its live calls and, per topic, the id of the
last event already reflected in it), then opens /ws and sends
`{"type": "resume", "last_ids": {...}}`. The server replays every event after those ids and
then streams live ones, with heartbeats. If the history after an id is gone, the server sends
`{"type": "reload"}` and closes: the browser fetches a fresh snapshot and starts again.

A user follows their own topic, and supervisors the supervisors' one. An opt-in topic
(`streams.OPT_IN_TOPICS`: every call record change, for supervisors) is followed only by a
client that asks for it: `?follow=<topic>` on the snapshot adds its last id, and resuming with
a last id for it follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Collection
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, WebSocket, WebSocketDisconnect, status
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketState

from callcenter.auth.deps import OperatorP, Principal, principal_from_cookie
from callcenter.auth.models import Role
from callcenter.calls import service as calls
from callcenter.context import AppContext
from callcenter.deps import Ctx, Db
from callcenter.realtime.streams import (
    SUPERVISOR_CALLS_TOPIC,
    SUPERVISORS_TOPIC,
    ReplayGap,
    StreamsUnavailable,
    Subscription,
    user_topic,
)

router = APIRouter(tags=["realtime"])

CLOSE_UNAUTHENTICATED = 4401
CLOSE_RELOAD = 4000
CLOSE_BAD_REQUEST = 4400
CLOSE_RESUME = 1012
"""The server stopped following the streams for this socket: reconnect and resume."""
CLOSE_TRY_LATER = 1013
"""The streams are unreachable now: reconnect later."""


def topics_for(principal: Principal, wanted: Collection[str] = ()) -> list[str]:
    """The streams this user follows: their own, the supervisors' for supervisors, and the
    opt-in topics named in `wanted` that they may follow."""
    topics = [user_topic(principal.user_id)]
    if principal.has_role(Role.SUPERVISOR):
        topics.append(SUPERVISORS_TOPIC)
        if SUPERVISOR_CALLS_TOPIC in wanted:
            topics.append(SUPERVISOR_CALLS_TOPIC)
    return topics


@router.get("/api/realtime/snapshot")
async def snapshot(
    db: Db,
    ctx: Ctx,
    who: OperatorP,
    follow: Annotated[list[str] | None, Query(description="opt-in topics to follow")] = None,
) -> dict[str, Any]:
    """The user's live calls (and, for supervisors, the live queue board) and the stream
    positions they reflect."""
    topics = topics_for(who, follow or ())
    last_ids = {topic: await ctx.streams.last_id(topic) for topic in topics}
    live = await calls.pending_for_user(db, ctx.ingest_policy(), who.user_id)
    body: dict[str, Any] = {"last_ids": last_ids, "calls": live, "user_id": who.user_id}
    if who.has_role(Role.SUPERVISOR):
        # Read after the stream positions: a `queues.updated` after them carries a whole
        # queue view at least as new as this one, so applying it over the snapshot is safe.
        board = await ctx.live_queues().snapshot()
        body["queues"] = board.model_dump(mode="json")
    return body


def install_streams_error_handler(app: FastAPI) -> None:
    """Streams (or the shared live state) out of reach answer 503: the client retries."""

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "live events are unavailable, try again"},
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )

    app.add_exception_handler(StreamsUnavailable, unavailable)


def _origin_allowed(ctx: AppContext, origin: str | None) -> bool:
    # Browsers always send Origin; a missing one is a non-browser client with its own cookie.
    return origin is None or origin in ctx.settings.allowed_origins


async def events(websocket: WebSocket) -> None:
    ctx: AppContext = websocket.app.state.ctx
    if not _origin_allowed(ctx, websocket.headers.get("origin")):
        await websocket.close(code=1008)
        return
    principal = await principal_from_cookie(ctx, websocket.cookies.get("cc_session"))
    await websocket.accept()
    if principal is None:
        await websocket.close(code=CLOSE_UNAUTHENTICATED)
        return
    last_ids = await _read_resume(websocket)
    if last_ids is None:
        await websocket.close(code=CLOSE_BAD_REQUEST)
        return
    topics = topics_for(principal, last_ids.keys())
    try:
        subscription = await ctx.streams.subscribe(
            topics, {t: v for t, v in last_ids.items() if t in topics}
        )
    except ReplayGap:
        await websocket.send_text('{"type":"reload"}')
        await websocket.close(code=CLOSE_RELOAD)
        return
    except StreamsUnavailable:
        await websocket.close(code=CLOSE_TRY_LATER)
        return
    await websocket.send_text(json.dumps({"type": "ready", "topics": topics}))
    sender = asyncio.create_task(_forward(websocket, subscription))
    beats = asyncio.create_task(_heartbeats(websocket, ctx, principal))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except WebSocketDisconnect:
        pass
    finally:
        await subscription.close()
        for task in (sender, beats):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


# A plain Starlette route: the endpoint takes no dependencies, and FastAPI's dependency
# machinery would keep its exit stacks and scope copies alive for each socket's whole life.
router.add_websocket_route("/ws", events)


async def _read_resume(websocket: WebSocket) -> dict[str, str] | None:
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), timeout=10)
        message = json.loads(raw)
    except (TimeoutError, ValueError, WebSocketDisconnect, KeyError):
        return None
    if not isinstance(message, dict) or message.get("type") != "resume":
        return None
    last_ids = message.get("last_ids") or {}
    if not isinstance(last_ids, dict):
        return None
    return {str(k): str(v) for k, v in last_ids.items() if isinstance(v, str | int)}


async def _forward(websocket: WebSocket, subscription: Subscription) -> None:
    """Send the events; when the subscription can no longer follow, tell the client how to
    go on: reload its snapshot after lost events, else reconnect and resume."""
    try:
        async for event in subscription:
            await websocket.send_text(event.data)
    except ReplayGap:
        await websocket.send_text('{"type":"reload"}')
        await websocket.close(code=CLOSE_RELOAD)
        return
    await websocket.close(code=CLOSE_RESUME)


async def _heartbeats(websocket: WebSocket, ctx: AppContext, principal: Principal) -> None:
    """Keep the link alive, and end it as soon as the session is revoked."""
    while websocket.application_state is WebSocketState.CONNECTED:
        await asyncio.sleep(ctx.settings.ws_heartbeat_s)
        token = websocket.cookies.get("cc_session")
        if await principal_from_cookie(ctx, token) is None:
            await websocket.close(code=CLOSE_UNAUTHENTICATED)
            return
        await websocket.send_text('{"type":"heartbeat"}')
