"""HTTP endpoints for duplicate cards: suggestions (any operator) and merging (supervisors)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict

from callcenter.auth.deps import OperatorP, SupervisorP
from callcenter.clients import merge
from callcenter.deps import Db
from callcenter.ids import RowId

router = APIRouter(prefix="/api", tags=["clients"])


class SuggestionOut(BaseModel):
    id: int
    name: str
    reasons: list[str]
    """"phone", "email", "name" (same organisation) or "org_name"."""


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merged_id: int
    """The card that disappears into the one in the path."""


class MergeOut(BaseModel):
    entity: str
    survivor_id: int
    merged_id: int
    moved: dict[str, int]
    dropped_phones: int


def _not_found(exc: merge.MergeError) -> HTTPException:
    code = (
        status.HTTP_404_NOT_FOUND
        if "does not exist" in str(exc)
        else status.HTTP_422_UNPROCESSABLE_CONTENT
    )
    return HTTPException(code, str(exc))


def _suggestions(items: list[merge.Suggestion]) -> list[SuggestionOut]:
    return [SuggestionOut(id=s.id, name=s.name, reasons=s.reasons) for s in items]


def _result(result: merge.MergeResult) -> MergeOut:
    return MergeOut(
        entity=result.entity,
        survivor_id=result.survivor_id,
        merged_id=result.merged_id,
        moved=result.moved,
        dropped_phones=result.dropped_phones,
    )


@router.get("/clients/{client_id}/merge-suggestions", response_model=list[SuggestionOut])
async def client_merge_suggestions(db: Db, who: OperatorP, client_id: RowId) -> list[SuggestionOut]:
    """Persons that are probably the same as this one."""
    try:
        return _suggestions(await merge.client_suggestions(db, client_id))
    except merge.MergeError as exc:
        raise _not_found(exc) from exc


@router.post("/clients/{client_id}/merge", response_model=MergeOut)
async def merge_client(db: Db, who: SupervisorP, client_id: RowId, body: MergeIn) -> MergeOut:
    """Merge `merged_id` into this person: calls, tasks, phones and the rest move here."""
    try:
        result = await merge.merge_clients(db, client_id, body.merged_id, user_id=who.user_id)
    except merge.MergeError as exc:
        raise _not_found(exc) from exc
    await db.commit()
    return _result(result)


@router.get(
    "/organizations/{organization_id}/merge-suggestions", response_model=list[SuggestionOut]
)
async def organization_merge_suggestions(
    db: Db, who: OperatorP, organization_id: RowId
) -> list[SuggestionOut]:
    try:
        return _suggestions(await merge.organization_suggestions(db, organization_id))
    except merge.MergeError as exc:
        raise _not_found(exc) from exc


@router.post("/organizations/{organization_id}/merge", response_model=MergeOut)
async def merge_organization(
    db: Db, who: SupervisorP, organization_id: RowId, body: MergeIn
) -> MergeOut:
    """Merge organisation `merged_id` (contacts, phones, calls, ...) into this one."""
    try:
        result = await merge.merge_organizations(
            db, organization_id, body.merged_id, user_id=who.user_id
        )
    except merge.MergeError as exc:
        raise _not_found(exc) from exc
    await db.commit()
    return _result(result)
