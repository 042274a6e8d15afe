"""The access policy of this deployment as FastAPI dependencies, and its 403 answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Annotated

from fastapi import Depends, FastAPI, Request, status
from fastapi.responses import JSONResponse

from callcenter.auth.deps import OperatorP, Principal
from callcenter.auth.models import Role
from callcenter.config import Settings
from callcenter.crm.policy import (
    AccessPolicy,
    PersonalDataForbidden,
    Right,
    RightMissing,
    access_policy,
)
from callcenter.deps import Ctx


def policy_of(settings: Settings) -> AccessPolicy:
    """The rights table that `settings` make."""
    return access_policy(
        operators_edit_personal_data=settings.operators_edit_personal_data,
        export_min_role=Role(settings.export_min_role),
    )


@cache
def require_right(right: Right) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting signed-in users whose role has `right` (403 otherwise)."""

    async def dependency(ctx: Ctx, who: OperatorP) -> Principal:
        policy_of(ctx.settings).ensure(who.role, right)
        return who

    dependency.__name__ = f"require_{right.value}"
    dependency.__qualname__ = dependency.__name__
    return dependency


ViewClientsP = Annotated[Principal, Depends(require_right(Right.VIEW_CLIENTS))]
AddEventsP = Annotated[Principal, Depends(require_right(Right.ADD_EVENTS))]
CreateClientsP = Annotated[Principal, Depends(require_right(Right.CREATE_CLIENTS))]
SegmentsP = Annotated[Principal, Depends(require_right(Right.MANAGE_SEGMENTS))]
ExportP = Annotated[Principal, Depends(require_right(Right.EXPORT))]
AuditReaderP = Annotated[Principal, Depends(require_right(Right.READ_AUDIT))]


def install_error_handlers(app: FastAPI) -> None:
    """Missing rights become 403 answers that say which right or which fields."""

    async def right_missing(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RightMissing)
        detail = {
            "message": f"your role ({exc.role.value}) may not do this: {exc.right.value}",
            "right": exc.right.value,
        }
        return JSONResponse({"detail": detail}, status.HTTP_403_FORBIDDEN)

    async def personal_data(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PersonalDataForbidden)
        detail = {
            "message": (
                f"your role ({exc.role.value}) may only add events to a client's card, "
                f"not change its personal data: {', '.join(exc.fields)}"
            ),
            "right": Right.EDIT_PERSONAL_DATA.value,
            "fields": exc.fields,
        }
        return JSONResponse({"detail": detail}, status.HTTP_403_FORBIDDEN)

    app.add_exception_handler(RightMissing, right_missing)
    app.add_exception_handler(PersonalDataForbidden, personal_data)
