"""The audit log reader: who viewed, exported or changed which client's data, and who
listened to which recording. Read only; nothing in the product updates or deletes entries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from callcenter.crm import repository
from callcenter.crm.deps import AuditReaderP
from callcenter.crm.schemas import AuditEntryOut, AuditPage, Person
from callcenter.deps import Db

router = APIRouter(prefix="/api", tags=["audit"])


@router.get("/audit", response_model=AuditPage)
async def read_audit_log(
    db: Db,
    who: AuditReaderP,
    client_id: int | None = None,
    user_id: int | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Entries newest first. `client_id` finds entries on the card, on its calls, and those
    listing it (list views, exports); `action` may end in `*` for a prefix (`recording.*`);
    `before` is the `next_before` of the previous page."""
    rows = await repository.audit_entries(
        db,
        client_id=client_id,
        user_id=user_id,
        action=action,
        entity=entity,
        since=since,
        until=until,
        before_id=before,
        limit=limit + 1,
    )
    page = list(rows[:limit])
    names = await repository.user_names(db, [r.user_id for r in page])
    items = [
        AuditEntryOut(
            id=r.id,
            at=r.at,
            user=(
                Person(id=r.user_id, name=names[r.user_id])
                if r.user_id is not None and r.user_id in names
                else None
            ),
            action=r.action,
            entity=r.entity,
            entity_id=r.entity_id,
            details=dict(r.details or {}),
        )
        for r in page
    ]
    return AuditPage(items=items, next_before=page[-1].id if len(rows) > limit else None)
