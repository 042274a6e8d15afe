"""Thin jobs of ended calls: the wrong-number rules, and the sweep that resends lost jobs.

Ids in, the service called, the effect committed with its key, browsers told after commit.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from callcenter import jobs
from callcenter.calls import auto_close, followups
from callcenter.calls.service import call_summary
from callcenter.db import utcnow
from callcenter.jobs.service import commit_effect, effect_done
from callcenter.realtime.streams import SUPERVISOR_CALLS_TOPIC, user_topic
from callcenter.recordings.service import caller_speech_seconds, stored_analysis

if TYPE_CHECKING:
    from callcenter.context import AppContext
    from callcenter.jobs import Job


async def apply_wrong_number_rules(ctx: AppContext, job: Job) -> None:
    """`calls.apply_wrong_number_rules(call_id)`, once per call, with the recording's analysis
    when it has been stored (the analysis job sends this one after its commit)."""
    call_id = job.int_arg("call_id")
    async with ctx.sessionmaker() as session:
        if await effect_done(session, job):
            return
        analysis = await stored_analysis(session, call_id)
        result = await auto_close.apply_wrong_number_rules(
            session,
            auto_close.rule_config(ctx.settings, ctx.phones),
            call_id,
            caller_speech_s=caller_speech_seconds(analysis) if analysis else None,
            known_lookback=timedelta(days=ctx.settings.wrong_number_known_lookback_days),
            now=utcnow(),
        )
        summary = call_summary(result.call) if result.closed and result.call else None
        agent = result.call.agent_user_id if result.call else None
        await commit_effect(session, ctx.settings, job)
        # Told at once after the commit, before anything else may yield to a later change.
        if summary is not None:
            if agent is not None:
                await ctx.streams.publish(user_topic(agent), "call.updated", {"call": summary})
            await ctx.streams.publish(SUPERVISOR_CALLS_TOPIC, "call.updated", {"call": summary})


async def sweep_followups(ctx: AppContext, job: Job) -> None:
    """`calls.sweep_followups`: resend the jobs of ended calls that never ran (periodic)."""
    settings = ctx.settings
    async with ctx.sessionmaker() as session:
        missing = await followups.missing_followups(
            session,
            now=utcnow(),
            settle=timedelta(seconds=settings.jobs_sweep_after_s),
            lookback=timedelta(hours=settings.jobs_sweep_lookback_h),
        )
        for found in missing:
            jobs.enqueue(session, found)
        await session.commit()
