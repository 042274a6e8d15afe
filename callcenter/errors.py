"""Answers for database errors that escape a service's own checks."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

log = logging.getLogger(__name__)


async def _integrity_conflict(request: Request, exc: Exception) -> JSONResponse:
    # Services check uniqueness first; this is the race where two requests both passed the
    # check and the database refused the second one. It is a conflict, not a server fault.
    log.info("integrity conflict on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the change conflicts with a record saved at the same moment; try again"},
        status.HTTP_409_CONFLICT,
    )


def _is_unstorable_value(exc: BaseException) -> bool:
    """Whether the driver refused a parameter value itself (too big for its column type),
    as opposed to the database failing (connection lost, lock timeout...)."""
    if isinstance(exc, OverflowError | DataError):
        return True
    if isinstance(exc, DBAPIError):  # asyncpg: DataError ← OverflowError, under `orig`
        cause: BaseException | None = exc.orig
        for _ in range(4):
            if cause is None:
                break
            if isinstance(cause, OverflowError):
                return True
            cause = cause.__cause__
    return False


async def _value_out_of_range(request: Request, exc: Exception) -> JSONResponse:
    # A number the database cannot hold (an id filter or body field past the column's range:
    # SQLite raises OverflowError past 2^63, PostgreSQL refuses past its column type). Such a
    # value names no row and fits no column: the request is wrong, not the server.
    if not _is_unstorable_value(exc):
        raise exc
    log.info("value out of range on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "a value is out of the range the database can store"},
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def install_database_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IntegrityError, _integrity_conflict)
    app.add_exception_handler(DBAPIError, _value_out_of_range)
    app.add_exception_handler(OverflowError, _value_out_of_range)
