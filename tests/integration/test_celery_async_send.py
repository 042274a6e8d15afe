"""CeleryJobs on an event loop: the messages it pipelines into Redis are the ones `send_task`
pushes, the committing code never waits on the broker, and a broker that refuses costs a
dropped batch and one warning, never an exception.

On Redis database 14 under a key prefix of each test's own (`Broker`); a relay in front of
Redis stands for a broker that does not answer or refuses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from celery import Celery

from callcenter.config import Settings
from callcenter.context import build_context
from callcenter.jobs import Job
from callcenter.realtime.streams import SUPERVISOR_CALLS_TOPIC
from tests.conftest import need_service
from tests.factories import make_user
from tests.integration.test_celery_workers import REDIS_URL, Broker
from tests.integration.test_wrong_numbers import call_events
from tests.tcp_relay import TcpRelay
from workers import celery_app
from workers.celery_app import DEFAULT_QUEUE, LONG_QUEUE, CeleryJobs, create_celery

pytestmark = [pytest.mark.redis]

SHORT = Job("calls.apply_wrong_number_rules", "wrong_number:7", {"call_id": 7})
LONG = Job("recordings.analyse", "analysis:8", {"call_id": 8})
SENDER_LOG = "workers.celery_app"


class HeldRelay(TcpRelay):
    """A relay to Redis that holds every new link until `answer` is set: a stuck broker."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 6379)
        self.answer = asyncio.Event()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        await self.answer.wait()
        if self._server is None:  # stopped meanwhile
            client_w.transport.abort()
            return
        await super()._accept(client_r, client_w)


@pytest.fixture
def broker() -> Iterator[Broker]:
    need_service("Redis", "127.0.0.1", 6379)
    made = Broker()
    yield made
    made.close()


def _app(broker: Broker, redis_url: str = REDIS_URL) -> Celery:
    settings = Settings(
        redis_url=redis_url,
        jobs_key_prefix=broker.prefix,
        _env_file=None,  # type: ignore[call-arg]
    )
    return create_celery(settings)


@pytest.fixture
async def relay(broker: Broker) -> AsyncIterator[HeldRelay]:
    made = HeldRelay()
    await made.start()
    yield made
    await made.stop()
    made.answer.set()
    await asyncio.sleep(0)  # the held links see the relay stopped and drop


def _relayed_app(broker: Broker, relay: TcpRelay) -> Celery:
    return _app(broker, f"redis://127.0.0.1:{relay.port}/14")


def _ids(raw: bytes) -> tuple[str, str]:
    """The message's (task id, delivery tag), checked to be where Celery and kombu put them."""
    message = json.loads(raw)
    headers, properties = message["headers"], message["properties"]
    task_id = headers["id"]
    assert headers["root_id"] == properties["correlation_id"] == task_id
    return str(uuid.UUID(task_id)), str(uuid.UUID(properties["delivery_tag"]))


def _masked(raw: bytes) -> bytes:
    """The raw message with its task id and delivery tag replaced by placeholders."""
    task_id, delivery_tag = _ids(raw)
    return raw.replace(task_id.encode(), b"<task id>").replace(delivery_tag.encode(), b"<tag>")


def _sender_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == SENDER_LOG]


def _task_and_kwargs(raw: bytes) -> tuple[str, dict[str, Any]]:
    message = json.loads(raw)
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert args == []
    return message["headers"]["task"], kwargs


@pytest.mark.parametrize(("job", "queue"), [(SHORT, DEFAULT_QUEUE), (LONG, LONG_QUEUE)])
async def test_given_a_job_when_pipelined_then_redis_holds_what_send_task_pushes(
    broker: Broker, job: Job, queue: str
) -> None:
    app = _app(broker)
    key = broker.key(queue)
    app.send_task(job.name, kwargs=job.wire())
    by_send_task = broker.redis.lpop(key)
    jobs = CeleryJobs(app)
    jobs.send([job])
    await jobs.drain()
    pipelined = broker.redis.lpop(key)
    await jobs.close()

    assert isinstance(by_send_task, bytes), "send_task pushed nothing to the routed queue"
    assert isinstance(pipelined, bytes), "the pipelined message is not in the same list"
    assert _ids(pipelined) != _ids(by_send_task)
    assert json.loads(_masked(pipelined)) == json.loads(_masked(by_send_task))
    assert _masked(pipelined) == _masked(by_send_task)  # the same bytes, key order included
    assert _task_and_kwargs(pipelined) == (job.name, job.wire())


def test_given_no_running_loop_when_jobs_are_sent_then_send_task_pushes_them_at_once(
    broker: Broker,
) -> None:
    CeleryJobs(_app(broker)).send([SHORT, LONG])

    short = broker.redis.lpop(broker.key(DEFAULT_QUEUE))
    long = broker.redis.lpop(broker.key(LONG_QUEUE))
    assert isinstance(short, bytes)
    assert isinstance(long, bytes)
    assert _task_and_kwargs(short) == (SHORT.name, SHORT.wire())
    assert _task_and_kwargs(long) == (LONG.name, LONG.wire())


async def test_given_many_jobs_sent_in_one_go_then_all_arrive_in_one_list_each(
    broker: Broker,
) -> None:
    jobs = CeleryJobs(_app(broker))
    shorts = [Job(SHORT.name, f"wrong_number:{i}", {"call_id": i}) for i in range(1200)]
    for start in range(0, len(shorts), 100):
        jobs.send(shorts[start : start + 100])
    jobs.send([LONG])
    await jobs.close()  # flushes what is queued

    raw = broker.redis.lrange(broker.key(DEFAULT_QUEUE), 0, -1)
    assert sorted(_task_and_kwargs(r)[1]["args"]["call_id"] for r in raw) == list(range(1200))
    assert broker.redis.llen(broker.key(LONG_QUEUE)) == 1


async def test_given_broker_not_answering_when_a_call_ends_then_the_live_path_does_not_wait(
    settings: Settings, broker: Broker, relay: HeldRelay
) -> None:
    ctx = build_context(settings, jobs=CeleryJobs(_relayed_app(broker, relay)))
    async with ctx.sessionmaker() as session:
        await make_user(session, login="anna", extensions=["101"])
        await session.commit()
    stream = await ctx.streams.subscribe([SUPERVISOR_CALLS_TOPIC], {})
    try:
        await ctx.call_event_sink()(call_events("c1", "+79161234567", talk_s=1.0))

        # The batch is committed and published while the push still waits on the broker.
        first = json.loads((await anext(aiter(stream))).data)
        assert first["type"] == "call.updated"
        assert broker.redis.llen(broker.key(DEFAULT_QUEUE)) == 0
        relay.answer.set()
        await ctx.jobs.drain()
        call_id = first["call"]["id"]
        raw = broker.redis.lpop(broker.key(DEFAULT_QUEUE))
        assert isinstance(raw, bytes)
        assert _task_and_kwargs(raw) == (
            "calls.apply_wrong_number_rules",
            {"key": f"wrong_number:{call_id}", "args": {"call_id": call_id}},
        )
    finally:
        relay.answer.set()
        await stream.close()
        await ctx.close()


async def test_given_redis_refusing_then_batches_are_dropped_with_one_warning_until_it_answers(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    relay = TcpRelay("127.0.0.1", 6379)
    await relay.start()
    jobs = CeleryJobs(_relayed_app(broker, relay))
    try:
        await relay.cut()  # connections refused
        with caplog.at_level(logging.WARNING, logger=SENDER_LOG):
            for call_id in (1, 2, 3):
                jobs.send([Job(SHORT.name, f"wrong_number:{call_id}", {"call_id": call_id})])
                await jobs.drain()  # returns: the batch is dropped, nothing raised
            refused = _sender_warnings(caplog)
            await relay.start()
            jobs.send([SHORT])
            await jobs.drain()
    finally:
        await jobs.close()
        await relay.stop()

    assert len(refused) == 1, refused
    assert refused[0].startswith("Redis did not take 1 job(s)")
    assert _sender_warnings(caplog)[1:] == ["Redis takes jobs again; 3 job(s) were dropped"]
    raw = broker.redis.lrange(broker.key(DEFAULT_QUEUE), 0, -1)
    assert [_task_and_kwargs(r)[1] for r in raw] == [SHORT.wire()]


async def test_given_more_jobs_waiting_than_the_bound_then_the_rest_are_dropped_with_a_warning(
    broker: Broker, relay: HeldRelay, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = CeleryJobs(_relayed_app(broker, relay), max_queued=3)
    many = [Job(SHORT.name, f"wrong_number:{i}", {"call_id": i}) for i in range(5)]
    with caplog.at_level(logging.WARNING, logger=SENDER_LOG):
        jobs.send(many[:2])
        jobs.send(many[2:])
    relay.answer.set()
    await jobs.close()

    assert _sender_warnings(caplog) == [
        "more than 3 jobs wait for Redis; dropping new ones until they are sent"
        " (the sweep will send them again)"
    ]
    raw = broker.redis.lrange(broker.key(DEFAULT_QUEUE), 0, -1)
    assert sorted(_task_and_kwargs(r)[1]["args"]["call_id"] for r in raw) == [0, 1, 2]


async def test_given_broker_stuck_at_close_then_close_gives_up_after_its_timeout(
    broker: Broker, relay: HeldRelay, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    monkeypatch.setattr(celery_app, "CLOSE_TIMEOUT_S", 0.2)
    jobs = CeleryJobs(_relayed_app(broker, relay))
    jobs.send([SHORT])
    with caplog.at_level(logging.WARNING, logger=SENDER_LOG):
        await jobs.close()

    assert _sender_warnings(caplog) == [
        "jobs not all sent to Redis within 0.2 s of closing (0 still queued);"
        " the sweep will send them"
    ]
