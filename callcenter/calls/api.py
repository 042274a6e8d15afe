"""HTTP endpoints for call records: list with filters, detail, outcome and notes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from callcenter import audit
from callcenter.auth.deps import OperatorP
from callcenter.auth.models import Role
from callcenter.calls import auto_close, repository, service
from callcenter.calls.models import Call
from callcenter.calls.schemas import CallOut, CallPatch
from callcenter.calls.state import CallStatus
from callcenter.db import utcnow
from callcenter.deps import Ctx, Db
from callcenter.ids import RowId
from callcenter.pagination import Page, PageParams, page_params
from callcenter.realtime.streams import SUPERVISOR_CALLS_TOPIC, user_topic

router = APIRouter(prefix="/api/calls", tags=["calls"])


@router.get("", response_model=Page[CallOut])
async def list_calls(
    db: Db,
    ctx: Ctx,
    who: OperatorP,
    paging: Annotated[PageParams, Depends(page_params)],
    queue: Annotated[str | None, Query(max_length=64)] = None,
    call_status: Annotated[CallStatus | None, Query(alias="status")] = None,
    client_id: int | None = None,
    agent_user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    phone: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[CallOut]:
    """Calls, newest first. Operators see only the calls they answered."""
    if not who.has_role(Role.SUPERVISOR):
        agent_user_id = who.user_id
    e164 = None
    if phone:
        e164 = ctx.phones.e164(phone)
        if e164 is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "phone is not a number")
    query = repository.call_filter(
        agent_user_id=agent_user_id,
        queue=queue,
        status=call_status,
        client_id=client_id,
        since=since,
        until=until,
        phone_e164=e164,
    )
    rows, total = await repository.page_of_calls(
        db, query, offset=paging.offset, limit=paging.per_page
    )
    items = [CallOut.model_validate(r) for r in rows]
    return Page(items=items, total=total, page=paging.page, per_page=paging.per_page)


async def visible_call(db: Db, who: OperatorP, call_id: RowId) -> Call:
    """The call, if `who` may see it: supervisors see every call, operators their own
    (also the rule for a call's recording and its analysis)."""
    row = await db.get(Call, call_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "call not found")
    if not who.has_role(Role.SUPERVISOR) and row.agent_user_id != who.user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your call")
    return row


@router.get("/{call_id}", response_model=CallOut)
async def get_call(db: Db, who: OperatorP, call_id: RowId) -> CallOut:
    return CallOut.model_validate(await visible_call(db, who, call_id))


@router.patch("/{call_id}", response_model=CallOut)
async def update_call(db: Db, ctx: Ctx, who: OperatorP, call_id: RowId, body: CallPatch) -> CallOut:
    """Set the outcome (one click) and notes of a call the operator took."""
    try:
        row = await auto_close.set_outcome(
            db,
            policy=ctx.ingest_policy(),
            call_id=call_id,
            user_id=who.user_id,
            may_edit_any=who.has_role(Role.SUPERVISOR),
            outcome=body.outcome,
            notes=body.notes,
            now=utcnow(),
        )
    except service.CallNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "call not found") from exc
    except service.NotYourCall as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your call") from exc
    await audit.record(
        db,
        user_id=who.user_id,
        action="set_outcome",
        entity="call",
        entity_id=str(call_id),
        details={"outcome": body.outcome.value if body.outcome else None},
    )
    view = CallOut.model_validate(row)
    summary = service.call_summary(row)
    await db.commit()
    await ctx.streams.publish(user_topic(who.user_id), "call.updated", {"call": summary})
    await ctx.streams.publish(SUPERVISOR_CALLS_TOPIC, "call.updated", {"call": summary})
    return view


@router.post("/{call_id}/wrong-number/undo", response_model=CallOut)
async def undo_wrong_number(db: Db, ctx: Ctx, who: OperatorP, call_id: RowId) -> CallOut:
    """Reopen a call the wrong-number rules closed: one click, and the rules leave it alone."""
    try:
        row = await service.editable_call(
            db, call_id, user_id=who.user_id, may_edit_any=who.has_role(Role.SUPERVISOR)
        )
        row = await auto_close.undo_auto_close(
            db, row, policy=ctx.ingest_policy(), user_id=who.user_id, now=utcnow()
        )
    except service.CallNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "call not found") from exc
    except service.NotYourCall as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your call") from exc
    except auto_close.NothingToUndo as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the call is not closed as a wrong number by the rules"
        ) from exc
    view = CallOut.model_validate(row)
    summary = service.call_summary(row)
    await db.commit()
    agent = row.agent_user_id
    for user_id in {who.user_id} if agent is None else {who.user_id, agent}:
        await ctx.streams.publish(user_topic(user_id), "call.updated", {"call": summary})
    await ctx.streams.publish(SUPERVISOR_CALLS_TOPIC, "call.updated", {"call": summary})
    return view
