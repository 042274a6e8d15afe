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
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, WebSocket, WebSocketDisconnect, status
from fastapi.responses import JSONResponse
from starlette.applications import Starlette
from starlette.requests import cookie_parser
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from callcenter.auth import service as auth
from callcenter.auth.deps import SESSION_COOKIE, OperatorP, Principal, principal_from_cookie
from callcenter.auth.models import Role
from callcenter.calls import service as calls
from callcenter.context import AppContext
from callcenter.db import utcnow
from callcenter.deps import Ctx, Db
from callcenter.realtime.heartbeats import Heartbeats
from callcenter.realtime.streams import (
    SUPERVISOR_CALLS_TOPIC,
    SUPERVISORS_TOPIC,
    Feed,
    ReplayGap,
    StreamEvent,
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
HEARTBEAT = '{"type":"heartbeat"}'
"""Sent every `ws_heartbeat_s` (see `heartbeats`), with the session checked first."""


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


def heartbeats_of(app: Starlette) -> Heartbeats:
    """The app's one heartbeat loop for its websockets (made on first use; the lifespan
    closes it)."""
    found: Heartbeats | None = getattr(app.state, "heartbeats", None)
    if found is None:
        ctx: AppContext = app.state.ctx

        async def live_tokens(tokens: Sequence[str]) -> set[str]:
            return await _live_session_tokens(ctx, tokens)

        found = app.state.heartbeats = Heartbeats(
            live_tokens,
            ctx.settings.ws_heartbeat_s,
            beat=HEARTBEAT,
            revoked_code=CLOSE_UNAUTHENTICATED,
        )
    return found


async def _live_session_tokens(ctx: AppContext, tokens: Sequence[str]) -> set[str]:
    """The tokens that are still live sessions, checked in one database session."""
    now = utcnow()
    async with ctx.sessionmaker() as db:
        return {t for t in tokens if await auth.resolve_session(db, t, now=now) is not None}


class _EventsEndpoint:
    """`/ws`: resume, then replayed and live events until either side ends it.

    An idle socket is what a process holds thousands of, so what lives as long as the socket
    is kept small. A bare ASGI app: Starlette would wrap a function endpoint in two more
    coroutines, closures and an exception-handler wrapper (it raises nothing for a handler
    to answer). After the handshake only this frame waits, on the server's own `receive`;
    the heartbeats are one loop for the process, and events are sent by a task made when
    they arrive.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        opened = await _open(websocket)
        if opened is None:
            return
        subscription, token = opened
        heartbeats = heartbeats_of(websocket.app)
        beating = heartbeats.add(websocket, token)
        forwarder = _Forwarder(websocket, subscription)
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass  # nothing the client sends after its resume matters
        finally:
            heartbeats.discard(beating)
            forwarder.stop()
            await subscription.close()
            await forwarder.stopped()


async def _open(websocket: WebSocket) -> tuple[Subscription, str] | None:
    """Check the client, read its resume and subscribe: the subscription and the session
    token, or None when the socket was closed instead."""
    ctx: AppContext = websocket.app.state.ctx
    # Read from the scope, not `websocket.headers`/`.cookies`: those are kept on the socket.
    if not _origin_allowed(ctx, _header(websocket, b"origin")):
        await websocket.close(code=1008)
        return None
    token = _session_token(websocket)
    principal = await principal_from_cookie(ctx, token)
    await websocket.accept()
    if principal is None:
        await websocket.close(code=CLOSE_UNAUTHENTICATED)
        return None
    last_ids = await _read_resume(websocket)
    if last_ids is None:
        await websocket.close(code=CLOSE_BAD_REQUEST)
        return None
    topics = topics_for(principal, last_ids.keys())
    try:
        subscription = await ctx.streams.subscribe(
            topics, {t: v for t, v in last_ids.items() if t in topics}
        )
    except ReplayGap:
        await _reload(websocket)
        return None
    except StreamsUnavailable:
        await websocket.close(code=CLOSE_TRY_LATER)
        return None
    await websocket.send_text(json.dumps({"type": "ready", "topics": topics}))
    return subscription, token


def _header(websocket: WebSocket, name: bytes) -> str | None:
    for key, value in websocket.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _session_token(websocket: WebSocket) -> str:
    token = ""
    for key, value in websocket.scope["headers"]:
        if key == b"cookie":
            token = cookie_parser(value.decode("latin-1")).get(SESSION_COOKIE, token)
    return token


# A plain Starlette route: the endpoint takes no dependencies, and FastAPI's dependency
# machinery would keep its exit stacks and scope copies alive for each socket's whole life.
EVENTS_PATH = "/ws"
_events_endpoint = _EventsEndpoint()
router.routes.append(WebSocketRoute(EVENTS_PATH, _events_endpoint, name="events"))


class EventsFirst:
    """ASGI middleware that hands `/ws` to its endpoint before the app's inner middleware
    and router: FastAPI's exception handling and AsyncExitStack and the routing frames cost
    every socket about 5 KiB for its whole life (bench/ws_memory.py), and the endpoint needs
    none of them. Added as the app's outermost user middleware (`app.add_middleware`), it
    still runs inside Starlette's error and FastAPI's telemetry middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        events_path = scope.get("root_path", "") + EVENTS_PATH
        if scope["type"] == "websocket" and scope["path"] == events_path:
            await _events_endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _read_resume(websocket: WebSocket) -> dict[str, str] | None:
    try:
        async with asyncio.timeout(10):
            raw = await websocket.receive_text()
        message = json.loads(raw)
    except (TimeoutError, ValueError, WebSocketDisconnect, KeyError):
        return None
    if not isinstance(message, dict) or message.get("type") != "resume":
        return None
    last_ids = message.get("last_ids") or {}
    if not isinstance(last_ids, dict):
        return None
    return {str(k): str(v) for k, v in last_ids.items() if isinstance(v, str | int)}


class _Forwarder:
    """Sends a subscription's events to its socket. With a `Feed` (both backends give one)
    no task waits while the socket is idle: the feed calls back when events arrive, and a
    task sends what is there and ends. Any other iterator is followed by a task."""

    __slots__ = ("_feed", "_stopped", "_task", "_websocket")

    def __init__(self, websocket: WebSocket, subscription: Subscription) -> None:
        self._websocket = websocket
        self._feed = aiter(subscription)
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        if isinstance(self._feed, Feed):
            self._feed.when_ready(self._wake)
        else:
            self._task = asyncio.create_task(_forward(websocket, self._feed))

    def _wake(self) -> None:
        if not self._stopped:
            self._task = asyncio.create_task(self._send_ready())

    async def _send_ready(self) -> None:
        feed, websocket = self._feed, self._websocket
        assert isinstance(feed, Feed)
        try:
            while (event := feed.poll()) is not None:
                await websocket.send_text(event.data)
        except ReplayGap:
            await _reload(websocket)
            return
        if feed.ended:
            await websocket.close(code=CLOSE_RESUME)
            return
        self._task = None
        feed.when_ready(self._wake)

    def stop(self) -> None:
        """Send nothing more (the socket is closing)."""
        self._stopped = True
        if isinstance(self._feed, Feed):
            self._feed.when_ready(None)
        if self._task is not None:
            self._task.cancel()

    async def stopped(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def _forward(websocket: WebSocket, events: AsyncIterator[StreamEvent]) -> None:
    """Send the events; when the subscription can no longer follow, tell the client how to
    go on: reload its snapshot after lost events, else reconnect and resume."""
    try:
        async for event in events:
            await websocket.send_text(event.data)
    except ReplayGap:
        await _reload(websocket)
        return
    await websocket.close(code=CLOSE_RESUME)


async def _reload(websocket: WebSocket) -> None:
    """Events for this client were lost: it reloads its snapshot and starts again."""
    await websocket.send_text('{"type":"reload"}')
    await websocket.close(code=CLOSE_RELOAD)
