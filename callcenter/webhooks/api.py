"""`POST /api/pbx/{pbx}/events`: call events from PBXs that are not Asterisk (docs/webhook.md).

HTTP only: limits, parsing (`service`), then the same path as the AMI adapter's events —
`calls.service.ingest` dedupes by (pbx, sender's id) in the PBX event log and applies the
new ones; commit; then publish to browsers and the live queue board.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import JSONResponse

from callcenter.auth.deps import AdminP, Principal
from callcenter.auth.ratelimit import LoginRateLimiter
from callcenter.calls.service import IngestCaches, ingest
from callcenter.context import AppContext
from callcenter.deps import Ctx, Db
from callcenter.webhooks import repository
from callcenter.webhooks.schemas import (
    DOCUMENTED_MAX_EVENTS,
    EXAMPLE_CALL,
    WebhookAccepted,
    request_body_schema,
)
from callcenter.webhooks.service import Rejected, parse_events, to_call_events

router = APIRouter(prefix="/api/pbx", tags=["pbx webhook"])

PbxName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", examples=["cloud"])
]


def _limiter(request: Request, ctx: AppContext) -> LoginRateLimiter:
    limiter: LoginRateLimiter | None = getattr(request.app.state, "webhook_limiter", None)
    if limiter is None:
        limiter = LoginRateLimiter(ctx.settings.webhook_requests_per_minute)
        request.app.state.webhook_limiter = limiter
    return limiter


def _caches(request: Request) -> IngestCaches:
    caches: IngestCaches | None = getattr(request.app.state, "webhook_caches", None)
    if caches is None:
        caches = request.app.state.webhook_caches = IngestCaches()
    return caches


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"at most {limit} bytes")
    return bytes(body)


def _check_rate(request: Request, ctx: AppContext, who: Principal, pbx: str) -> None:
    limiter = _limiter(request, ctx)
    key = (f"token:{who.token_id}" if who.token_id is not None else f"user:{who.user_id}", pbx)
    if not limiter.hit(key):
        retry = max(1, math.ceil(limiter.retry_after(key)))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many webhook requests; retry later",
            headers={"Retry-After": str(retry)},
        )


@router.post(
    "/{pbx}/events",
    response_model=WebhookAccepted,
    responses={
        404: {"description": "The PBX name is not in `CALLCENTER_WEBHOOK_PBXS`"},
        413: {"description": "The body is larger than `CALLCENTER_WEBHOOK_MAX_BODY_BYTES`"},
        429: {"description": "Too many requests for this token and PBX; see `Retry-After`"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": request_body_schema(DOCUMENTED_MAX_EVENTS),
                    "examples": {
                        "one event": {"value": EXAMPLE_CALL[0]},
                        "a whole call": {"value": EXAMPLE_CALL},
                    },
                }
            },
        }
    },
)
async def post_events(
    pbx: PbxName, request: Request, db: Db, ctx: Ctx, who: AdminP
) -> WebhookAccepted | JSONResponse:
    """Apply one call event, or a batch of them, from the PBX `pbx` (all or nothing).

    Events are stored once by (pbx, `id`): sending the same event or batch again changes
    nothing (`duplicates` counts them). Invalid bodies get 422 listing every problem with its
    place, `loc` = `["body", index, field]` (no index for a single event).
    """
    settings = ctx.settings
    if pbx not in settings.webhook_pbxs:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown pbx {pbx!r}")
    _check_rate(request, ctx, who, pbx)
    raw = await _read_body(request, settings.webhook_max_body_bytes)
    try:
        parsed = parse_events(raw, settings.webhook_max_events)
    except Rejected as exc:
        return JSONResponse({"detail": exc.problems}, status.HTTP_422_UNPROCESSABLE_CONTENT)
    events = to_call_events(pbx, parsed)
    known = await repository.known_event_ids(db, pbx, [e.event_id for e in events])
    notifications = await ingest(db, ctx.ingest_policy(), events, _caches(request))
    await db.commit()
    for note in notifications:
        await ctx.streams.publish(note.topic, note.type, note.payload)
    await ctx.live_queues()(events)
    return WebhookAccepted(
        received=len(events), applied=len(events) - len(known), duplicates=len(known)
    )
