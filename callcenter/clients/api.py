"""HTTP endpoints for organisations, clients (contact persons), phones and phone lookup."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status
from fastapi.responses import JSONResponse

from callcenter import audit
from callcenter.auth.deps import OperatorP, SupervisorP
from callcenter.clients import repository, service
from callcenter.clients.schemas import (
    ClientIn,
    ClientOut,
    ClientPatch,
    LookupOut,
    OrganizationIn,
    OrganizationOut,
    OrganizationPatch,
    PhoneIn,
    PhoneOut,
)
from callcenter.crm.deps import CreateClientsP, ViewClientsP, policy_of
from callcenter.deps import Ctx, Db
from callcenter.ids import RowId
from callcenter.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api", tags=["clients"])
Paging = Annotated[PageParams, Depends(page_params)]


def install_error_handlers(app: FastAPI) -> None:
    """Domain errors of clients and phones become 404, 422 and 409 answers, for every route."""

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"not found: {exc}"}, status.HTTP_404_NOT_FOUND)

    async def phone_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, service.PhoneInvalid)
        rejected = exc.rejected
        detail = {
            "phone": rejected.raw,
            "reason": rejected.reason.value,
            "message": rejected.detail,
        }
        return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)

    async def phone_taken(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, service.PhoneTaken)
        detail = {
            "phone": exc.e164,
            "message": "the number belongs to another card; send shared=true to share it",
            "owners": [o.model_dump() for o in exc.owners],
        }
        return JSONResponse({"detail": detail}, status.HTTP_409_CONFLICT)

    app.add_exception_handler(service.NotFound, not_found)
    app.add_exception_handler(service.PhoneInvalid, phone_invalid)
    app.add_exception_handler(service.PhoneTaken, phone_taken)


@router.get("/lookup", response_model=LookupOut)
async def lookup_phone(
    db: Db, ctx: Ctx, who: ViewClientsP, phone: Annotated[str, Query(min_length=1, max_length=64)]
) -> LookupOut:
    """Who owns a number written in any format (audited when it names persons)."""
    found = await service.lookup(db, ctx.phones, phone)
    person_ids = sorted({o.client_id for o in found.owners if o.client_id is not None})
    if person_ids:
        await audit.record(
            db,
            user_id=who.user_id,
            action="view",
            entity="client",
            entity_id="lookup",
            details={"ids": person_ids},
        )
        await db.commit()
    return LookupOut(
        query=phone,
        e164=found.number.e164,
        extension=found.number.extension,
        owners=found.owners,
        ambiguous=found.ambiguous,
    )


@router.get("/clients", response_model=Page[ClientOut])
async def list_clients(
    db: Db,
    who: ViewClientsP,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=100)] = None,
    organization_id: int | None = None,
) -> Page[ClientOut]:
    rows, total = await repository.search_clients(
        db, q=q, organization_id=organization_id, offset=paging.offset, limit=paging.per_page
    )
    items = await service.client_views(db, rows)
    if rows:  # a list with phones is a view of each card on it: one entry for the request
        await audit.record(
            db,
            user_id=who.user_id,
            action="view",
            entity="client",
            entity_id="list",
            details={"ids": [c.id for c in rows]},
        )
        await db.commit()
    return Page(items=items, total=total, page=paging.page, per_page=paging.per_page)


@router.post("/clients", response_model=ClientOut, status_code=status.HTTP_201_CREATED)
async def create_client(db: Db, ctx: Ctx, who: CreateClientsP, body: ClientIn) -> ClientOut:
    client = await service.create_client(db, ctx.phones, body)
    await audit.record(
        db,
        user_id=who.user_id,
        action="create",
        entity="client",
        entity_id=str(client.id),
        details={},
    )
    view = (await service.client_views(db, [client]))[0]
    await db.commit()
    return view


@router.get("/clients/{client_id}", response_model=ClientOut)
async def get_client(db: Db, who: ViewClientsP, client_id: RowId) -> ClientOut:
    client = await service.get_client(db, client_id)
    view = (await service.client_views(db, [client]))[0]
    await audit.record(
        db,
        user_id=who.user_id,
        action="view",
        entity="client",
        entity_id=str(client_id),
        details={},
    )
    await db.commit()
    return view


@router.patch("/clients/{client_id}", response_model=ClientOut)
async def update_client(
    db: Db, ctx: Ctx, who: OperatorP, client_id: RowId, body: ClientPatch
) -> ClientOut:
    """Change a card; personal-data fields only for roles allowed to (403 naming them)."""
    policy_of(ctx.settings).ensure_may_change(who.role, body.model_dump(exclude_unset=True))
    client = await service.update_client(db, client_id, body)
    await audit.record(
        db,
        user_id=who.user_id,
        action="update",
        entity="client",
        entity_id=str(client_id),
        details={"fields": sorted(body.model_dump(exclude_unset=True))},
    )
    view = (await service.client_views(db, [client]))[0]
    await db.commit()
    return view


@router.delete("/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_client(db: Db, who: SupervisorP, client_id: RowId) -> Response:
    await service.delete_client(db, client_id)
    await audit.record(
        db,
        user_id=who.user_id,
        action="delete",
        entity="client",
        entity_id=str(client_id),
        details={},
    )
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/clients/{client_id}/phones", response_model=PhoneOut, status_code=status.HTTP_201_CREATED
)
async def add_client_phone(
    db: Db, ctx: Ctx, who: OperatorP, client_id: RowId, body: PhoneIn
) -> PhoneOut:
    policy_of(ctx.settings).ensure_may_change(who.role, ["phones"])
    await service.get_client(db, client_id)
    phone = await service.add_phone(db, ctx.phones, body, client_id=client_id)
    view = PhoneOut.model_validate(phone)
    await audit.record(
        db,
        user_id=who.user_id,
        action="update",
        entity="client",
        entity_id=str(client_id),
        details={"fields": ["phones"], "added_phone": phone.id},
    )
    await db.commit()
    return view


@router.delete("/phones/{phone_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_phone(db: Db, ctx: Ctx, who: OperatorP, phone_id: RowId) -> Response:
    """Remove a number; a person's number is personal data (403 for roles not allowed)."""
    phone = await service.get_phone(db, phone_id)
    if phone.client_id is not None:
        policy_of(ctx.settings).ensure_may_change(who.role, ["phones"])
    details = {"client_id": phone.client_id, "organization_id": phone.organization_id}
    await service.delete_phone(db, phone_id)
    await audit.record(
        db,
        user_id=who.user_id,
        action="delete",
        entity="phone",
        entity_id=str(phone_id),
        details=details,
    )
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/organizations", response_model=Page[OrganizationOut])
async def list_organizations(
    db: Db, who: OperatorP, paging: Paging, q: Annotated[str | None, Query(max_length=100)] = None
) -> Page[OrganizationOut]:
    rows, total = await repository.search_organizations(
        db, q=q, offset=paging.offset, limit=paging.per_page
    )
    items = [OrganizationOut.model_validate(o) for o in rows]
    return Page(items=items, total=total, page=paging.page, per_page=paging.per_page)


@router.post("/organizations", response_model=OrganizationOut, status_code=status.HTTP_201_CREATED)
async def create_organization(
    db: Db, ctx: Ctx, who: OperatorP, body: OrganizationIn
) -> OrganizationOut:
    org = await service.create_organization(db, ctx.phones, body)
    view = await service.organization_view(db, org)
    await audit.record(
        db,
        user_id=who.user_id,
        action="create",
        entity="organization",
        entity_id=str(org.id),
        details={},
    )
    await db.commit()
    return view


@router.get("/organizations/{organization_id}", response_model=OrganizationOut)
async def get_organization(db: Db, who: ViewClientsP, organization_id: RowId) -> OrganizationOut:
    """An organisation with its phones and contact persons (a view of each person's card)."""
    org = await service.get_organization(db, organization_id)
    view = await service.organization_view(db, org)
    await audit.record(
        db,
        user_id=who.user_id,
        action="view",
        entity="organization",
        entity_id=str(organization_id),
        details={"ids": [c.id for c in view.contacts]},
    )
    await db.commit()
    return view


@router.patch("/organizations/{organization_id}", response_model=OrganizationOut)
async def update_organization(
    db: Db, who: OperatorP, organization_id: RowId, body: OrganizationPatch
) -> OrganizationOut:
    org = await service.update_organization(db, organization_id, body)
    view = await service.organization_view(db, org)
    await audit.record(
        db,
        user_id=who.user_id,
        action="update",
        entity="organization",
        entity_id=str(organization_id),
        details={"fields": sorted(body.model_dump(exclude_unset=True))},
    )
    await db.commit()
    return view


@router.post(
    "/organizations/{organization_id}/phones",
    response_model=PhoneOut,
    status_code=status.HTTP_201_CREATED,
)
async def add_organization_phone(
    db: Db, ctx: Ctx, who: OperatorP, organization_id: RowId, body: PhoneIn
) -> PhoneOut:
    await service.get_organization(db, organization_id)
    phone = await service.add_phone(db, ctx.phones, body, organization_id=organization_id)
    view = PhoneOut.model_validate(phone)
    await db.commit()
    return view
