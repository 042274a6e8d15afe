"""Running jobs: the task table's shape, and the in-process queue of the embedded default.

`InProcessJobs` runs each committed job as an asyncio task in this process, with the same
policy as the Celery workers: a time limit per attempt, retries of transient errors with
exponential backoff and full jitter, and a dead letter after the last failed attempt. A
job never runs inside the request or the PBX batch that caused it: `send` only schedules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callcenter.config import Settings
from callcenter.db import utcnow
from callcenter.jobs import TRANSIENT_ERRORS, Job, RetryPolicy
from callcenter.jobs.service import record_dead_letter

if TYPE_CHECKING:
    from callcenter.context import AppContext

log = logging.getLogger(__name__)

Handler = Callable[["AppContext", Job], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A task: its name, the coroutine that runs it, and whether it is a long one."""

    name: str
    handler: Handler
    long: bool = False
    """Long tasks (recording analysis) get the long time limit and their own Celery queue."""

    def time_limit_s(self, settings: Settings) -> float:
        return settings.jobs_long_time_limit_s if self.long else settings.jobs_time_limit_s


@dataclass(frozen=True, slots=True)
class Periodic:
    """A job sent every `every_s` seconds (Celery beat, or the in-process beat)."""

    job: Job
    every_s: float


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.jobs_max_attempts,
        backoff_s=settings.jobs_retry_backoff_s,
        backoff_max_s=settings.jobs_retry_backoff_max_s,
    )


async def run_once(ctx: AppContext, spec: JobSpec, job: Job) -> None:
    """One attempt of `job`, within its time limit."""
    async with asyncio.timeout(spec.time_limit_s(ctx.settings)):
        await spec.handler(ctx, job)


def describe_error(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()


class InProcessJobs:
    """Jobs as asyncio tasks of this process (the embedded default: no Redis, no Celery)."""

    def __init__(
        self,
        specs: Mapping[str, JobSpec],
        policy: RetryPolicy,
        *,
        rng: random.Random | None = None,
        close_grace_s: float = 5.0,
        concurrency: int = 4,
    ) -> None:
        self._specs = specs
        self._policy = policy
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        self._close_grace_s = close_grace_s
        self._ctx: AppContext | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        # A burst of ended calls (a replay, a busy minute) waits here for a slot instead of
        # asking the database for a connection all at once.
        self._slots = asyncio.Semaphore(concurrency)
        self.completed = 0
        self.dead = 0

    def start(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def send(self, jobs: Sequence[Job]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.error("jobs committed outside an event loop were not run: %s", jobs)
            return
        if self._closing.is_set():
            log.warning("shutting down: %d job(s) left for the sweep", len(jobs))
            return
        for job in jobs:
            task = loop.create_task(self._run(job), name=f"job {job.name} {job.key}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job) -> None:
        ctx = self._ctx
        if ctx is None:
            raise RuntimeError("InProcessJobs.start(ctx) was not called")
        spec = self._specs.get(job.name)
        if spec is None:
            await self._dead_letter(ctx, job, f"no such job: {job.name}", 0)
            return
        failures = 0
        while not self._closing.is_set():
            try:
                async with self._slots:
                    await run_once(ctx, spec, job)
            except TRANSIENT_ERRORS as exc:
                failures += 1
                if failures >= self._policy.max_attempts:
                    await self._dead_letter(ctx, job, describe_error(exc), failures)
                    return
                delay = self._rng.uniform(0, self._policy.ceiling(failures - 1))
                log.warning("job %s failed (%s); retry %d in %.1f s", job.key, exc, failures, delay)
                await self._sleep(delay)
            except Exception as exc:
                # Not a passing condition (a bug, data the job cannot handle): no retry.
                log.exception("job %s failed", job.key)
                await self._dead_letter(ctx, job, describe_error(exc), failures + 1)
                return
            else:
                self.completed += 1
                return

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _dead_letter(self, ctx: AppContext, job: Job, error: str, attempts: int) -> None:
        self.dead += 1
        log.error("job %s failed %d time(s), now a dead letter: %s", job.key, attempts, error)
        try:
            async with ctx.sessionmaker() as session:
                await record_dead_letter(session, job, error=error, attempts=attempts, now=utcnow())
                await session.commit()
        except Exception:
            log.exception("could not store the dead letter of %s", job.key)

    async def drain(self) -> None:
        """Wait until every job sent so far (and every job those send) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Let running attempts finish (briefly), stop retries waiting for their turn."""
        self._closing.set()
        if not self._tasks:
            return
        _, still = await asyncio.wait(list(self._tasks), timeout=self._close_grace_s)
        for task in still:
            task.cancel()
        await asyncio.gather(*still, return_exceptions=True)


Stop = Callable[[], Awaitable[None]]


def in_process_beat(
    schedule: Callable[[Settings], Sequence[Periodic]],
) -> Callable[[AppContext], Awaitable[Stop]]:
    """A background part for the embedded default: sends the periodic jobs, as beat would."""

    async def start(ctx: AppContext) -> Stop:
        entries = list(schedule(ctx.settings))

        async def every(entry: Periodic) -> None:
            while True:
                await asyncio.sleep(entry.every_s)
                ctx.jobs.send([entry.job])

        tasks = [asyncio.create_task(every(e), name=f"beat {e.job.name}") for e in entries]

        async def stop() -> None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        return stop

    return start
