"""HTTP endpoints of the reports, their drill-downs and exports, and of plan targets.

Supervisors and admins see everything; operators see only their own agent figures, the calls
behind them and their own plan progress.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse

from callcenter import audit
from callcenter.auth.deps import OperatorP, Principal, SupervisorP
from callcenter.auth.models import Role
from callcenter.db import utcnow
from callcenter.deps import Ctx, Db
from callcenter.ids import RowId
from callcenter.pagination import PageParams, page_params
from callcenter.reports import plans, repository, service
from callcenter.reports.export import Cell, Table, csv_chunks, xlsx_file
from callcenter.reports.models import PlanTarget
from callcenter.reports.schemas import (
    AgentReport,
    Assignee,
    DrillCall,
    DrillPage,
    PlanProgressOut,
    PlanTargetIn,
    PlanTargetOut,
    QueueReport,
    ReportRow,
)

router = APIRouter(prefix="/api", tags=["reports"])

QueueFilter = Annotated[list[str] | None, Query(alias="queue", max_length=50)]
UserFilter = Annotated[list[int] | None, Query(alias="user_id", max_length=500)]
From = Annotated[date | None, Query(alias="from")]
To = Annotated[date | None, Query(alias="to")]


def install_error_handlers(app: FastAPI) -> None:
    """Report and plan errors become 422 and 404 answers."""

    async def unprocessable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_422_UNPROCESSABLE_CONTENT)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"plan not found: {exc}"}, status.HTTP_404_NOT_FOUND)

    for error in (service.BadRange, service.UnknownSet, plans.PlanInvalid):
        app.add_exception_handler(error, unprocessable)
    app.add_exception_handler(plans.PlanNotFound, not_found)


async def _scope(db: Db, ctx: Ctx) -> service.ReportScope:
    live_levels: dict[str, float] = {}
    if ctx.queues_board is not None:  # the T the live board uses (the PBX's, when it set one)
        snapshot = await ctx.queues_board.snapshot()
        live_levels = {q.queue: q.service_level_s for q in snapshot.queues}
    return await service.scope_of(db, ctx.settings, live_levels)


Scope = Annotated[service.ReportScope, Depends(_scope)]


def _dates(scope: service.ReportScope, first: date | None, last: date | None) -> tuple[date, date]:
    today = datetime.now(UTC).astimezone(scope.tz).date()
    return first or last or today, last or first or today


def _own_users(who: Principal, user_ids: list[int] | None) -> list[int] | None:
    """Operators see only themselves."""
    if who.has_role(Role.SUPERVISOR):
        return user_ids
    if user_ids and set(user_ids) != {who.user_id}:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "operators see only their own figures")
    return [who.user_id]


# --- reports ---------------------------------------------------------------------------------


@router.get("/reports/queues", response_model=QueueReport, response_model_by_alias=True)
async def queue_report(
    db: Db,
    who: SupervisorP,
    scope: Scope,
    first: From = None,
    last: To = None,
    queues: QueueFilter = None,
) -> QueueReport:
    """Per queue, hour of the day and day: offered, answered, abandoned, service level..."""
    first, last = _dates(scope, first, last)
    return await service.queue_report(db, scope, first, last, queues)


@router.get("/reports/agents", response_model=AgentReport, response_model_by_alias=True)
async def agent_report(
    db: Db,
    who: OperatorP,
    scope: Scope,
    first: From = None,
    last: To = None,
    users: UserFilter = None,
) -> AgentReport:
    """Per agent: offered, answered, missed, talk, AHT, wrap-up, pauses, completeness."""
    first, last = _dates(scope, first, last)
    return await service.agent_report(db, scope, first, last, _own_users(who, users))


@router.get("/reports/calls", response_model=DrillPage)
async def drill_calls(
    db: Db,
    who: OperatorP,
    scope: Scope,
    paging: Annotated[PageParams, Depends(page_params)],
    call_set: Annotated[str, Query(alias="set", min_length=3, max_length=64)],
    first: From = None,
    last: To = None,
    queues: QueueFilter = None,
    user_id: int | None = None,
    day: date | None = None,
    hour: Annotated[int | None, Query(ge=0, le=23)] = None,
) -> DrillPage:
    """The calls behind one figure of a report (its `drill` address)."""
    condition = await _drill_condition(
        db, who, scope, call_set, first, last, queues, user_id, day, hour
    )
    rows, total = await repository.calls_page(
        db, condition, offset=paging.offset, limit=paging.per_page
    )
    return DrillPage(
        items=[DrillCall.model_validate(r) for r in rows],
        total=total,
        page=paging.page,
        per_page=paging.per_page,
    )


async def _drill_condition(
    db: Db,
    who: Principal,
    scope: service.ReportScope,
    call_set: str,
    first: date | None,
    last: date | None,
    queues: list[str] | None,
    user_id: int | None,
    day: date | None,
    hour: int | None,
) -> Any:
    first, last = _dates(scope, first, last)
    supervisor = who.has_role(Role.SUPERVISOR)
    if call_set.startswith("plan:"):
        target_id = _plan_id(call_set)
        target, condition = await plans.drill_condition(db, scope, target_id, first)
        if not supervisor and target.user_id != who.user_id:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "not your plan")
        return condition
    if not supervisor and (not call_set.startswith("agent:") or user_id != who.user_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "operators see only their own calls")
    query = service.DrillQuery(
        call_set=call_set,
        first=first,
        last=last,
        queues=tuple(queues or ()),
        user_id=user_id,
        day=day,
        hour=hour,
    )
    return await service.drill_condition(db, scope, query)


def _plan_id(call_set: str) -> int:
    raw = call_set.removeprefix("plan:")
    if not raw.isdigit():
        raise service.UnknownSet(call_set)
    return int(raw)


# --- exports ---------------------------------------------------------------------------------


class ExportKind(StrEnum):
    QUEUES = "queues"
    HOURS = "hours"
    DAYS = "days"
    AGENTS = "agents"
    CALLS = "calls"


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


@cache
def _catalogue(locale: str) -> dict[str, str]:
    from callcenter.main import UI_DIR

    merged: dict[str, str] = {}
    for part in ("", "supervisor", "reports"):
        folder = UI_DIR / "i18n" / part if part else UI_DIR / "i18n"
        path = folder / f"{locale if locale in ('ru', 'en') else 'ru'}.json"
        if path.is_file():
            merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def _text(locale: str, key: str) -> str:
    return _catalogue(locale).get(key, key)


def _figure_cells(row: ReportRow, keys: list[str]) -> list[Cell]:
    values = [row.figures[k].value for k in keys]
    return [int(v) if v is not None and float(v).is_integer() else v for v in values]


def _report_table(
    kind: ExportKind, locale: str, queue: QueueReport | None, agents: AgentReport | None
) -> Table:
    if agents is not None:
        keys = [k.key for k in agents.kpis]
        reasons = sorted({p.reason for row in agents.rows for p in row.pauses})
        headers = [_text(locale, "reports.col.agent")]
        headers += [_text(locale, k.name_key) for k in agents.kpis]
        headers += [_text(locale, "reports.col.pause_total")]
        headers += [f"{_text(locale, 'reports.col.pause')}: {r}" for r in reasons]
        rows: list[list[Cell]] = []
        for row in agents.rows:
            paused = {p.reason: p.seconds for p in row.pauses}
            rows.append(
                [row.label, *_figure_cells(row, keys), row.pause_total_s]
                + [paused.get(r, 0.0) for r in reasons]
            )
        return Table(title=_text(locale, "reports.tab.agents"), headers=headers, rows=rows)
    assert queue is not None
    keys = [k.key for k in queue.kpis]
    source = {
        ExportKind.QUEUES: [*queue.rows, queue.total],
        ExportKind.HOURS: queue.by_hour,
        ExportKind.DAYS: queue.by_day,
    }[kind]
    first_column = {
        ExportKind.QUEUES: "reports.col.queue",
        ExportKind.HOURS: "reports.col.hour",
        ExportKind.DAYS: "reports.col.day",
    }[kind]
    headers = [_text(locale, first_column)] + [_text(locale, k.name_key) for k in queue.kpis]
    rows = [
        [row.label or _text(locale, "reports.total"), *_figure_cells(row, keys)] for row in source
    ]
    return Table(title=_text(locale, f"reports.export.{kind.value}"), headers=headers, rows=rows)


MAX_EXPORTED_CALLS = 100_000
"""A call list is built in one request (no background job yet): larger ones are refused."""

CALL_COLUMNS = (
    "id",
    "started_at",
    "ended_at",
    "direction",
    "queue",
    "agent_name",
    "caller_num",
    "caller_name",
    "wait_seconds",
    "talk_seconds",
    "end_reason",
    "outcome",
    "notes",
)


async def _call_rows(db: Db, condition: Any, scope: service.ReportScope) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    stream = await repository.calls_stream(db, condition)
    async for call in stream:
        view = DrillCall.model_validate(call).model_dump()
        rows.append([_local(view[c], scope) for c in CALL_COLUMNS])
    return rows


def _local(value: Any, scope: service.ReportScope) -> Cell:
    if isinstance(value, datetime):
        return value.astimezone(scope.tz).replace(tzinfo=None)
    if isinstance(value, StrEnum):
        return value.value
    return value  # type: ignore[no-any-return]


@router.get("/reports/{kind}.{fmt}")
async def export_report(
    db: Db,
    who: SupervisorP,
    scope: Scope,
    kind: ExportKind,
    fmt: ExportFormat,
    first: From = None,
    last: To = None,
    queues: QueueFilter = None,
    users: UserFilter = None,
    call_set: Annotated[str | None, Query(alias="set", max_length=64)] = None,
    day: date | None = None,
    hour: Annotated[int | None, Query(ge=0, le=23)] = None,
) -> StreamingResponse:
    """A report (or the calls behind a figure: `calls` with `set`) as CSV or Excel."""
    first, last = _dates(scope, first, last)
    if kind is ExportKind.CALLS:
        if call_set is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "set is required")
        user_id = users[0] if users else None
        condition = await _drill_condition(
            db, who, scope, call_set, first, last, queues, user_id, day, hour
        )
        if await repository.count_calls(db, condition) > MAX_EXPORTED_CALLS:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"more than {MAX_EXPORTED_CALLS} calls: narrow the range or the filters",
            )
        headers = [_text(who.locale, f"reports.call.{c}") for c in CALL_COLUMNS]
        table = Table(
            title=_text(who.locale, "reports.export.calls"),
            headers=headers,
            rows=await _call_rows(db, condition, scope),
        )
    elif kind is ExportKind.AGENTS:
        agents = await service.agent_report(db, scope, first, last, users)
        table = _report_table(kind, who.locale, None, agents)
    else:
        queue = await service.queue_report(db, scope, first, last, queues)
        table = _report_table(kind, who.locale, queue, None)
    await audit.record(
        db,
        user_id=who.user_id,
        action="report.exported",
        entity="report",
        entity_id=kind.value,
        details={
            "format": fmt.value,
            "from": first.isoformat(),
            "to": last.isoformat(),
            "queues": queues or [],
            "users": users or [],
            "set": call_set,
        },
    )
    await db.commit()
    name = f"{kind.value}_{first.isoformat()}_{last.isoformat()}.{fmt.value}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt is ExportFormat.CSV:
        return StreamingResponse(
            _iterate(csv_chunks(table)), media_type="text/csv; charset=utf-8", headers=disposition
        )
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return StreamingResponse(_file_chunks(xlsx_file(table)), media_type=media, headers=disposition)


async def _iterate(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _file_chunks(file: Any, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    try:
        while chunk := file.read(size):
            yield chunk
    finally:
        file.close()


# --- plans -----------------------------------------------------------------------------------


@router.get("/plans", response_model=list[PlanTargetOut])
async def list_plans(db: Db, who: SupervisorP) -> list[PlanTargetOut]:
    return [PlanTargetOut.model_validate(t) for t in await repository.plan_targets(db)]


@router.put("/plans", response_model=PlanTargetOut)
async def put_plan(db: Db, ctx: Ctx, who: SupervisorP, body: PlanTargetIn) -> PlanTargetOut:
    """Set a manager's or a team's target for a metric and period (replaces the old one)."""
    row = await plans.save_target(db, body, set_by=who.user_id)
    await audit.record(
        db,
        user_id=who.user_id,
        action="plan.set",
        entity="plan_target",
        entity_id=str(row.id),
        details=body.model_dump(mode="json"),
    )
    view = PlanTargetOut.model_validate(row)
    await db.commit()
    await _announce(ctx, row)
    return view


@router.delete("/plans/{target_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_plan(db: Db, ctx: Ctx, who: SupervisorP, target_id: RowId) -> None:
    row = await plans.delete_target(db, target_id)
    await audit.record(
        db,
        user_id=who.user_id,
        action="plan.deleted",
        entity="plan_target",
        entity_id=str(target_id),
    )
    await db.commit()
    await _announce(ctx, row)


async def _announce(ctx: Ctx, row: PlanTarget) -> None:
    """Tell the manager's open pages that their plan changed (after the commit)."""
    if row.user_id is not None:
        from callcenter.realtime.streams import user_topic

        await ctx.streams.publish(user_topic(row.user_id), "plan.changed", {"plan_id": row.id})


@router.get("/plans/progress", response_model=PlanProgressOut)
async def plan_progress(
    db: Db, who: OperatorP, scope: Scope, user_id: int | None = None
) -> PlanProgressOut:
    """Targets with live counters: an operator's own; a supervisor's pick (all by default)."""
    if not who.has_role(Role.SUPERVISOR):
        if user_id is not None and user_id != who.user_id:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "operators see only their own plan")
        user_id = who.user_id
    targets = await repository.plan_targets(db, user_id=user_id)
    names = await repository.user_names(db, {t.user_id for t in targets if t.user_id})
    now = utcnow()
    items = await plans.progress(db, scope, targets, names, now)
    return PlanProgressOut(user_id=user_id, at=now, items=items)


@router.get("/plans/assignees", response_model=list[Assignee])
async def plan_assignees(db: Db, who: SupervisorP) -> list[Assignee]:
    """The active users a supervisor can set a plan for."""
    return [
        Assignee(id=u.id, name=u.name, login=u.login, role=u.role.value)
        for u in await repository.active_users(db)
    ]
