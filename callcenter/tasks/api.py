"""HTTP endpoints for tasks and meetings, and the one-click task from a call card."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse

from callcenter.auth.deps import OperatorP, Principal
from callcenter.auth.models import Role
from callcenter.calls import service as calls
from callcenter.crm.deps import AddEventsP
from callcenter.db import utcnow
from callcenter.deps import Db
from callcenter.ids import RowId
from callcenter.pagination import Page, PageParams, page_params
from callcenter.tasks import service
from callcenter.tasks.repository import Selection, meetings_page, tasks_page
from callcenter.tasks.schemas import (
    CallTaskIn,
    CloseIn,
    MeetingIn,
    MeetingOut,
    MeetingPatch,
    TaskIn,
    TaskOut,
    TaskPatch,
)

router = APIRouter(prefix="/api", tags=["tasks and meetings"])
Paging = Annotated[PageParams, Depends(page_params)]
StateQ = Literal["open", "done", "all"]


def install_error_handlers(app: FastAPI) -> None:
    async def bad_reference(request: Request, exc: Exception) -> JSONResponse:
        detail = f"unknown reference: {exc}"
        return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)

    async def not_yours(request: Request, exc: Exception) -> JSONResponse:
        message = "only its assignee, its creator or a supervisor may change it"
        return JSONResponse({"detail": message}, status.HTTP_403_FORBIDDEN)

    async def already_closed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"already closed: {exc}"}, status.HTTP_409_CONFLICT)

    app.add_exception_handler(service.BadReference, bad_reference)
    app.add_exception_handler(service.NotYours, not_yours)
    app.add_exception_handler(service.AlreadyClosed, already_closed)


def _selection(
    who: Principal,
    *,
    assignee_id: int | None,
    client_id: int | None,
    organization_id: int | None,
    state: StateQ,
    overdue: bool,
) -> Selection:
    """Without a client or organisation, operators see their own list; supervisors anyone's
    (everyone's when no assignee is given)."""
    supervisor = who.has_role(Role.SUPERVISOR)
    about_a_card = client_id is not None or organization_id is not None
    if not supervisor and not about_a_card:
        if assignee_id not in (None, who.user_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "only supervisors see others' lists")
        assignee_id = who.user_id
    return Selection(
        assignee_id=assignee_id,
        client_id=client_id,
        organization_id=organization_id,
        state=state,
        overdue_at=utcnow() if overdue else None,
    )


# --- tasks -----------------------------------------------------------------------------------


@router.get("/tasks", response_model=Page[TaskOut])
async def list_tasks(
    db: Db,
    who: OperatorP,
    paging: Paging,
    assignee_id: int | None = None,
    client_id: int | None = None,
    organization_id: int | None = None,
    state: StateQ = "open",
    overdue: bool = False,
) -> Page[TaskOut]:
    """Tasks by due time: mine by default, a card's with `client_id`/`organization_id`, only
    the overdue ones with `overdue=true`."""
    selection = _selection(
        who,
        assignee_id=assignee_id,
        client_id=client_id,
        organization_id=organization_id,
        state=state,
        overdue=overdue,
    )
    rows, total = await tasks_page(db, selection, offset=paging.offset, limit=paging.per_page)
    items = await service.task_views(db, rows, utcnow())
    return Page(items=items, total=total, page=paging.page, per_page=paging.per_page)


@router.post("/tasks", response_model=TaskOut, status_code=status.HTTP_201_CREATED)
async def create_task(db: Db, who: AddEventsP, body: TaskIn) -> TaskOut:
    task = await service.create_task(db, body, user_id=who.user_id)
    view = (await service.task_views(db, [task], utcnow()))[0]
    await db.commit()
    return view


@router.get("/tasks/{task_id}", response_model=TaskOut)
async def get_task(db: Db, who: OperatorP, task_id: RowId) -> TaskOut:
    task = await service.get_task(db, task_id)
    return (await service.task_views(db, [task], utcnow()))[0]


@router.patch("/tasks/{task_id}", response_model=TaskOut)
async def update_task(db: Db, who: AddEventsP, task_id: RowId, body: TaskPatch) -> TaskOut:
    task = await service.update_task(
        db, task_id, body, user_id=who.user_id, is_supervisor=who.has_role(Role.SUPERVISOR)
    )
    view = (await service.task_views(db, [task], utcnow()))[0]
    await db.commit()
    return view


@router.post("/tasks/{task_id}/close", response_model=TaskOut)
async def close_task(db: Db, who: AddEventsP, task_id: RowId, body: CloseIn) -> TaskOut:
    """Close with a result (422 without one)."""
    now = utcnow()
    task = await service.close_task(
        db,
        task_id,
        body.result,
        user_id=who.user_id,
        is_supervisor=who.has_role(Role.SUPERVISOR),
        now=now,
    )
    view = (await service.task_views(db, [task], now))[0]
    await db.commit()
    return view


@router.post("/calls/{call_id}/task", response_model=TaskOut, status_code=status.HTTP_201_CREATED)
async def task_from_call(db: Db, who: AddEventsP, call_id: RowId, body: CallTaskIn) -> TaskOut:
    """One click on a call card: a task about the caller, due tomorrow, assigned to me."""
    now = utcnow()
    try:
        task = await service.task_from_call(
            db,
            call_id,
            body,
            user_id=who.user_id,
            may_edit_any=who.has_role(Role.SUPERVISOR),
            now=now,
        )
    except calls.CallNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "call not found") from exc
    except calls.NotYourCall as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your call") from exc
    view = (await service.task_views(db, [task], now))[0]
    await db.commit()
    return view


# --- meetings --------------------------------------------------------------------------------


@router.get("/meetings", response_model=Page[MeetingOut])
async def list_meetings(
    db: Db,
    who: OperatorP,
    paging: Paging,
    assignee_id: int | None = None,
    client_id: int | None = None,
    organization_id: int | None = None,
    state: StateQ = "open",
    overdue: bool = False,
) -> Page[MeetingOut]:
    """Meetings by start time; `overdue=true`: past their time and still without a result."""
    selection = _selection(
        who,
        assignee_id=assignee_id,
        client_id=client_id,
        organization_id=organization_id,
        state=state,
        overdue=overdue,
    )
    rows, total = await meetings_page(db, selection, offset=paging.offset, limit=paging.per_page)
    items = await service.meeting_views(db, rows, utcnow())
    return Page(items=items, total=total, page=paging.page, per_page=paging.per_page)


@router.post("/meetings", response_model=MeetingOut, status_code=status.HTTP_201_CREATED)
async def create_meeting(db: Db, who: AddEventsP, body: MeetingIn) -> MeetingOut:
    """Plan a meeting, or log one that took place by giving its result."""
    now = utcnow()
    meeting = await service.create_meeting(db, body, user_id=who.user_id, now=now)
    view = (await service.meeting_views(db, [meeting], now))[0]
    await db.commit()
    return view


@router.get("/meetings/{meeting_id}", response_model=MeetingOut)
async def get_meeting(db: Db, who: OperatorP, meeting_id: RowId) -> MeetingOut:
    meeting = await service.get_meeting(db, meeting_id)
    return (await service.meeting_views(db, [meeting], utcnow()))[0]


@router.patch("/meetings/{meeting_id}", response_model=MeetingOut)
async def update_meeting(
    db: Db, who: AddEventsP, meeting_id: RowId, body: MeetingPatch
) -> MeetingOut:
    meeting = await service.update_meeting(
        db, meeting_id, body, user_id=who.user_id, is_supervisor=who.has_role(Role.SUPERVISOR)
    )
    view = (await service.meeting_views(db, [meeting], utcnow()))[0]
    await db.commit()
    return view


@router.post("/meetings/{meeting_id}/close", response_model=MeetingOut)
async def close_meeting(db: Db, who: AddEventsP, meeting_id: RowId, body: CloseIn) -> MeetingOut:
    """Close with a result (422 without one)."""
    now = utcnow()
    meeting = await service.close_meeting(
        db,
        meeting_id,
        body.result,
        user_id=who.user_id,
        is_supervisor=who.has_role(Role.SUPERVISOR),
        now=now,
    )
    view = (await service.meeting_views(db, [meeting], now))[0]
    await db.commit()
    return view
