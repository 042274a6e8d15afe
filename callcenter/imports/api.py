"""HTTP endpoints of imports: upload, mapping and preview, run, report, rejected rows, undo."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse

from callcenter import audit, jobs
from callcenter.auth.deps import SupervisorP
from callcenter.deps import Ctx, Db
from callcenter.ids import RowId
from callcenter.imports import files, repository, service
from callcenter.imports.jobs import IMPORT_JOB, job_key
from callcenter.imports.mapping import MappingError, parse_mapping
from callcenter.imports.models import BatchStatus, ImportBatch
from callcenter.imports.reader import FileRejected
from callcenter.imports.schemas import (
    ImportOut,
    LimitsOut,
    MappingIn,
    PreviewPage,
    PreviewRow,
    TemplateIn,
    TemplateOut,
    UndoOut,
)
from callcenter.imports.upload import UploadError, UploadTooLarge, receive_upload

router = APIRouter(prefix="/api", tags=["imports"])


def install_error_handlers(app: FastAPI) -> None:
    """Refused files and mappings become 413/422 answers with a typed code; conflicts 409."""

    def body(code: str, message: str) -> dict[str, object]:
        return {"detail": {"code": code, "message": message}}

    async def file_rejected(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FileRejected)
        status_code = (
            status.HTTP_413_CONTENT_TOO_LARGE
            if exc.code.value == "too_large"
            else status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        return JSONResponse(body(exc.code.value, exc.message), status_code)

    async def upload_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UploadError)
        status_code = (
            status.HTTP_413_CONTENT_TOO_LARGE
            if isinstance(exc, UploadTooLarge)
            else status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        return JSONResponse(body(exc.code, exc.message), status_code)

    async def mapping_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MappingError)
        content = body("bad_mapping", str(exc))
        content["detail"] = {
            **content["detail"],  # type: ignore[dict-item]
            "reason": exc.code.value,
            "field": exc.field,
            "column": exc.column,
        }
        return JSONResponse(content, status.HTTP_422_UNPROCESSABLE_CONTENT)

    async def state_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(body("bad_state", str(exc)), status.HTTP_409_CONFLICT)

    async def undo_conflict(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, service.UndoConflict)
        content = {"detail": {"code": "undo_conflict", "message": str(exc), **exc.details}}
        return JSONResponse(content, status.HTTP_409_CONFLICT)

    app.add_exception_handler(FileRejected, file_rejected)
    app.add_exception_handler(UploadError, upload_error)
    app.add_exception_handler(MappingError, mapping_error)
    app.add_exception_handler(service.ImportStateError, state_error)
    app.add_exception_handler(service.UndoConflict, undo_conflict)


async def _batch(db: Db, batch_id: RowId) -> ImportBatch:
    batch = await repository.get_batch(db, batch_id)
    if batch is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no import {batch_id}")
    return batch


@router.post("/imports", response_model=ImportOut, status_code=status.HTTP_201_CREATED)
async def upload(request: Request, db: Db, ctx: Ctx, who: SupervisorP) -> ImportOut:
    """A file (multipart field `file`; optional fields `region`, `area_code`), checked and
    stored; the answer has the sheets, headers and the guessed mapping."""
    settings = ctx.settings
    incoming = settings.data_dir / "imports"
    length = request.headers.get("content-length")
    received = await receive_upload(
        request.headers.get("content-type", ""),
        int(length) if length and length.isdigit() else None,
        request.stream(),
        incoming,
        settings.import_max_upload_bytes,
    )
    region = received.fields.get("region") or settings.default_region
    area_code = received.fields.get("area_code", settings.default_area_code)
    try:
        batch = await service.create_batch(
            db,
            received=received.path,
            declared_name=received.filename,
            data_dir=settings.data_dir,
            limits=service.limits_from(settings),
            region=region,
            area_code=area_code,
            user_id=who.user_id,
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    view = ImportOut.model_validate(batch)
    await db.commit()
    return view


@router.get("/imports", response_model=list[ImportOut])
async def list_imports(db: Db, who: SupervisorP) -> list[ImportOut]:
    return [ImportOut.model_validate(b) for b in await repository.list_batches(db)]


@router.get("/imports/limits", response_model=LimitsOut)
async def limits(ctx: Ctx, who: SupervisorP) -> LimitsOut:
    """The largest file accepted and the most data rows it may have."""
    return LimitsOut(
        max_upload_bytes=ctx.settings.import_max_upload_bytes,
        max_rows=ctx.settings.import_max_rows,
    )


@router.get("/imports/{batch_id}", response_model=ImportOut)
async def get_import(db: Db, who: SupervisorP, batch_id: RowId) -> ImportOut:
    """Status, progress, counts and report of one import."""
    return ImportOut.model_validate(await _batch(db, batch_id))


@router.put("/imports/{batch_id}/mapping", response_model=ImportOut)
async def set_mapping(
    db: Db, ctx: Ctx, who: SupervisorP, batch_id: RowId, body: MappingIn
) -> ImportOut:
    """Choose sheet, mapping (or a template), region and area code; the preview is rebuilt.
    Only a new `sheet` (no mapping, no template): its columns are read and guessed, and the
    batch waits for a mapping (status `uploaded`)."""
    batch = await _batch(db, batch_id)
    try:
        plan = await service.configure_batch(
            db,
            batch,
            data_dir=ctx.settings.data_dir,
            limits=service.limits_from(ctx.settings),
            mapping=body.mapping,
            template=body.template,
            region=body.region,
            area_code=body.area_code,
            sheet=body.sheet,
            save_as=body.save_as,
            user_id=who.user_id,
        )
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except ValueError as exc:
        if isinstance(exc, MappingError | service.ImportStateError):
            raise
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    await audit.record(
        db,
        user_id=who.user_id,
        action="import.previewed" if plan is not None else "import.sheet_chosen",
        entity="import",
        entity_id=str(batch_id),
        details={"sheet": batch.sheet, "mapping": batch.mapping, "counts": batch.counts},
    )
    view = ImportOut.model_validate(batch)
    await db.commit()
    return view


@router.get("/imports/{batch_id}/preview", response_model=PreviewPage)
async def preview(
    db: Db,
    ctx: Ctx,
    who: SupervisorP,
    batch_id: RowId,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    decision: Annotated[str | None, Query(max_length=16)] = None,
) -> PreviewPage:
    """Each row's decision (create, update, unchanged, merge, reject) and reason."""
    batch = await _batch(db, batch_id)
    path = files.preview_path(ctx.settings.data_dir, batch.stored_name)
    items, total = await service.read_preview(path, offset, limit, decision)
    await audit.record(
        db,
        user_id=who.user_id,
        action="import.preview_viewed",
        entity="import",
        entity_id=str(batch_id),
        details={"offset": offset, "limit": limit, "decision": decision},
    )
    await db.commit()
    return PreviewPage(
        items=[PreviewRow.model_validate(i) for i in items],
        total=total,
        offset=offset,
        limit=limit,
        counts=batch.counts,
    )


@router.post("/imports/{batch_id}/run", response_model=ImportOut, status_code=202)
async def run(db: Db, who: SupervisorP, batch_id: RowId) -> ImportOut:
    """Start the import in the background; follow it with GET or `import.progress` events."""
    batch = await _batch(db, batch_id)
    await service.start_batch(db, batch, user_id=who.user_id)
    jobs.after_commit(db, IMPORT_JOB, job_key(batch_id), batch_id=batch_id, user_id=who.user_id)
    view = ImportOut.model_validate(batch)
    await db.commit()
    return view


async def _rejected(db: Db, ctx: Ctx, who: SupervisorP, batch_id: RowId, kind: str) -> Response:
    batch = await _batch(db, batch_id)
    if batch.status not in (BatchStatus.DONE, BatchStatus.UNDONE):
        raise service.ImportStateError(f"batch is {batch.status.value}; no report yet")
    path = files.rejected_path(ctx.settings.data_dir, batch.stored_name)
    if batch.counts.get("reject") and not path.exists():
        gone = {"code": "files_expired", "message": "the rejected rows are no longer kept"}
        raise HTTPException(status.HTTP_410_GONE, gone)
    content = await service.render_rejected(path, batch.headers, kind, who.locale)
    await audit.record(
        db,
        user_id=who.user_id,
        action="import.rejected_exported",
        entity="import",
        entity_id=str(batch_id),
        details={"format": kind},
    )
    await db.commit()
    media = (
        "text/csv; charset=utf-8"
        if kind == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    disposition = f'attachment; filename="import-{batch_id}-rejected.{kind}"'
    return Response(content, media_type=media, headers={"Content-Disposition": disposition})


@router.get("/imports/{batch_id}/rejected.csv")
async def rejected_csv(db: Db, ctx: Ctx, who: SupervisorP, batch_id: RowId) -> Response:
    """The rejected rows as they were, with the reason (formulas neutralised)."""
    return await _rejected(db, ctx, who, batch_id, "csv")


@router.get("/imports/{batch_id}/rejected.xlsx")
async def rejected_xlsx(db: Db, ctx: Ctx, who: SupervisorP, batch_id: RowId) -> Response:
    return await _rejected(db, ctx, who, batch_id, "xlsx")


@router.post("/imports/{batch_id}/undo", response_model=UndoOut)
async def undo(db: Db, who: SupervisorP, batch_id: RowId) -> UndoOut:
    """Put the base back as it was before the import (409 if later work would be lost)."""
    batch = await _batch(db, batch_id)
    counts = await service.undo_batch(db, batch, user_id=who.user_id)
    view = ImportOut.model_validate(batch)
    await db.commit()
    return UndoOut(batch=view, undone=counts)


@router.get("/import-templates", response_model=list[TemplateOut])
async def list_templates(db: Db, who: SupervisorP) -> list[TemplateOut]:
    return [TemplateOut.model_validate(t) for t in await repository.list_templates(db)]


@router.post("/import-templates", response_model=TemplateOut, status_code=201)
async def save_template(db: Db, who: SupervisorP, body: TemplateIn) -> TemplateOut:
    """Create or replace a named mapping."""
    template = await service.save_template(
        db, body.name, parse_mapping(body.mapping, None), user_id=who.user_id
    )
    await audit.record(
        db,
        user_id=who.user_id,
        action="import.template_saved",
        entity="import_template",
        entity_id=str(template.id),
        details={"name": body.name},
    )
    await db.commit()
    await db.refresh(template)
    return TemplateOut.model_validate(template)
