"""SQL for job effects and dead letters."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.jobs.models import DeadLetter, JobEffect


async def effect_exists(session: AsyncSession, key: str) -> bool:
    found = await session.scalar(select(JobEffect.id).where(JobEffect.key == key))
    return found is not None


async def keys_done(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of `keys` have their effect recorded."""
    if not keys:
        return set()
    rows = await session.scalars(select(JobEffect.key).where(JobEffect.key.in_(list(keys))))
    return set(rows)


async def keys_dead(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of `keys` wait in dead letters (not requeued): the sweep leaves them alone."""
    if not keys:
        return set()
    rows = await session.scalars(
        select(DeadLetter.key).where(
            DeadLetter.key.in_(list(keys)), DeadLetter.requeued_at.is_(None)
        )
    )
    return set(rows)


async def page_of_dead_letters(
    session: AsyncSession, *, open_only: bool, offset: int, limit: int
) -> tuple[Sequence[DeadLetter], int]:
    query = select(DeadLetter)
    if open_only:
        query = query.where(DeadLetter.requeued_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(DeadLetter.failed_at.desc(), DeadLetter.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return rows.all(), total
