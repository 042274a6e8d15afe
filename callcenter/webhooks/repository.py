"""SQL of the webhook: which sender event ids a PBX has already delivered."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import PbxEvent


async def known_event_ids(session: AsyncSession, pbx: str, event_ids: Collection[str]) -> set[str]:
    """The ids among `event_ids` already stored for `pbx`."""
    if not event_ids:
        return set()
    rows = await session.scalars(
        select(PbxEvent.event_id).where(PbxEvent.pbx == pbx, PbxEvent.event_id.in_(event_ids))
    )
    return set(rows.all())
