"""Answers for database errors that escape a service's own checks."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

log = logging.getLogger(__name__)


async def _integrity_conflict(request: Request, exc: Exception) -> JSONResponse:
    # Services check uniqueness first; this is the race where two requests both passed the
    # check and the database refused the second one. It is a conflict, not a server fault.
    log.info("integrity conflict on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the change conflicts with a record saved at the same moment; try again"},
        status.HTTP_409_CONFLICT,
    )


def install_database_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IntegrityError, _integrity_conflict)
