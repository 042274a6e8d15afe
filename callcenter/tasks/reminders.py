"""Due reminders of tasks and meetings, sent once to the assignee's live stream.

`send_due_reminders` is a job edge: it claims the due reminders (marking them sent in the same
UPDATE, so concurrent runs never share one), commits, then publishes `task.reminder`. A crash
between the commit and the publish loses that reminder rather than sending it twice. Workers
schedule it periodically; the embedded single process runs `reminder_loop` beside the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db import utcnow
from callcenter.realtime.streams import Streams, user_topic
from callcenter.tasks import repository

log = logging.getLogger(__name__)
REMINDER_EVENT = "task.reminder"


@dataclass(frozen=True, slots=True)
class Reminder:
    kind: Literal["task", "meeting"]
    id: int
    user_id: int
    title: str
    at: datetime | None
    """The task's due time or the meeting's start."""
    client_id: int | None
    organization_id: int | None

    def payload(self) -> dict[str, Any]:
        return {
            "reminder": {
                "kind": self.kind,
                "id": self.id,
                "title": self.title,
                "at": self.at.isoformat() if self.at else None,
                "client_id": self.client_id,
                "organization_id": self.organization_id,
            }
        }


async def claim_due_reminders(session: AsyncSession, now: datetime) -> list[Reminder]:
    """Mark every due, unsent reminder of an open, assigned follow-up as sent; those marked."""
    if not await repository.reminders_due(session, now):
        return []
    tasks = await repository.claim_task_reminders(session, now)
    meetings = await repository.claim_meeting_reminders(session, now)
    return [
        *(Reminder("task", *row) for row in tasks),
        *(Reminder("meeting", *row) for row in meetings),
    ]


async def send_due_reminders(session: AsyncSession, streams: Streams, now: datetime) -> int:
    """Claim, commit, publish: each reminder goes out at most once. How many were sent."""
    reminders = await claim_due_reminders(session, now)
    await session.commit()
    for reminder in reminders:
        await streams.publish(user_topic(reminder.user_id), REMINDER_EVENT, reminder.payload())
    return len(reminders)


async def reminder_loop(
    sessionmaker: async_sessionmaker[AsyncSession],
    streams: Streams,
    interval_s: float,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Send due reminders every `interval_s` until cancelled; a failed round is logged and
    the next one tries again."""
    while True:
        try:
            async with sessionmaker() as session:
                await send_due_reminders(session, streams, clock())
        except Exception:
            log.exception("sending due reminders failed")
        await asyncio.sleep(interval_s)


async def start_reminders(
    sessionmaker: async_sessionmaker[AsyncSession], streams: Streams, interval_s: float
) -> Callable[[], Awaitable[None]]:
    """Run `reminder_loop` in the background; the coroutine function that stops it."""
    task = asyncio.create_task(reminder_loop(sessionmaker, streams, interval_s))

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop
