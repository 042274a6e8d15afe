"""Record ids as HTTP path parameters: bounded to what the database columns can hold.

An id outside 1..2^31-1 can name no row (PostgreSQL `integer`); refusing it at the edge
gives 422 instead of a driver error (SQLite raises OverflowError past 2^63, asyncpg past 2^31).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ROW_ID = 2_147_483_647

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
