"""Client cards made on the fly for unknown callers (`auto_create_clients`), taken back when
the call turns out to be a wrong number. Callers commit.

The card is made at ring time (`calls.service`), so the operator's screen pop shows it. A
wrong number is not a client, so when the call is closed as one, by the rules or by the
operator, the card goes too, unless it has become a real card meanwhile.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter import audit
from callcenter.calls import repository
from callcenter.calls.models import Call
from callcenter.clients.models import Client


def _untouched(client: Client, row: Call) -> bool:
    """Nothing typed into the card since the call made it from the caller ID."""
    made_from = {row.caller_name.strip(), row.caller_e164 or "", row.caller_num.strip()}
    return (
        client.name in made_from - {""}
        and client.organization_id is None
        and not client.position
        and not client.email
        and not client.notes.strip()
    )


async def discard_auto_created_client(
    session: AsyncSession, row: Call, *, user_id: int | None, now: datetime
) -> dict[str, object] | None:
    """Delete the card this call made on the fly, if nobody has used it; what happened.

    Kept when anything else refers to it (another call, a task, a note, a tag, a second
    phone...) or someone edited it: then it is a real card, whatever this call was.
    """
    if not row.client_auto_created or row.client_id is None:
        return None
    client = await session.get(Client, row.client_id)
    if client is None:
        row.client_auto_created = False
        return None
    used = await repository.rows_referring_to_client(session, client.id, ignore_call_id=row.id)
    phones = await repository.phone_count_of_client(session, client.id)
    edited = not _untouched(client, row)
    if used or phones > 1 or edited:
        return {"id": client.id, "kept": True, "used_by": used, "phones": phones, "edited": edited}
    client_id = client.id
    row.client_id = None
    row.client_auto_created = False
    await session.delete(client)
    await session.flush()
    await audit.record(
        session,
        user_id=user_id,
        action="client.auto_discarded",
        entity="client",
        entity_id=str(client_id),
        details={"call_id": row.id, "name": client.name},
        at=now,
    )
    return {"id": client_id, "kept": False}
