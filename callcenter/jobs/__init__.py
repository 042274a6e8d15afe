"""Background jobs as the domain sees them: a name, the key of its effect, and JSON arguments.

    jobs.after_commit(session, "calls.apply_wrong_number_rules", f"wrong_number:{call_id}",
                      call_id=call_id)

The job is held by the session and sent only once its transaction commits; a rollback, or a
session closed without committing, sends nothing. Which queue sends it is chosen from the
settings by the composition root (`callcenter.context.build_context`): asyncio tasks in this
process on the embedded default (`callcenter.jobs.runner.InProcessJobs`), Celery on the Redis
broker when scaled out (`workers.celery_app.CeleryJobs`). The domain never imports Celery.

Every job is idempotent: the effect it makes is recorded under its key in `job_effects`, in
the same transaction as the effect (`callcenter.jobs.service.commit_effect`), so running it
again changes nothing. Sending a job is never on the live path: `JobQueue.send` only hands
the jobs over and returns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

if TYPE_CHECKING:
    from callcenter.context import AppContext

log = logging.getLogger(__name__)

JsonValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    """The task's name, the same in every queue (`calls.apply_wrong_number_rules`)."""
    key: str
    """The unique key of the job's effect (`wrong_number:42`): at most one effect per key."""
    args: Mapping[str, JsonValue] = field(default_factory=dict)

    def int_arg(self, name: str) -> int:
        value = self.args[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"job {self.key}: {name} must be an integer, not {value!r}")
        return value

    def wire(self) -> dict[str, Any]:
        """The job as plain JSON (a Celery message's kwargs, a dead letter)."""
        return {"key": self.key, "args": dict(self.args)}


class JobQueue(Protocol):
    """Where committed jobs go. `send` never blocks: it is called right after a commit."""

    def start(self, ctx: AppContext) -> None:
        """Bind to the process's context (the in-process queue runs jobs with it)."""

    def send(self, jobs: Sequence[Job]) -> None: ...

    async def drain(self) -> None:
        """Wait until every job sent so far has been handed over (Celery) or run (in-process)."""

    async def close(self) -> None: ...


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, OSError, TimeoutError)
"""Errors worth another attempt: the database or a socket said no, or a time limit ran out.
A unique-key clash (two runs of one job at once) is a DBAPIError too: the retry finds the
effect done."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter (Celery's `retry_backoff` + `retry_jitter` formula),
    one policy for both queues."""

    max_attempts: int = 5
    backoff_s: float = 2.0
    backoff_max_s: float = 300.0

    def ceiling(self, retries: int) -> float:
        """The longest wait before retry number `retries + 1` (0 for the first retry)."""
        return min(self.backoff_max_s, self.backoff_s * 2.0**retries)


_PENDING = "callcenter.jobs.pending"
_QUEUE = "callcenter.jobs.queue"


def _sync(session: AsyncSession | Session) -> Session:
    return session.sync_session if isinstance(session, AsyncSession) else session


def enqueue(session: AsyncSession | Session, job: Job) -> None:
    """Send `job` when this session's transaction commits (the same key twice: once)."""
    pending: dict[tuple[str, str], Job] = _sync(session).info.setdefault(_PENDING, {})
    pending.setdefault((job.name, job.key), job)


def after_commit(session: AsyncSession | Session, name: str, key: str, **args: JsonValue) -> None:
    """Shorthand for `enqueue(session, Job(name, key, args))`."""
    enqueue(session, Job(name, key, args))


def pending(session: AsyncSession | Session) -> list[Job]:
    """The jobs this session will send on commit."""
    return list(_sync(session).info.get(_PENDING, {}).values())


def install_outbox(sessionmaker: async_sessionmaker[AsyncSession], queue: JobQueue) -> None:
    """Sessions from `sessionmaker` send their committed jobs to `queue`."""
    sessionmaker.configure(info={_QUEUE: queue})


@event.listens_for(Session, "after_commit")
def _send_committed(session: Session) -> None:
    jobs: dict[tuple[str, str], Job] | None = session.info.pop(_PENDING, None)
    if not jobs:
        return
    queue: JobQueue | None = session.info.get(_QUEUE)
    if queue is None:
        log.warning(
            "%d job(s) committed on a session without a job queue; the sweep will send them: %s",
            len(jobs),
            ", ".join(job.key for job in jobs.values()),
        )
        return
    queue.send(list(jobs.values()))


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    # After a commit the jobs are gone already; what is left belongs to a rollback.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
