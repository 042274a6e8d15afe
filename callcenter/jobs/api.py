"""Administrators' view of background jobs that failed for good, and their requeue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict

from callcenter.auth.deps import AdminP
from callcenter.db import utcnow
from callcenter.deps import Db
from callcenter.ids import RowId
from callcenter.jobs import repository, service
from callcenter.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api/admin/dead-letters", tags=["jobs"])


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    job: str
    key: str
    args: dict[str, Any]
    error: str
    attempts: int
    failed_at: datetime
    requeued_at: datetime | None
    requeued_by: int | None


@router.get("", response_model=Page[DeadLetterOut])
async def list_dead_letters(
    db: Db,
    who: AdminP,
    paging: Annotated[PageParams, Depends(page_params)],
    open_only: bool = True,
) -> Page[DeadLetterOut]:
    """Jobs that failed every attempt, newest first; `open_only=false` shows requeued ones too."""
    rows, total = await repository.page_of_dead_letters(
        db, open_only=open_only, offset=paging.offset, limit=paging.per_page
    )
    return Page(
        items=[DeadLetterOut.model_validate(r) for r in rows],
        total=total,
        page=paging.page,
        per_page=paging.per_page,
    )


@router.post("/{dead_letter_id}/requeue", response_model=DeadLetterOut)
async def requeue_dead_letter(db: Db, who: AdminP, dead_letter_id: RowId) -> DeadLetterOut:
    """Send the job again (after this commit); the letter stays, marked requeued."""
    try:
        letter = await service.requeue(db, dead_letter_id, user_id=who.user_id, now=utcnow())
    except service.DeadLetterNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "dead letter not found") from exc
    except service.DeadLetterRequeued as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "already requeued") from exc
    view = DeadLetterOut.model_validate(letter)
    await db.commit()
    return view
