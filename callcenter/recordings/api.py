"""HTTP endpoints for a call's recording: its analysis, and the audio itself (audited)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse

from callcenter import audit
from callcenter.auth.deps import OperatorP
from callcenter.calls.api import visible_call
from callcenter.deps import Ctx, Db
from callcenter.ids import RowId
from callcenter.recordings import service
from callcenter.recordings.analysis import RecordingError
from callcenter.recordings.schemas import AnalysisOut

router = APIRouter(prefix="/api/calls", tags=["recordings"])

LISTENED = "recording.listened"


@router.get("/{call_id}/analysis", response_model=AnalysisOut)
async def get_analysis(db: Db, who: OperatorP, call_id: RowId) -> AnalysisOut:
    """The call's recording analysis (or why there is none), for whoever may see the call."""
    call = await visible_call(db, who, call_id)
    return AnalysisOut.of(call, await service.stored_analysis(db, call_id))


@router.get(
    "/{call_id}/recording",
    response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}}}, 206: {"content": {"audio/wav": {}}}},
)
async def get_recording(
    request: Request, db: Db, ctx: Ctx, who: OperatorP, call_id: RowId
) -> FileResponse:
    """The call's WAV file (Range requests honoured). Every request that gets audio is
    written to the audit log as `recording.listened`."""
    call = await visible_call(db, who, call_id)
    if not call.recording:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the call has no recording")
    try:
        path = service.recording_path(ctx.settings.recordings_dir, call.recording)
    except RecordingError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the recording is not available") from exc
    if not await asyncio.to_thread(path.is_file):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the recording file is missing")
    await audit.record(
        db,
        user_id=who.user_id,
        action=LISTENED,
        entity="call",
        entity_id=str(call_id),
        details={"file": call.recording, "range": request.headers.get("range")},
    )
    await db.commit()
    return FileResponse(
        path,
        media_type="audio/wav",
        filename=path.name,
        content_disposition_type="inline",
        headers={"Cache-Control": "private, no-store"},
    )
