"""HTTP endpoints for segments (saved client filters), their mailing-list export, and the
ABC ranking."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from callcenter import audit
from callcenter.auth.deps import OperatorP
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientOut
from callcenter.crm import repository, service
from callcenter.crm.deps import ExportP, SegmentsP, ViewClientsP
from callcenter.crm.schemas import RankRunIn, RankRunOut, SegmentIn, SegmentOut, SegmentPatch
from callcenter.db import utcnow
from callcenter.deps import Db
from callcenter.ids import RowId
from callcenter.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api", tags=["segments"])
Paging = Annotated[PageParams, Depends(page_params)]


@router.get("/segments", response_model=list[SegmentOut])
async def list_segments(db: Db, who: OperatorP) -> list[SegmentOut]:
    return [SegmentOut.model_validate(s) for s in await repository.all_segments(db)]


@router.post("/segments", response_model=SegmentOut, status_code=status.HTTP_201_CREATED)
async def create_segment(db: Db, who: SegmentsP, body: SegmentIn) -> SegmentOut:
    segment = await service.create_segment(db, body, who.user_id)
    view = SegmentOut.model_validate(segment)
    await db.commit()
    return view


@router.get("/segments/{segment_id}", response_model=SegmentOut)
async def get_segment(db: Db, who: OperatorP, segment_id: RowId) -> SegmentOut:
    return SegmentOut.model_validate(await service.get_segment(db, segment_id))


@router.patch("/segments/{segment_id}", response_model=SegmentOut)
async def update_segment(
    db: Db, who: SegmentsP, segment_id: RowId, body: SegmentPatch
) -> SegmentOut:
    segment = await service.update_segment(db, segment_id, body)
    view = SegmentOut.model_validate(segment)
    await db.commit()
    return view


@router.delete("/segments/{segment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_segment(db: Db, who: SegmentsP, segment_id: RowId) -> Response:
    await service.delete_segment(db, segment_id)
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/segments/{segment_id}/clients", response_model=Page[ClientOut])
async def segment_clients(
    db: Db, who: ViewClientsP, segment_id: RowId, paging: Paging
) -> Page[ClientOut]:
    """One page of the segment's members with their phones (a view of personal data)."""
    segment = await service.get_segment(db, segment_id)
    rows, total = await repository.segment_page(
        db, service.filter_of(segment), offset=paging.offset, limit=paging.per_page
    )
    items = await clients.client_views(db, rows)
    await audit.record(
        db,
        user_id=who.user_id,
        action="view",
        entity="segment",
        entity_id=str(segment_id),
        details={"ids": [c.id for c in rows]},
    )
    await db.commit()
    return Page(items=items, total=total, page=paging.page, per_page=paging.per_page)


@router.get(
    "/segments/{segment_id}/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_segment(db: Db, who: ExportP, segment_id: RowId) -> Response:
    """The segment as a CSV mailing list: name, organisation, position, email, E.164 phones.
    Audited with the filter, the count and the ids exported."""
    segment = await service.get_segment(db, segment_id)
    segment_filter = service.filter_of(segment)
    text, ids = await service.mailing_list(db, segment_filter)
    await audit.record(
        db,
        user_id=who.user_id,
        action="export",
        entity="segment",
        entity_id=str(segment_id),
        details={
            "count": len(ids),
            "filter": segment_filter.model_dump(mode="json", exclude_defaults=True),
            "ids": ids,
        },
    )
    await db.commit()
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="segment-{segment_id}-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/ranking/abc", response_model=RankRunOut)
async def recompute_ranking(db: Db, who: SegmentsP, body: RankRunIn) -> RankRunOut:
    """Rank every client A/B/C now (a periodic job does the same)."""
    now = utcnow()
    counts = await service.recompute_abc(db, body.by, now=now, days=body.days)
    await db.commit()
    return RankRunOut(by=body.by, ranked=sum(counts.values()), counts=counts, computed_at=now)
