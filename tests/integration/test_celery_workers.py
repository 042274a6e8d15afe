"""A real Celery worker on the real Redis and PostgreSQL runs every task; killed with SIGKILL
mid-task, the task runs again and its effect happens exactly once; failures end as dead letters.

Each test starts `callcenter worker` (prefork, one process) as a subprocess with its settings
in the environment, on Redis database 14 under a key prefix of its own. The test process sends
its jobs through CeleryJobs' pipelined Redis path (never `send_task`): the workers run them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from sqlalchemy import func, select

from callcenter.auth.models import AuditEntry
from callcenter.calls.followups import sweep_job, wrong_number_job
from callcenter.calls.models import Call, Outcome
from callcenter.calls.service import ingest
from callcenter.config import Settings
from callcenter.context import AppContext, build_context
from callcenter.db import make_sessionmaker
from callcenter.events import CallEvent, RecordingStarted
from callcenter.jobs.models import JobEffect
from callcenter.jobs.service import TEST_PAUSE_MARK
from tests.conftest import need_service
from tests.integration.test_wrong_numbers import call_events
from workers.celery_app import DEAD_LETTERS_KEY, DELIVERIES_KEY

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/14"
RECORDINGS = ROOT / "tests" / "fixtures" / "recordings"

# Short limits so a lost worker's task comes back within seconds: the visibility timeout
# must exceed the hard time limit (1.5 x 5 + 2 s) and the longest retry wait. The test pause
# (2 s) stays well inside the time limit on a busy machine.
JOB_SETTINGS: dict[str, Any] = {
    "jobs_time_limit_s": 5.0,
    "jobs_long_time_limit_s": 5.0,
    "jobs_visibility_timeout_s": 10,
    "jobs_unacked_restore_interval_s": 1,
    "jobs_retry_backoff_s": 0.1,
    "jobs_retry_backoff_max_s": 0.5,
    "jobs_max_attempts": 5,
}
PAUSE_S = 2.0


def _env(settings: Settings, **extra: Any) -> dict[str, str]:
    """`settings` (and `extra`) as the CALLCENTER_ environment of a worker process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    values = settings.model_dump(
        mode="json",
        include={
            "database_url",
            "redis_url",
            "data_dir",
            "recordings_dir",
            "jobs_key_prefix",
            *JOB_SETTINGS,
        },
    )
    values |= extra
    for key, value in values.items():
        env[f"CALLCENTER_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Worker:
    """`callcenter worker` in its own process group, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "callcenter.cli", "worker", "--pool=prefork", "-c", "1"],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern: str, *, timeout: float = 20, count: int = 1) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = list(re.finditer(pattern, self.text()))
            if len(found) >= count:
                return found[count - 1]
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}:\n{self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} ({count}x) in the worker's log:\n{self.text()}")

    def kill_all(self) -> None:
        """SIGKILL the whole worker, as a lost machine would die."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._out.close()


class Broker:
    """Redis database 14 under a key prefix of this test's own (several test runs may share
    the machine's Redis), emptied afterwards."""

    def __init__(self) -> None:
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.prefix = f"test-{secrets.token_hex(4)}:"

    def key(self, name: str) -> str:
        return self.prefix + name

    def close(self) -> None:
        for key in self.redis.scan_iter(match=f"{self.prefix}*"):
            self.redis.delete(key)
        self.redis.close()


@pytest.fixture
def broker() -> Iterator[Broker]:
    need_service("Redis", "127.0.0.1", 6379)
    made = Broker()
    yield made
    made.close()


@pytest.fixture(autouse=True)
def no_send_task(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Jobs sent here on an event loop must take CeleryJobs' pipelined path, not send_task."""
    used: list[str] = []
    original = Celery.send_task

    def recording(app: Celery, name: str, *args: Any, **kwargs: Any) -> Any:
        used.append(name)
        return original(app, name, *args, **kwargs)

    monkeypatch.setattr(Celery, "send_task", recording)
    yield
    assert used == [], f"sent by send_task on an event loop: {used}"


@pytest.fixture
def settings(pg_url: str, tmp_path: Path, broker: Broker) -> Settings:
    return Settings(
        database_url=pg_url,
        redis_url=REDIS_URL,
        jobs_key_prefix=broker.prefix,
        data_dir=tmp_path,
        recordings_dir=RECORDINGS,
        _env_file=None,  # type: ignore[call-arg]
        **JOB_SETTINGS,
    )


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[AppContext]:
    context = build_context(settings)  # redis_url set: its jobs go to Celery
    yield context
    await context.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Worker]]:
    started: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.wait_for(r"celery@\S+ ready\.")
        return worker

    yield start
    for worker in started:
        worker.kill_all()


async def _wait_until(check: Callable[[], Any], within_s: float = 20) -> None:
    """Poll `check` (another process changes what it reads) until it holds."""
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


async def _commit_without_jobs(ctx: AppContext, events: list[CallEvent]) -> int:
    """A call that ended 10 s ago and whose jobs were never sent; its id."""
    async with make_sessionmaker(ctx.engine)() as session:
        await ingest(session, ctx.ingest_policy(), events)
        await session.commit()
        call = (
            await session.scalars(select(Call).where(Call.call_key == events[0].call_key))
        ).one()
        return call.id


async def _outcome(ctx: AppContext, call_id: int) -> Outcome | None:
    async with ctx.sessionmaker() as session:
        call = await session.get(Call, call_id, populate_existing=True)
        assert call is not None
        return call.outcome


async def _once(ctx: AppContext, call_id: int) -> tuple[int, int]:
    """(auto-close audit entries, wrong-number job effects) of the call."""
    async with ctx.sessionmaker() as session:
        audits = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "call.auto_closed", AuditEntry.entity_id == str(call_id))
        )
        effects = await session.scalar(
            select(func.count())
            .select_from(JobEffect)
            .where(JobEffect.key == f"wrong_number:{call_id}")
        )
    return int(audits or 0), int(effects or 0)


def _ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def test_given_real_worker_then_each_task_runs_through_the_broker(
    ctx: AppContext, settings: Settings, workers: Callable[[dict[str, str]], Worker]
) -> None:
    worker = workers(_env(settings, wrong_number_min_caller_speech_s=3600.0))
    # A short call ends: its rules job goes to Redis after the commit (the live path's sink).
    await ctx.call_event_sink()(call_events("short", "+79161234567", talk_s=1.0, at=_ago(30)))
    # A recorded call: its analysis runs on the worker, then sends the rules (3600 s of
    # speech needed, so the stored analysis closes it: the rules read what analysis wrote).
    recorded = call_events("recorded", "+79161234568", talk_s=30.0, at=_ago(60))
    recorded.insert(
        -1,
        RecordingStarted(
            call_key="recorded",
            event_id="recorded:mix",
            at=recorded[-2].at,
            file="1795906372.6.wav",
        ),
    )
    await ctx.call_event_sink()(recorded)
    # A call whose jobs were lost: the periodic sweep finds it.
    lost = await _commit_without_jobs(
        ctx, call_events("lost", "+79161234569", talk_s=1.0, at=_ago(600))
    )
    assert await _outcome(ctx, lost) is None
    ctx.jobs.send([sweep_job()])
    await ctx.jobs.drain()

    async with ctx.sessionmaker() as session:
        ids = {key: id_ for key, id_ in await session.execute(select(Call.call_key, Call.id))}

    async def all_closed() -> bool:
        return all([await _outcome(ctx, i) is Outcome.WRONG_NUMBER for i in ids.values()])

    await _wait_until(all_closed)
    async with ctx.sessionmaker() as session:
        found = await session.execute(select(Call.call_key, Call.wrong_number_rule))
        rules = {key: rule for key, rule in found}
        effects = set(await session.scalars(select(JobEffect.key)))
    assert rules == {
        "short": "short_answer",
        "recorded": "no_caller_speech",
        "lost": "short_answer",
    }
    assert f"analysis:{ids['recorded']}" in effects
    for name in ("recordings.analyse", "calls.apply_wrong_number_rules", "calls.sweep_followups"):
        worker.wait_for(rf"Task {re.escape(name)}\[[^\]]+\] succeeded")


async def test_given_pool_process_killed_mid_task_then_task_runs_again_and_closes_once(
    ctx: AppContext, settings: Settings, workers: Callable[[dict[str, str]], Worker]
) -> None:
    call_id = await _commit_without_jobs(ctx, call_events("c1", "+79161234567", talk_s=1.0))
    worker = workers(_env(settings, jobs_test_pause_s=PAUSE_S, jobs_test_pause_at="before_commit"))
    ctx.jobs.send([wrong_number_job(call_id)])
    await ctx.jobs.drain()

    paused = worker.wait_for(rf"{TEST_PAUSE_MARK} pid=(\d+)")
    os.kill(int(paused.group(1)), signal.SIGKILL)  # the effect is written, not committed

    worker.wait_for(TEST_PAUSE_MARK, count=2)  # redelivered to the next pool process

    async def closed() -> bool:
        return await _outcome(ctx, call_id) is Outcome.WRONG_NUMBER

    await _wait_until(closed)
    assert await _once(ctx, call_id) == (1, 1)
    assert "WorkerLostError" in worker.text() or "SIGKILL" in worker.text()


async def test_given_whole_worker_killed_after_commit_then_new_worker_reruns_with_no_effect(
    ctx: AppContext,
    settings: Settings,
    workers: Callable[[dict[str, str]], Worker],
    broker: Broker,
) -> None:
    call_id = await _commit_without_jobs(ctx, call_events("c1", "+79161234567", talk_s=1.0))
    first = workers(_env(settings, jobs_test_pause_s=PAUSE_S, jobs_test_pause_at="after_commit"))
    ctx.jobs.send([wrong_number_job(call_id)])
    await ctx.jobs.drain()
    task_id = first.wait_for(r"Task calls\.apply_wrong_number_rules\[([^\]]+)\] received")[1]
    first.wait_for(TEST_PAUSE_MARK)
    first.kill_all()  # committed, never acknowledged
    assert await _outcome(ctx, call_id) is Outcome.WRONG_NUMBER
    assert broker.redis.hlen(broker.key("unacked")) == 1

    second = workers(_env(settings))  # gets it once the visibility timeout has passed
    second.wait_for(rf"Task calls\.apply_wrong_number_rules\[{task_id}\] succeeded", timeout=30)

    assert await _once(ctx, call_id) == (1, 1)
    assert broker.redis.hlen(broker.key("unacked")) == 0
    assert broker.redis.keys(broker.key(DELIVERIES_KEY.format(task_id="*"))) == []


async def test_given_a_task_failing_every_attempt_then_it_lands_in_dead_letters(
    settings: Settings, workers: Callable[[dict[str, str]], Worker], broker: Broker
) -> None:
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    worker = workers(_env(settings, database_url=unreachable, jobs_max_attempts=3))
    sender = build_context(settings)
    sender.jobs.send([wrong_number_job(42)])
    await sender.jobs.drain()
    await sender.close()

    async def dead() -> bool:
        return bool(broker.redis.llen(broker.key(DEAD_LETTERS_KEY)))

    await _wait_until(dead)
    raw = broker.redis.lindex(broker.key(DEAD_LETTERS_KEY), 0)
    assert raw is not None, worker.text()
    letter = json.loads(raw)
    assert letter["job"] == "calls.apply_wrong_number_rules"
    assert (letter["key"], letter["args"]) == ("wrong_number:42", {"call_id": 42})
    assert letter["attempts"] == 3
    assert "Connect" in letter["error"] or "refused" in letter["error"]
    assert len(re.findall(r"retry \d in", worker.text())) == 2
