"""The audit log: who did or saw what, when. Callers add entries; the edge commits them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import AuditEntry
from callcenter.db import utcnow

_MAX_KEY = 64
"""Width of the action, entity and entity_id columns."""


async def record(
    session: AsyncSession,
    *,
    user_id: int | None,
    action: str,
    entity: str,
    entity_id: str,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Add one audit entry to the session's transaction (never holds secrets such as passwords)."""
    session.add(
        AuditEntry(
            at=at or utcnow(),
            user_id=user_id,
            action=action[:_MAX_KEY],
            entity=entity[:_MAX_KEY],
            entity_id=str(entity_id)[:_MAX_KEY],
            details=dict(details or {}),
        )
    )
