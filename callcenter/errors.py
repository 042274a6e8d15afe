"""Answers for database errors that escape a service's own checks."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError

log = logging.getLogger(__name__)


async def _integrity_conflict(request: Request, exc: Exception) -> JSONResponse:
    # Services check uniqueness first; this is the race where two requests both passed the
    # check and the database refused the second one. It is a conflict, not a server fault.
    log.info("integrity conflict on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the change conflicts with a record saved at the same moment; try again"},
        status.HTTP_409_CONFLICT,
    )


async def _value_out_of_range(request: Request, exc: Exception) -> JSONResponse:
    # A number the database cannot hold (an id filter or body field past the column's range:
    # SQLite raises OverflowError past 2^63, PostgreSQL a DataError past its column type).
    # Such a value names no row and fits no column: the request is wrong, not the server.
    log.info("value out of range on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "a value is out of the range the database can store"},
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def install_database_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IntegrityError, _integrity_conflict)
    app.add_exception_handler(DataError, _value_out_of_range)
    app.add_exception_handler(OverflowError, _value_out_of_range)
