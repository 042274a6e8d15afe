"""HTTP endpoints of the live queues: the whole board, and per-queue settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from callcenter import audit
from callcenter.auth.deps import SupervisorP
from callcenter.db import utcnow
from callcenter.deps import Ctx, Db
from callcenter.queues import service
from callcenter.queues.models import QueueSettings
from callcenter.queues.schemas import BoardSnapshot, QueueSettingsIn, QueueSettingsOut

router = APIRouter(prefix="/api/queues", tags=["queues"])

QueueName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\w.@+-]+$")]


@router.get("/live", response_model=BoardSnapshot)
async def live_board(ctx: Ctx, who: SupervisorP) -> BoardSnapshot:
    """Every queue now: callers waiting, agents, today's KPIs with their definitions."""
    return await ctx.live_queues().snapshot()


@router.get("/{queue}/settings", response_model=QueueSettingsOut)
async def get_settings(db: Db, who: SupervisorP, queue: QueueName) -> QueueSettingsOut:
    row = await db.get(QueueSettings, queue)
    return QueueSettingsOut.model_validate(service.settings_view(queue, row))


@router.put("/{queue}/settings", response_model=QueueSettingsOut)
async def put_settings(
    db: Db, ctx: Ctx, who: SupervisorP, queue: QueueName, body: QueueSettingsIn
) -> QueueSettingsOut:
    """Set the queue's service-level T and alarm thresholds (empty: the defaults)."""
    row = await service.save_settings(db, queue, body, user_id=who.user_id, now=utcnow())
    await audit.record(
        db,
        user_id=who.user_id,
        action="queue_settings",
        entity="queue",
        entity_id=queue,
        details=body.model_dump(),
    )
    view = QueueSettingsOut.model_validate(service.settings_view(queue, row))
    targets = service.targets_of(row)
    await db.commit()
    await ctx.live_queues().targets_changed(queue, targets)
    return view
