"""The jobs seam: sent only after commit, retried with backoff, dead letters kept and requeued."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from callcenter import jobs
from callcenter.auth.models import AuditEntry, Role
from callcenter.calls.followups import sweep_job, wrong_number_job
from callcenter.calls.models import Call, Outcome
from callcenter.calls.service import ingest
from callcenter.context import AppContext
from callcenter.db import make_sessionmaker, utcnow
from callcenter.jobs import Job, RetryPolicy
from callcenter.jobs.models import DeadLetter
from callcenter.jobs.runner import InProcessJobs, JobSpec
from callcenter.jobs.service import record_dead_letter
from callcenter.realtime.streams import user_topic
from callcenter.tasks.models import Task
from tests.factories import login_as, make_user
from tests.integration.test_wrong_numbers import call_events
from workers.reminders import reminders_job


class Recorder:
    """A job queue that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[Job] = []

    def start(self, ctx: AppContext) -> None:
        pass

    def send(self, sent: Sequence[Job]) -> None:
        self.sent.extend(sent)

    async def drain(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_given_jobs_in_a_transaction_then_sent_once_after_commit_and_never_on_rollback(
    ctx: AppContext,
) -> None:
    recorder = Recorder()
    sessions = make_sessionmaker(ctx.engine)
    jobs.install_outbox(sessions, recorder)

    async with sessions() as session:
        jobs.after_commit(session, "x.y", "k:1", n=1)
        await session.rollback()
    async with sessions() as session:
        jobs.after_commit(session, "x.y", "k:2", n=2)  # closed without a commit
    assert recorder.sent == []

    async with sessions() as session:
        jobs.after_commit(session, "x.y", "k:3", n=3)
        jobs.after_commit(session, "x.y", "k:3", n=3)
        assert recorder.sent == []  # not before the commit
        await session.commit()
        await session.commit()  # a second commit sends nothing again
    assert recorder.sent == [Job("x.y", "k:3", {"n": 3})]


def _flaky(failures: int, error: Callable[[str], Exception]) -> tuple[JobSpec, list[int]]:
    calls: list[int] = []

    async def handler(ctx: AppContext, job: Job) -> None:
        calls.append(1)
        if len(calls) <= failures:
            raise error("refused")

    return JobSpec("test.flaky", handler), calls


def _queue(ctx: AppContext, spec: JobSpec, attempts: int) -> InProcessJobs:
    queue = InProcessJobs(
        {spec.name: spec},
        RetryPolicy(max_attempts=attempts, backoff_s=0.001, backoff_max_s=0.01),
        rng=random.Random(1),
    )
    queue.start(ctx)
    return queue


async def _letters(ctx: AppContext) -> list[DeadLetter]:
    async with ctx.sessionmaker() as session:
        return list(await session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


async def test_given_transient_failures_below_the_limit_then_the_job_retries_and_succeeds(
    ctx: AppContext,
) -> None:
    spec, calls = _flaky(2, ConnectionRefusedError)
    queue = _queue(ctx, spec, attempts=3)
    queue.send([Job(spec.name, "flaky:1")])
    await queue.drain()
    assert len(calls) == 3
    assert queue.completed == 1
    assert await _letters(ctx) == []


@pytest.mark.parametrize(
    ("error", "attempts"),
    [(OSError, 4), (TimeoutError, 4), (ValueError, 1)],
)
async def test_given_a_job_failing_every_attempt_then_it_becomes_a_dead_letter(
    ctx: AppContext, error: type[Exception], attempts: int
) -> None:
    spec, calls = _flaky(100, error)
    queue = _queue(ctx, spec, attempts=4)
    queue.send([Job(spec.name, "flaky:2", {"call_id": 7})])
    await queue.drain()
    assert len(calls) == attempts  # transient errors are retried, a bug is not
    (letter,) = await _letters(ctx)
    assert (letter.job, letter.key, letter.args) == ("test.flaky", "flaky:2", {"call_id": 7})
    assert letter.attempts == attempts
    assert "refused" in letter.error
    assert letter.requeued_at is None


async def test_given_a_database_error_then_it_counts_as_transient(ctx: AppContext) -> None:
    spec, calls = _flaky(1, lambda message: OperationalError("SELECT 1", {}, Exception(message)))
    queue = _queue(ctx, spec, attempts=2)
    queue.send([Job(spec.name, "flaky:3")])
    await queue.drain()
    assert len(calls) == 2
    assert await _letters(ctx) == []


async def test_given_dead_letter_when_admin_requeues_then_the_job_runs_once_and_is_audited(
    ctx: AppContext, client: AsyncClient
) -> None:
    ten_s_ago = datetime.now(UTC) - timedelta(seconds=10)
    lost = make_sessionmaker(ctx.engine)
    async with lost() as session:
        await make_user(session, login="root", role=Role.ADMIN)
        await make_user(session, login="boss", role=Role.SUPERVISOR)
        await ingest(
            session,
            ctx.ingest_policy(),
            call_events("c1", "+79161234567", talk_s=1.0, at=ten_s_ago),
        )
        await session.commit()
        call = (await session.scalars(select(Call))).one()
        letter = await record_dead_letter(
            session, wrong_number_job(call.id), error="OSError: gone", attempts=5, now=utcnow()
        )
        await session.commit()

    # The sweep leaves a dead job to the administrator.
    ctx.settings = ctx.settings.model_copy(update={"jobs_sweep_after_s": 0})
    ctx.jobs.send([sweep_job()])
    await ctx.jobs.drain()
    async with ctx.sessionmaker() as session:
        assert (await session.get(Call, call.id)).outcome is None  # type: ignore[union-attr]

    csrf = await login_as(client, "boss")
    assert (await client.get("/api/admin/dead-letters")).status_code == 403
    csrf = await login_as(client, "root")
    listed = (await client.get("/api/admin/dead-letters")).json()
    assert listed["total"] == 1
    assert listed["items"][0]["key"] == f"wrong_number:{call.id}"
    assert listed["items"][0]["error"] == "OSError: gone"

    headers = {"X-CSRF-Token": csrf}
    requeued = await client.post(f"/api/admin/dead-letters/{letter.id}/requeue", headers=headers)
    assert requeued.status_code == 200, requeued.text
    await ctx.jobs.drain()
    again = await client.post(f"/api/admin/dead-letters/{letter.id}/requeue", headers=headers)
    assert again.status_code == 409
    missing = await client.post("/api/admin/dead-letters/999999/requeue", headers=headers)
    assert missing.status_code == 404

    async with ctx.sessionmaker() as session:
        assert (await session.get(Call, call.id)).outcome is Outcome.WRONG_NUMBER  # type: ignore[union-attr]
        audit = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "job.requeued"))
        )
    assert [a.entity_id for a in audit] == [str(letter.id)]
    assert (await client.get("/api/admin/dead-letters")).json()["total"] == 0
    every: dict[str, Any] = (await client.get("/api/admin/dead-letters?open_only=false")).json()
    assert every["items"][0]["requeued_at"] is not None


async def test_given_a_due_reminder_when_beat_sends_the_reminders_job_then_it_goes_out_once(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        anna = await make_user(session, login="anna")
        session.add(
            Task(
                title="Перезвонить", assignee_id=anna.id, remind_at=utcnow() - timedelta(minutes=1)
            )
        )
        await session.commit()
    stream = await ctx.streams.subscribe([user_topic(anna.id)], {})
    try:
        ctx.jobs.send([reminders_job()])
        await ctx.jobs.drain()
        ctx.jobs.send([reminders_job()])
        await ctx.jobs.drain()
        event = json.loads((await anext(aiter(stream))).data)
        assert event["type"] == "task.reminder"
        assert event["reminder"]["title"] == "Перезвонить"
        assert await ctx.streams.last_id(user_topic(anna.id)) == event["id"]  # only one
    finally:
        await stream.close()
