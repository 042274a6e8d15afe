"""SQL for recording analyses. No decisions here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.recordings.models import RecordingAnalysisRecord


async def analysis_of_call(session: AsyncSession, call_id: int) -> RecordingAnalysisRecord | None:
    query = select(RecordingAnalysisRecord).where(RecordingAnalysisRecord.call_id == call_id)
    return (await session.scalars(query)).one_or_none()


async def upsert_analysis(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert the call's row, or replace every value of the one it has (one statement, so two
    workers analysing the same call at once still leave one row)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(RecordingAnalysisRecord).values(**values)
    changed = {name: statement.excluded[name] for name in values if name != "call_id"}
    await session.execute(
        statement.on_conflict_do_update(index_elements=["call_id"], set_=changed),
        execution_options={"synchronize_session": False},
    )
