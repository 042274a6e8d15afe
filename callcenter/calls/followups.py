"""The jobs an ended call sends: its recording analysed, then the wrong-number rules.

With a recording the analysis goes first and sends the rules after its commit, so the rules
find the stored analysis and can tell whether the caller spoke; without one the rules go at
once. The sweep is the
safety net for a send that was lost (a crash between commit and send, a broker outage): it
finds ended calls whose effects are not recorded and sends their jobs again (idempotent).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls import repository
from callcenter.jobs import Job
from callcenter.jobs import repository as jobs_repository

WRONG_NUMBER_JOB = "calls.apply_wrong_number_rules"
ANALYSIS_JOB = "recordings.analyse"
SWEEP_JOB = "calls.sweep_followups"


def wrong_number_job(call_id: int) -> Job:
    return Job(WRONG_NUMBER_JOB, f"wrong_number:{call_id}", {"call_id": call_id})


def analysis_job(call_id: int) -> Job:
    return Job(ANALYSIS_JOB, f"analysis:{call_id}", {"call_id": call_id})


def sweep_job() -> Job:
    return Job(SWEEP_JOB, "sweep")


def after_call(call_id: int, recording: str | None) -> Job:
    """The first job of an ended call."""
    return analysis_job(call_id) if recording else wrong_number_job(call_id)


async def missing_followups(
    session: AsyncSession,
    *,
    now: datetime,
    settle: timedelta,
    lookback: timedelta,
    limit: int = 500,
) -> list[Job]:
    """The next job of each call that started after `now - lookback`, ended before
    `now - settle` and was never judged by the rules (the last job of the chain).

    A job waiting in dead letters is left for an administrator; resending it every sweep
    would only fail again. A call with a recording and no analysis gets the analysis (which
    sends the rules); if its analysis is dead, the rules alone.
    """
    calls = await repository.ended_calls_lacking_effect(
        session,
        key_prefix="wrong_number:",
        since=now - lookback,
        until=now - settle,
        limit=limit,
    )
    analyses = [analysis_job(call_id) for call_id, recording in calls if recording]
    keys = {job.key for job in analyses} | {wrong_number_job(call_id).key for call_id, _ in calls}
    done = await jobs_repository.keys_done(session, keys)
    dead = await jobs_repository.keys_dead(session, keys)
    pending_analysis = {
        job.args["call_id"] for job in analyses if job.key not in done and job.key not in dead
    }
    missing = []
    for call_id, _ in calls:
        job = analysis_job(call_id) if call_id in pending_analysis else wrong_number_job(call_id)
        if job.key not in dead:
            missing.append(job)
    return missing
