"""Celery on the Redis broker: the tasks of `workers.tasks`, run reliably.

    celery -A workers.celery_app worker      (or: callcenter worker)
    celery -A workers.celery_app beat        (or: callcenter beat)

Reliability, and why:
- `acks_late` + `reject_on_worker_lost`: a task is acknowledged only when it has finished, so
  a worker killed mid-task (SIGKILL, OOM, a lost machine) leaves it to run again: at once if
  only the pool process died, after `visibility_timeout` if the whole worker did. Every task
  is idempotent (its effect recorded under a unique key in the same transaction), so running
  again is safe. `visibility_timeout` must exceed every task's hard time limit and the
  longest retry wait, or a slow task would be handed to a second worker: checked here.
- prefetch 1: a worker holds no queue of tasks behind a long one (recording analysis, which
  also has its own queue so a worker can be given only short tasks).
- retries: transient errors (database, sockets, time limits) are retried with exponential
  backoff and full jitter, by the same `RetryPolicy` the in-process queue uses; the last
  failure, a non-transient error, or a task delivered more than `jobs_max_attempts` times
  (its workers keep dying) becomes a dead letter: a row in `dead_letters` and an entry in
  the Redis list `callcenter:dead_letters` (kept even when the database is what failed).
- one event loop and one AppContext per worker process, made after the fork on first use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from callcenter.config import Settings, get_settings
from callcenter.db import utcnow
from callcenter.jobs import TRANSIENT_ERRORS, Job
from callcenter.jobs.runner import JobSpec, describe_error, retry_policy, run_once
from callcenter.jobs.service import record_dead_letter
from workers.metrics import WorkerMetrics
from workers.metrics import install as install_metrics
from workers.task_messages import TaskMessages
from workers.tasks import TASKS, check_settings, periodic_jobs

if TYPE_CHECKING:
    from callcenter.context import AppContext

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "callcenter"
LONG_QUEUE = "callcenter.long"
DEAD_LETTERS_KEY = "callcenter:dead_letters"
DEAD_LETTERS_KEPT = 1000
DELIVERIES_KEY = "callcenter:jobs:deliveries:{task_id}"
"""Both under `jobs_key_prefix`, like every key of the broker."""


def limits(spec: JobSpec, settings: Settings) -> tuple[float, float]:
    """Celery's (soft, hard) time limits: backstops behind the job's own asyncio timeout."""
    limit = spec.time_limit_s(settings)
    return limit * 1.25 + 1, limit * 1.5 + 2


def check_visibility(settings: Settings, specs: Sequence[JobSpec]) -> None:
    """Refuse a visibility timeout that would hand a running or waiting task to a 2nd worker."""
    longest = max([limits(s, settings)[1] for s in specs] + [settings.jobs_retry_backoff_max_s])
    if settings.jobs_visibility_timeout_s <= longest:
        raise ValueError(
            f"jobs_visibility_timeout_s ({settings.jobs_visibility_timeout_s} s) must exceed the"
            f" longest hard time limit or retry wait ({longest:g} s)"
        )


MAX_QUEUED_JOBS = 10_000
"""Jobs waiting for Redis beyond this are dropped (with a warning): the sweep sends them again."""
PUSH_BATCH = 100
"""Jobs built and pushed per round trip: a burst holds the event loop ~10 ms at a time."""
REDIS_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 10.0


class CeleryJobs:
    """Sends committed jobs to the broker; the committing code never waits on Redis.

    On an event loop the jobs are queued in memory and one sender task, started when jobs
    arrive and ending when none are left, pushes everything queued so far with one pipelined
    round trip (asyncio Redis client, messages from `TaskMessages`). Without a running loop
    (a sync caller) they go at once through `app.send_task`. A job Redis does not take is
    dropped and logged: `calls.sweep_followups` sends missing work again.
    """

    def __init__(self, app: Celery, *, max_queued: int = MAX_QUEUED_JOBS) -> None:
        self._app = app
        self._messages = TaskMessages(app)
        self._max_queued = max_queued
        self._queued: deque[Job] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._redis: aioredis.Redis | None = None
        self._dropped = 0
        """Jobs dropped since Redis last took a batch (0: no failure burst going on)."""
        self._overflowing = False

    def start(self, ctx: AppContext) -> None:
        """Nothing to bind: the workers run the jobs."""

    def send(self, jobs: Sequence[Job]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._send_now(jobs)
            return
        self._enqueue(jobs)
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send_queued())

    def _enqueue(self, jobs: Sequence[Job]) -> None:
        room = max(0, self._max_queued - len(self._queued))
        if len(jobs) > room and not self._overflowing:
            self._overflowing = True
            log.warning(
                "more than %d jobs wait for Redis; dropping new ones until they are sent"
                " (the sweep will send them again)",
                self._max_queued,
            )
        self._queued.extend(jobs[:room])

    async def _send_queued(self) -> None:
        while self._queued:
            batch = [self._queued.popleft() for _ in range(min(PUSH_BATCH, len(self._queued)))]
            await self._push(batch)
        self._overflowing = False

    async def _push(self, jobs: Sequence[Job]) -> None:
        messages = []
        for job in jobs:
            try:
                messages.append(self._messages.build(job.name, job.wire()))
            except Exception:
                log.exception("could not build job %s; the sweep will send it again", job.key)
        if not messages:
            return
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                for message in messages:
                    pipe.lpush(message.key, message.payload)
                await pipe.execute()
        except (aioredis.RedisError, OSError) as exc:
            if not self._dropped:
                log.warning(
                    "Redis did not take %d job(s) (%r); dropping jobs until it does"
                    " (the sweep will send them again)",
                    len(messages),
                    exc,
                )
            self._dropped += len(messages)
            return
        if self._dropped:
            log.warning("Redis takes jobs again; %d job(s) were dropped", self._dropped)
            self._dropped = 0

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            # One retry on a broken connection (a restarted server): a duplicate push after
            # a lost reply is harmless, every job is idempotent.
            self._redis = aioredis.Redis.from_url(
                self._app.conf.broker_url,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                retry=Retry(NoBackoff(), 1),
            )
        return self._redis

    def _send_now(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            try:
                self._app.send_task(job.name, kwargs=job.wire())
            except Exception:
                log.exception("could not send job %s; the sweep will send it again", job.key)

    async def drain(self) -> None:
        """Wait until every job queued so far has been pushed to Redis (or dropped)."""
        while self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender])

    async def close(self) -> None:
        """Push what is queued (for at most `CLOSE_TIMEOUT_S`), then close the Redis client."""
        sender = self._sender
        if sender is not None and not sender.done():
            await asyncio.wait([sender], timeout=CLOSE_TIMEOUT_S)
            if not sender.done():
                log.warning(
                    "jobs not all sent to Redis within %g s of closing (%d still queued);"
                    " the sweep will send them",
                    CLOSE_TIMEOUT_S,
                    len(self._queued),
                )
                sender.cancel()
                await asyncio.wait([sender])
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


class WorkerRuntime:
    """The event loop, AppContext and Redis client of one worker process, made on first use.

    Made lazily so that nothing (database pools, sockets) is created before the pool forks.
    """

    def __init__(self, app: Celery, settings: Settings) -> None:
        self._app = app
        self.settings = settings
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ctx: AppContext | None = None
        self._redis: redis.Redis | None = None
        self._redis_pid: int | None = None
        self.rng = random.Random()  # noqa: S311 (jitter, not secrets)
        self.metrics: WorkerMetrics | None = None
        """Set when the worker serves metrics (`worker_metrics_port`)."""

    def _ensure(self) -> tuple[asyncio.AbstractEventLoop, AppContext]:
        if self._pid != os.getpid() or self._loop is None or self._ctx is None:
            from callcenter.context import build_context

            self._loop = asyncio.new_event_loop()
            self._ctx = build_context(self.settings, jobs=CeleryJobs(self._app))
            self._pid = os.getpid()
        return self._loop, self._ctx

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None or self._redis_pid != os.getpid():
            self._redis = redis.Redis.from_url(self.settings.redis_url)
            self._redis_pid = os.getpid()
        return self._redis

    def run(self, spec: JobSpec, job: Job) -> None:
        loop, ctx = self._ensure()

        async def attempt() -> None:
            try:
                await run_once(ctx, spec, job)
            finally:
                await ctx.jobs.drain()

        try:
            loop.run_until_complete(attempt())
        except SoftTimeLimitExceeded:
            # Raised by a signal wherever the loop was: start the next task on a fresh one.
            self._pid = None
            raise

    def _key(self, key: str) -> str:
        return self.settings.jobs_key_prefix + key

    def delivery(self, task_id: str) -> int:
        """How many times this task (one id across retries and redeliveries) has started."""
        key = self._key(DELIVERIES_KEY.format(task_id=task_id))
        count = int(self.redis.incr(key))
        self.redis.expire(key, 7 * 24 * 3600)
        return count

    def finished(self, task_id: str) -> None:
        self.redis.delete(self._key(DELIVERIES_KEY.format(task_id=task_id)))

    def dead_letter(self, job: Job, error: str, attempts: int) -> None:
        log.error("job %s failed %d time(s), now a dead letter: %s", job.key, attempts, error)
        if self.metrics is not None:
            self.metrics.dead_letter(job.name)
        entry = {"job": job.name, **job.wire(), "error": error, "attempts": attempts}
        entry["failed_at"] = utcnow().isoformat()
        try:
            dead_letters = self._key(DEAD_LETTERS_KEY)
            self.redis.lpush(dead_letters, json.dumps(entry, ensure_ascii=False))
            self.redis.ltrim(dead_letters, 0, DEAD_LETTERS_KEPT - 1)
        except redis.RedisError:
            log.exception("could not keep the dead letter of %s in Redis", job.key)
        try:
            loop, ctx = self._ensure()
            loop.run_until_complete(self._store(ctx, job, error, attempts))
        except Exception:
            log.exception("could not store the dead letter of %s in the database", job.key)

    @staticmethod
    async def _store(ctx: AppContext, job: Job, error: str, attempts: int) -> None:
        async with ctx.sessionmaker() as session:
            await record_dead_letter(session, job, error=error, attempts=attempts, now=utcnow())
            await session.commit()


def _register(app: Celery, spec: JobSpec, runtime: WorkerRuntime, settings: Settings) -> None:
    policy = retry_policy(settings)
    soft, hard = limits(spec, settings)

    @app.task(  # type: ignore[untyped-decorator]
        name=spec.name,
        shared=False,  # tasks of this app only: a process may build several (tests, senders)
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        soft_time_limit=soft,
        time_limit=hard,
        max_retries=None,
        ignore_result=True,
    )
    def task(self: Any, key: str, args: dict[str, Any]) -> None:
        job = Job(spec.name, key, args)
        task_id = str(self.request.id)
        attempt = runtime.delivery(task_id)
        if attempt > policy.max_attempts:
            lost = "started too often without finishing (its worker died?)"
            runtime.dead_letter(job, lost, attempt - 1)
            runtime.finished(task_id)
            return
        try:
            runtime.run(spec, job)
        except (*TRANSIENT_ERRORS, SoftTimeLimitExceeded) as exc:
            if attempt >= policy.max_attempts:
                runtime.dead_letter(job, describe_error(exc), attempt)
                runtime.finished(task_id)
                return
            delay = runtime.rng.uniform(0, policy.ceiling(attempt - 1))
            log.warning("job %s failed (%s); retry %d in %.1f s", key, exc, attempt, delay)
            raise self.retry(exc=exc, countdown=delay) from exc
        except Exception as exc:
            # Not a passing condition (a bug, data the job cannot handle): no retry.
            log.exception("job %s failed", key)
            runtime.dead_letter(job, describe_error(exc), attempt)
        runtime.finished(task_id)


def create_celery(settings: Settings) -> Celery:
    """The Celery app for `settings`: broker, reliability options, tasks and beat schedule."""
    check_settings(settings)
    check_visibility(settings, list(TASKS.values()))
    app = Celery("callcenter", set_as_current=False)
    transport: dict[str, object] = {
        "visibility_timeout": settings.jobs_visibility_timeout_s,
        "unacked_restore_interval": settings.jobs_unacked_restore_interval_s,
        "unacked_restore_throttle": 1,
    }
    if settings.jobs_key_prefix:
        transport["global_keyprefix"] = settings.jobs_key_prefix
    app.conf.update(
        broker_url=settings.redis_url or None,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_default_queue=DEFAULT_QUEUE,
        task_routes={spec.name: {"queue": LONG_QUEUE} for spec in TASKS.values() if spec.long},
        beat_schedule={
            entry.job.name: {
                "task": entry.job.name,
                "schedule": entry.every_s,
                "kwargs": entry.job.wire(),
                "options": {"expires": entry.every_s},  # no pile of stale sweeps
            }
            for entry in periodic_jobs(settings)
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    runtime = WorkerRuntime(app, settings)
    if settings.worker_metrics_port:
        runtime.metrics = install_metrics(app, settings.worker_metrics_port)
    for spec in TASKS.values():
        _register(app, spec, runtime, settings)
    return app


app = create_celery(get_settings())
"""For `celery -A workers.celery_app`; `callcenter worker` builds its own from the settings."""
