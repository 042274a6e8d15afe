"""HTTP endpoints of call control: agents (pause, queues, listen/whisper/barge), click-to-call,
and the missed-calls worklist.

Errors carry `{"detail": {"code": ..., "message": ...}}`: `no_extension` 409,
`not_your_extension` 403, `invalid_request` 422, `agent_not_in_call` 409, `not_in_worklist`
404, `pbx_unavailable` 503 (no adapter in this process), `pbx_not_connected` 503,
`pbx_refused` 409 (with the PBX's message), `pbx_no_answer` 504 (the outcome is unknown).
An originate whose answer was lost is not an error: 202 with status `unknown`.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, status
from sqlalchemy.exc import IntegrityError

from callcenter.auth.deps import OperatorP, Principal, SupervisorP
from callcenter.auth.models import Role
from callcenter.clients.repository import clients_by_ids
from callcenter.control import service
from callcenter.control.models import OutboundRequest
from callcenter.control.pbx import ControlResult, ControlStatus
from callcenter.control.schemas import (
    EXTENSION_PATTERN,
    INTERFACE_PATTERN,
    ActionResultOut,
    ClosedOut,
    CloseIn,
    ControlMeOut,
    DialIn,
    DialOut,
    MemberIn,
    MemberStateOut,
    PauseIn,
    PauseOut,
    SpyIn,
    SpyOut,
    UnpauseIn,
    WorklistItemOut,
)
from callcenter.control.service import Actor, ControlError
from callcenter.db import utcnow
from callcenter.deps import Ctx, Db
from callcenter.ids import RowId
from callcenter.pagination import Page, PageParams, page_params
from callcenter.realtime.streams import user_topic

router = APIRouter(tags=["control"])

AgentExtension = Annotated[
    str,
    Path(
        pattern=f"^{service.ME}$|{EXTENSION_PATTERN}",
        description="an extension (`101`), or `me` for all of the caller's own",
    ),
]
QueuePath = Annotated[str, Path(pattern=r"^[\w.@+-]{1,64}$")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\w.:-]{8,64}$",
        description="one per click: the same key again returns the first answer, dials nothing",
    ),
]

_ERROR_STATUS: dict[type[ControlError], int] = {
    service.PbxUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
    service.NoExtension: status.HTTP_409_CONFLICT,
    service.NotYourExtension: status.HTTP_403_FORBIDDEN,
    service.InvalidRequest: status.HTTP_422_UNPROCESSABLE_CONTENT,
    service.AgentNotInCall: status.HTTP_409_CONFLICT,
    service.NotInWorklist: status.HTTP_404_NOT_FOUND,
}
_RESULT_ERRORS = {
    ControlStatus.REFUSED: (status.HTTP_409_CONFLICT, "pbx_refused"),
    ControlStatus.NOT_CONNECTED: (status.HTTP_503_SERVICE_UNAVAILABLE, "pbx_not_connected"),
    ControlStatus.UNKNOWN: (status.HTTP_504_GATEWAY_TIMEOUT, "pbx_no_answer"),
}
ERROR_CODES: tuple[str, ...] = (
    *(error.code for error in _ERROR_STATUS),
    *(name for _, name in _RESULT_ERRORS.values()),
)
"""Every `detail.code` these endpoints answer with (the UI has a message for each)."""


def _actor(who: Principal) -> Actor:
    return Actor(user_id=who.user_id, supervisor=who.has_role(Role.SUPERVISOR), role=who.role.value)


async def _refuse(db: Db, exc: ControlError) -> NoReturn:
    """Keep what the service audited about the refusal, then answer with it."""
    await db.commit()
    code = _ERROR_STATUS.get(type(exc), status.HTTP_409_CONFLICT)
    raise HTTPException(code, detail={"code": exc.code, "message": str(exc)}) from exc


def _raise_for(result: ControlResult, **extra: Any) -> None:
    """The HTTP error for a PBX result that is not ok (nothing for ok)."""
    if result.ok:
        return
    code, name = _RESULT_ERRORS[result.status]
    message = result.message or result.status.value
    raise HTTPException(code, detail={"code": name, "message": message, **extra})


# --------------------------------------------------------------------------- the agent's own state


@router.get("/api/control/me", response_model=ControlMeOut)
async def my_control(db: Db, ctx: Ctx, who: OperatorP) -> ControlMeOut:
    """The caller's extensions, their pause state as the PBX reports it now, and the pause
    reasons on offer."""
    settings = ctx.settings
    extensions, pbx, members = await service.member_status(
        db, ctx.pbx_control, settings, _actor(who)
    )
    paused_in = [m for m in members if m.paused]
    return ControlMeOut(
        extensions=extensions,
        pbx=pbx.value if pbx is not None else "unavailable",
        paused=bool(paused_in) if members else None,
        reason=paused_in[0].reason if paused_in else "",
        members=[
            MemberStateOut(queue=m.queue, interface=m.interface, paused=m.paused, reason=m.reason)
            for m in members
        ],
        pause_reasons=list(settings.pause_reasons),
        reason_max_length=settings.pause_reason_max_length,
        other_reason=service.OTHER_REASON,
    )


# --------------------------------------------------------------------------- pause


async def _pause(
    db: Db,
    ctx: Ctx,
    who: Principal,
    extension: str,
    *,
    paused: bool,
    reason: str = "",
    text: str = "",
    queue: str | None,
    interface: str | None,
) -> PauseOut:
    try:
        outcome = await service.set_paused(
            db,
            ctx.pbx_control,
            ctx.settings,
            _actor(who),
            extension,
            paused=paused,
            reason_code=reason,
            reason_text=text,
            queue=queue,
            interface=interface,
        )
    except ControlError as exc:
        await _refuse(db, exc)
    await db.commit()
    results = [
        ActionResultOut(
            extension=a.extension,
            interface=a.interface,
            status=a.result.status.value,
            message=a.result.message,
        )
        for a in outcome.actions
    ]
    for action in outcome.actions:
        if not action.result.ok:
            continue
        change = {
            "extension": action.extension,
            "interface": action.interface,
            "queue": outcome.queue,
            "paused": outcome.paused,
            "reason": outcome.reason,
            "by_user_id": who.user_id,
        }
        for user_id in action.users:
            await ctx.streams.publish(user_topic(user_id), "agent.pause", change)
    for action in outcome.actions:
        _raise_for(action.result, results=[r.model_dump() for r in results])
    return PauseOut(
        paused=outcome.paused, reason=outcome.reason, queue=outcome.queue, results=results
    )


@router.post("/api/agents/{extension}/pause", response_model=PauseOut)
async def pause_agent(
    db: Db, ctx: Ctx, who: OperatorP, extension: AgentExtension, body: PauseIn
) -> PauseOut:
    """Pause an agent with a reason (`QueuePause`). Operators: only themselves (`me`)."""
    return await _pause(
        db,
        ctx,
        who,
        extension,
        paused=True,
        reason=body.reason,
        text=body.text,
        queue=body.queue,
        interface=body.interface,
    )


@router.post("/api/agents/{extension}/unpause", response_model=PauseOut)
async def unpause_agent(
    db: Db, ctx: Ctx, who: OperatorP, extension: AgentExtension, body: UnpauseIn
) -> PauseOut:
    """Take an agent out of pause (`QueuePause` Paused=false). Operators: only themselves."""
    return await _pause(
        db, ctx, who, extension, paused=False, queue=body.queue, interface=body.interface
    )


# --------------------------------------------------------------------------- queue membership


@router.put("/api/agents/{extension}/queues/{queue}", response_model=ActionResultOut)
async def add_to_queue(
    db: Db,
    ctx: Ctx,
    who: SupervisorP,
    extension: AgentExtension,
    queue: QueuePath,
    body: MemberIn,
) -> ActionResultOut:
    """Make the agent a member of `queue` (`QueueAdd`)."""
    try:
        action = await service.add_member(
            db,
            ctx.pbx_control,
            ctx.settings,
            _actor(who),
            extension,
            queue,
            interface=body.interface,
            member_name=body.member_name,
            penalty=body.penalty,
            paused=body.paused,
        )
    except ControlError as exc:
        await _refuse(db, exc)
    await db.commit()
    _raise_for(action.result)
    return _action_out(action)


@router.delete("/api/agents/{extension}/queues/{queue}", response_model=ActionResultOut)
async def remove_from_queue(
    db: Db,
    ctx: Ctx,
    who: SupervisorP,
    extension: AgentExtension,
    queue: QueuePath,
    interface: Annotated[str | None, Query(pattern=INTERFACE_PATTERN)] = None,
) -> ActionResultOut:
    """Take the agent out of `queue` (`QueueRemove`; dynamic members only)."""
    try:
        action = await service.remove_member(
            db, ctx.pbx_control, ctx.settings, _actor(who), extension, queue, interface=interface
        )
    except ControlError as exc:
        await _refuse(db, exc)
    await db.commit()
    _raise_for(action.result)
    return _action_out(action)


def _action_out(action: service.AgentAction) -> ActionResultOut:
    return ActionResultOut(
        extension=action.extension,
        interface=action.interface,
        status=action.result.status.value,
        message=action.result.message,
    )


# --------------------------------------------------------------------------- listen, whisper, barge


@router.post("/api/agents/{extension}/spy", response_model=SpyOut)
async def spy_on_agent(
    db: Db, ctx: Ctx, who: SupervisorP, extension: AgentExtension, body: SpyIn
) -> SpyOut:
    """Ring the supervisor's phone into the agent's call: listen, whisper or barge
    (`Originate` → `ChanSpy`)."""
    try:
        outcome = await service.spy(
            db,
            ctx.pbx_control,
            _actor(who),
            extension,
            body.mode,
            from_extension=body.from_extension,
        )
    except ControlError as exc:
        await _refuse(db, exc)
    await db.commit()
    if outcome.result.status is not ControlStatus.UNKNOWN:
        _raise_for(outcome.result)
    return SpyOut(
        mode=body.mode,
        extension=extension,
        from_extension=outcome.from_extension,
        call_id=outcome.call_id,
        status=outcome.result.status.value,
        message=outcome.result.message,
    )


# --------------------------------------------------------------------------- click-to-call


@router.post("/api/outbound-calls", response_model=DialOut, status_code=status.HTTP_202_ACCEPTED)
async def click_to_call(
    db: Db, ctx: Ctx, who: OperatorP, body: DialIn, idempotency_key: IdempotencyKey = None
) -> DialOut:
    """Ring the operator's phone, then dial the number (`Originate`). Send one
    `Idempotency-Key` per click: a repeated click never dials twice."""
    actor = _actor(who)
    try:
        plan = await service.plan_dial(
            db,
            ctx.phones,
            actor,
            body.number,
            from_extension=body.from_extension,
            client_id=body.client_id,
        )
    except ControlError as exc:
        await _refuse(db, exc)
    return await _dial(db, ctx, actor, plan, idempotency_key)


async def _dial(
    db: Db, ctx: Ctx, actor: Actor, plan: service.DialPlan, idempotency_key: str | None
) -> DialOut:
    if ctx.pbx_control is None:
        await _refuse(db, service.PbxUnavailable())
    try:
        reservation = await service.reserve_dial(
            db,
            plan,
            idempotency_key=idempotency_key,
            now=utcnow(),
            dedupe_s=ctx.settings.dial_dedupe_s,
        )
        await db.commit()
    except IntegrityError:
        # The same key arrived twice at once; the other request holds the reservation.
        await db.rollback()
        existing = await service.request_by_key(db, actor.user_id, idempotency_key)
        if existing is None:
            raise
        reservation = service.Reservation(existing, None)
    click = reservation.click
    if click is None:
        return _dial_out(ctx, reservation.request, duplicate=True)
    if reservation.duplicate:
        await service.finish_dial(db, actor, click, None, duplicate_of=reservation.request)
        await db.commit()
        return _dial_out(ctx, reservation.request, duplicate=True)
    result = await service.send_dial(ctx.pbx_control, plan, click)
    await service.finish_dial(db, actor, click, result)
    await db.commit()
    if result.status is not ControlStatus.UNKNOWN:
        _raise_for(result, request_id=click.id)
    return _dial_out(ctx, click, duplicate=False)


def _dial_out(ctx: Ctx, request: OutboundRequest, *, duplicate: bool) -> DialOut:
    return DialOut(
        request_id=request.id,
        status=request.status,
        duplicate=duplicate,
        from_extension=request.from_extension,
        e164=request.to_e164,
        display=ctx.phones.display(request.to_e164),
        dial_string=request.dial_string,
        message=request.message,
        missed_call_id=request.missed_call_id,
    )


# --------------------------------------------------------------------------- the worklist


@router.get("/api/worklist/missed", response_model=Page[WorklistItemOut])
async def missed_calls(
    db: Db, ctx: Ctx, who: OperatorP, paging: Annotated[PageParams, Depends(page_params)]
) -> Page[WorklistItemOut]:
    """Callers of the last days whose queue call nobody took and who were not reached since,
    newest first; the caller's queues (supervisors: all). One item per number."""
    items = await service.worklist(db, ctx.settings, _actor(who), utcnow())
    shown = items[paging.offset : paging.offset + paging.per_page]
    names = await clients_by_ids(db, [i.latest.client_id for i in shown if i.latest.client_id])
    return Page(
        items=[
            WorklistItemOut(
                call_id=i.latest.id,
                call_ids=list(i.call_ids),
                e164=i.e164,
                display=ctx.phones.display(i.e164),
                caller_name=i.latest.caller_name,
                client_id=i.latest.client_id,
                client_name=(
                    names[i.latest.client_id].name if i.latest.client_id in names else None
                ),
                queue=i.latest.queue,
                end_reason=i.latest.end_reason,
                started_at=i.latest.started_at,
                first_missed_at=i.first_missed_at,
                missed_count=i.missed_count,
                wait_seconds=i.latest.wait_seconds,
                attempts=i.attempts,
                last_attempt_at=i.last_attempt.at if i.last_attempt else None,
                last_attempt_status=i.last_attempt.status if i.last_attempt else None,
            )
            for i in shown
        ],
        total=len(items),
        page=paging.page,
        per_page=paging.per_page,
    )


@router.post(
    "/api/worklist/missed/{call_id}/call-back",
    response_model=DialOut,
    status_code=status.HTTP_202_ACCEPTED,
)
async def call_back(
    db: Db, ctx: Ctx, who: OperatorP, call_id: RowId, idempotency_key: IdempotencyKey = None
) -> DialOut:
    """Call the missed caller back from the operator's phone (as click-to-call does); the
    attempt shows on the item, which stays until a call with the number is answered."""
    actor = _actor(who)
    try:
        item = await service.worklist_item(db, ctx.settings, actor, call_id, utcnow())
        plan = await service.plan_dial(
            db,
            ctx.phones,
            actor,
            item.e164,
            client_id=item.latest.client_id,
            missed_call_id=call_id,
        )
    except ControlError as exc:
        await _refuse(db, exc)
    return await _dial(db, ctx, actor, plan, idempotency_key)


@router.post("/api/worklist/missed/{call_id}/close", response_model=ClosedOut)
async def close_missed(
    db: Db, ctx: Ctx, who: OperatorP, call_id: RowId, body: CloseIn
) -> ClosedOut:
    """Take the item off the worklist by hand: `done` (handled) or `dismissed`."""
    try:
        item = await service.close_item(
            db, ctx.settings, _actor(who), call_id, body.resolution, utcnow()
        )
    except ControlError as exc:
        await _refuse(db, exc)
    await db.commit()
    return ClosedOut(
        call_id=item.latest.id, call_ids=list(item.call_ids), resolution=body.resolution
    )
