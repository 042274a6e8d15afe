"""Thin job: due task and meeting reminders sent (each once; see `callcenter.tasks.reminders`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.db import utcnow
from callcenter.jobs import Job
from callcenter.tasks.reminders import send_due_reminders

if TYPE_CHECKING:
    from callcenter.context import AppContext

REMINDERS_JOB = "tasks.send_due_reminders"
REMINDERS_EVERY_S = 30.0


def reminders_job() -> Job:
    return Job(REMINDERS_JOB, "reminders")


async def send_reminders(ctx: AppContext, job: Job) -> None:
    """`tasks.send_due_reminders`: claim, commit, publish (periodic)."""
    async with ctx.sessionmaker() as session:
        await send_due_reminders(session, ctx.streams, utcnow())
