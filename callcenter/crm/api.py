"""HTTP endpoints of the client card: timeline, tags, notes, rank, rights, and the person on a
company call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from callcenter import audit
from callcenter.auth.deps import OperatorP
from callcenter.auth.models import Role
from callcenter.calls import service as calls
from callcenter.calls.schemas import CallOut
from callcenter.crm import repository, service
from callcenter.crm.deps import AddEventsP, ViewClientsP, policy_of
from callcenter.crm.models import Note
from callcenter.crm.schemas import (
    CallClientIn,
    ClientRankOut,
    NoteEntry,
    NoteIn,
    Person,
    RightsOut,
    TagOut,
    TagsIn,
    TimelinePage,
)
from callcenter.crm.timeline import BadCursor
from callcenter.db import utcnow
from callcenter.deps import Ctx, Db
from callcenter.ids import RowId
from callcenter.realtime.streams import SUPERVISOR_CALLS_TOPIC, user_topic

router = APIRouter(prefix="/api", tags=["client card"])

Before = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/crm/rights", response_model=RightsOut)
async def my_rights(ctx: Ctx, who: OperatorP) -> RightsOut:
    """What the caller's role may do with client data under this deployment's settings."""
    rights = policy_of(ctx.settings).rights[who.role]
    return RightsOut(role=who.role.value, rights=sorted(rights))


async def _page(db: Db, scope: repository.Scope, before: str | None, limit: int) -> TimelinePage:
    try:
        return await service.timeline(db, scope, before=before, limit=limit, now=utcnow())
    except BadCursor as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad 'before' cursor") from exc


@router.get("/clients/{client_id}/timeline", response_model=TimelinePage)
async def client_timeline(
    db: Db, who: ViewClientsP, client_id: RowId, before: Before = None, limit: Limit = 20
) -> TimelinePage:
    """Every interaction with a person, newest first: calls, tasks, meetings, notes, and the
    card's own records (created, changed, imported, merged)."""
    page = await _page(db, await service.client_scope(db, client_id), before, limit)
    await audit.record(
        db,
        user_id=who.user_id,
        action="view",
        entity="client",
        entity_id=str(client_id),
        details={"part": "timeline"},
    )
    await db.commit()
    return page


@router.get("/organizations/{organization_id}/timeline", response_model=TimelinePage)
async def organization_timeline(
    db: Db, who: ViewClientsP, organization_id: RowId, before: Before = None, limit: Limit = 20
) -> TimelinePage:
    """An organisation's interactions and those of all its contact persons, newest first."""
    scope = await service.organization_scope(db, organization_id)
    page = await _page(db, scope, before, limit)
    await audit.record(
        db,
        user_id=who.user_id,
        action="view",
        entity="organization",
        entity_id=str(organization_id),
        details={
            "part": "timeline",
            "ids": sorted({e.client_id for e in page.items if e.client_id}),
        },
    )
    await db.commit()
    return page


@router.get("/clients/{client_id}/ranks", response_model=list[ClientRankOut])
async def client_ranks(db: Db, who: ViewClientsP, client_id: RowId) -> list[ClientRankOut]:
    """The client's ABC class by each measure it has been ranked by."""
    return [ClientRankOut.model_validate(r) for r in await service.ranks_of(db, client_id)]


# --- tags ------------------------------------------------------------------------------------


@router.get("/tags", response_model=list[TagOut])
async def list_tags(db: Db, who: OperatorP) -> list[TagOut]:
    return [TagOut.model_validate(t) for t in await repository.all_tags(db)]


@router.get("/clients/{client_id}/tags", response_model=list[TagOut])
async def client_tags(db: Db, who: ViewClientsP, client_id: RowId) -> list[TagOut]:
    await service.client_scope(db, client_id)
    return [TagOut.model_validate(t) for t in await repository.tags_of_client(db, client_id)]


@router.post("/clients/{client_id}/tags", response_model=list[TagOut])
async def tag_client(db: Db, who: AddEventsP, client_id: RowId, body: TagsIn) -> list[TagOut]:
    """Put tags on the card (new names become tags); all the card's tags afterwards."""
    tags = await service.tag_client(db, client_id, body.names)
    views = [TagOut.model_validate(t) for t in tags]
    await db.commit()
    return views


@router.delete("/clients/{client_id}/tags/{tag_id}", status_code=status.HTTP_204_NO_CONTENT)
async def untag_client(db: Db, who: AddEventsP, client_id: RowId, tag_id: RowId) -> Response:
    await service.untag_client(db, client_id, tag_id)
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/organizations/{organization_id}/tags", response_model=list[TagOut])
async def organization_tags(db: Db, who: ViewClientsP, organization_id: RowId) -> list[TagOut]:
    await service.organization_scope(db, organization_id)
    tags = await repository.tags_of_organization(db, organization_id)
    return [TagOut.model_validate(t) for t in tags]


@router.post("/organizations/{organization_id}/tags", response_model=list[TagOut])
async def tag_organization(
    db: Db, who: AddEventsP, organization_id: RowId, body: TagsIn
) -> list[TagOut]:
    tags = await service.tag_organization(db, organization_id, body.names)
    views = [TagOut.model_validate(t) for t in tags]
    await db.commit()
    return views


@router.delete(
    "/organizations/{organization_id}/tags/{tag_id}", status_code=status.HTTP_204_NO_CONTENT
)
async def untag_organization(
    db: Db, who: AddEventsP, organization_id: RowId, tag_id: RowId
) -> Response:
    await service.untag_organization(db, organization_id, tag_id)
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- notes -----------------------------------------------------------------------------------


def _note_view(note: Note, who: OperatorP) -> NoteEntry:
    return NoteEntry(
        id=note.id,
        at=note.created_at,
        client_id=note.client_id,
        organization_id=note.organization_id,
        text=note.text,
        author=Person(id=who.user_id, name=who.name),
        call_id=note.call_id,
    )


@router.post(
    "/clients/{client_id}/notes", response_model=NoteEntry, status_code=status.HTTP_201_CREATED
)
async def add_client_note(db: Db, who: AddEventsP, client_id: RowId, body: NoteIn) -> NoteEntry:
    """Add a note to a person's history (notes are never edited)."""
    note = await service.add_note(
        db, author_id=who.user_id, text=body.text, client_id=client_id, call_id=body.call_id
    )
    view = _note_view(note, who)
    await db.commit()
    return view


@router.post(
    "/organizations/{organization_id}/notes",
    response_model=NoteEntry,
    status_code=status.HTTP_201_CREATED,
)
async def add_organization_note(
    db: Db, who: AddEventsP, organization_id: RowId, body: NoteIn
) -> NoteEntry:
    note = await service.add_note(
        db,
        author_id=who.user_id,
        text=body.text,
        organization_id=organization_id,
        call_id=body.call_id,
    )
    view = _note_view(note, who)
    await db.commit()
    return view


# --- the person on a company call ------------------------------------------------------------


@router.put("/calls/{call_id}/client", response_model=CallOut)
async def pick_call_client(
    db: Db, ctx: Ctx, who: AddEventsP, call_id: RowId, body: CallClientIn
) -> CallOut:
    """Say which person is on a call from a company number (the call's agent, or a
    supervisor); `client_id: null` takes the pick back."""
    try:
        row = await service.pick_call_client(
            db,
            call_id=call_id,
            user_id=who.user_id,
            may_edit_any=who.has_role(Role.SUPERVISOR),
            client_id=body.client_id,
        )
    except calls.CallNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "call not found") from exc
    except calls.NotYourCall as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your call") from exc
    await audit.record(
        db,
        user_id=who.user_id,
        action="call.client_picked",
        entity="call",
        entity_id=str(call_id),
        details={"client_id": body.client_id},
    )
    view = CallOut.model_validate(row)
    summary = calls.call_summary(row)
    await db.commit()
    await ctx.streams.publish(user_topic(who.user_id), "call.updated", {"call": summary})
    await ctx.streams.publish(SUPERVISOR_CALLS_TOPIC, "call.updated", {"call": summary})
    return view
