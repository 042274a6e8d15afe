"""Job effects recorded once, dead letters kept and requeued. Callers commit (except
`commit_effect`, which is a job's own commit)."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter import audit
from callcenter.config import Settings
from callcenter.jobs import Job, enqueue, repository
from callcenter.jobs.models import DeadLetter, JobEffect

log = logging.getLogger(__name__)

ERROR_MAX_CHARS = 4000

TEST_PAUSE_MARK = "JOB-TEST-PAUSE"
"""Logged when the test pause starts, with the pid, so a test knows when to kill the worker."""


class DeadLetterNotFound(LookupError):
    pass


class DeadLetterRequeued(ValueError):
    pass


async def effect_done(session: AsyncSession, job: Job) -> bool:
    """Whether `job`'s effect is already recorded: then running it again must do nothing."""
    return await repository.effect_exists(session, job.key)


async def commit_effect(session: AsyncSession, settings: Settings, job: Job) -> None:
    """A job's last step: record its effect under its key and commit it with the effect.

    A second run of the job (a redelivery, a retry, a concurrent duplicate) either finds the
    key or fails on its unique index and is retried, and then finds it.
    """
    session.add(JobEffect(key=job.key, job=job.name))
    await session.flush()
    await _test_pause(settings, "before_commit", job)
    await session.commit()
    await _test_pause(settings, "after_commit", job)


async def _test_pause(
    settings: Settings, stage: Literal["before_commit", "after_commit"], job: Job
) -> None:
    """Tests only (`jobs_test_pause_s`): hold the job here so a test can kill its worker."""
    if settings.jobs_test_pause_s <= 0 or settings.jobs_test_pause_at != stage:
        return
    log.warning(
        "%s pid=%d job=%s key=%s stage=%s for %.1f s",
        TEST_PAUSE_MARK,
        os.getpid(),
        job.name,
        job.key,
        stage,
        settings.jobs_test_pause_s,
    )
    await asyncio.sleep(settings.jobs_test_pause_s)


async def record_dead_letter(
    session: AsyncSession, job: Job, *, error: str, attempts: int, now: datetime
) -> DeadLetter:
    """Keep a job that failed for good, for an administrator to read and requeue."""
    letter = DeadLetter(
        job=job.name,
        key=job.key,
        args=dict(job.args),
        error=error[-ERROR_MAX_CHARS:],
        attempts=attempts,
        failed_at=now,
    )
    session.add(letter)
    await session.flush()
    return letter


async def requeue(
    session: AsyncSession, dead_letter_id: int, *, user_id: int, now: datetime
) -> DeadLetter:
    """Send a dead job again (after the caller's commit), once; audited."""
    letter = await session.get(DeadLetter, dead_letter_id)
    if letter is None:
        raise DeadLetterNotFound(dead_letter_id)
    if letter.requeued_at is not None:
        raise DeadLetterRequeued(dead_letter_id)
    letter.requeued_at = now
    letter.requeued_by = user_id
    enqueue(session, Job(letter.job, letter.key, dict(letter.args)))
    await audit.record(
        session,
        user_id=user_id,
        action="job.requeued",
        entity="dead_letter",
        entity_id=str(letter.id),
        details={"job": letter.job, "key": letter.key},
        at=now,
    )
    await session.flush()
    return letter
