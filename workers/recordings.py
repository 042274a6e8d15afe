"""Thin job: a call's recording analysed once, then the wrong-number rules sent after commit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter import jobs
from callcenter.calls.followups import wrong_number_job
from callcenter.jobs.service import commit_effect, effect_done
from callcenter.recordings.service import analyse_call_recording

if TYPE_CHECKING:
    from callcenter.context import AppContext
    from callcenter.jobs import Job


async def analyse_recording(ctx: AppContext, job: Job) -> None:
    """`recordings.analyse(call_id)`: store the analysis (a bad file is stored as such), then
    let the wrong-number rules hear it."""
    call_id = job.int_arg("call_id")
    async with ctx.sessionmaker() as session:
        if await effect_done(session, job):
            return
        await analyse_call_recording(session, ctx.settings, call_id)
        jobs.enqueue(session, wrong_number_job(call_id))
        await commit_effect(session, ctx.settings, job)
