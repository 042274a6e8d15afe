"""Liveness, readiness and Prometheus metrics of the API process."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from callcenter.deps import Ctx

router = APIRouter(tags=["health"])


@router.get("/api/health")
async def health(ctx: Ctx) -> dict[str, Any]:
    """Whether the database answers, and the PBX link's health when this process runs it."""
    async with ctx.sessionmaker() as session:
        await session.execute(text("SELECT 1"))
    pbx = ctx.pbx_health() if ctx.pbx_health else None
    return {"status": "ok", "database": "ok", "pbx": pbx}


@router.get("/metrics", include_in_schema=False)
async def metrics(ctx: Ctx) -> Response:
    return Response(generate_latest(ctx.metrics), media_type=CONTENT_TYPE_LATEST)
