"""The process's long-lived parts, built once by the composition root and passed down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.auth.ratelimit import LoginRateLimiter
from callcenter.calls.early_pops import EarlyPopMetrics, EarlyPops, EarlyPopsFactory, LaneParts
from callcenter.calls.ingest import CallEventSink, WriteFence
from callcenter.calls.service import IngestPolicy
from callcenter.config import Settings
from callcenter.control.pbx import PbxControl
from callcenter.db import is_sqlite, make_engine, make_sessionmaker
from callcenter.jobs import JobQueue, install_outbox
from callcenter.phones import PhoneIdentity, phone_identity
from callcenter.queues.board import LiveQueues
from callcenter.realtime.metrics import MeteredStreams, StreamMetrics
from callcenter.realtime.streams import InMemoryStreams, Streams


@dataclass(slots=True)
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    phones: PhoneIdentity
    streams: Streams
    login_limiter: LoginRateLimiter
    jobs: JobQueue
    """Background jobs, sent after commit (in-process, or Celery when `redis_url` is set)."""
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    pbx_health: Callable[[], dict[str, Any]] | None = None
    """Set by the composition root when this process runs a PBX adapter."""
    pbx_control: PbxControl | None = None
    """Actions on the PBX (pause, queues, spy, originate); None when no adapter runs here."""
    queues_board: LiveQueues | None = None
    """The live queue board; made on first use by `live_queues()`."""
    sinks: list[CallEventSink] = field(default_factory=list)
    """The call event sinks made by `call_event_sink()`."""
    ingest_engine: AsyncEngine | None = None
    ingest_sessionmaker: async_sessionmaker[AsyncSession] | None = None
    """The call sinks' own pool (made on first use); see `_ingest_sessionmaker()`."""

    def ingest_policy(self) -> IngestPolicy:
        """How PBX events become records under these settings."""
        own = frozenset(
            e164 for raw in self.settings.company_numbers if (e164 := self.phones.e164(raw))
        )
        return IngestPolicy(
            phones=self.phones,
            company_numbers=own,
            auto_create_clients=self.settings.auto_create_clients,
        )

    def call_event_sink(
        self, policy: IngestPolicy | None = None, fence: WriteFence | None = None
    ) -> CallEventSink:
        """Where an adapter in this process sends its call events (closed with the context,
        so no card prefetch outlives the database engine)."""
        sink = CallEventSink(
            self._ingest_sessionmaker(),
            policy or self.ingest_policy(),
            self.streams,
            fence=fence,
            early_pops=self._early_pops(),
        )
        self.sinks.append(sink)
        return sink

    def _early_pops(self) -> EarlyPopsFactory | None:
        """Rings popped ahead of their batch when `settings.early_pops`: on PostgreSQL, whose
        sequence gives the ids; in a thread of their own when the streams are Redis (a client per
        loop), else on the adapter's loop with this process's own streams."""
        if not self.settings.early_pops or is_sqlite(self.settings.database_url):
            return None
        own_thread = bool(self.settings.redis_url)

        def parts() -> LaneParts:
            if not own_thread:
                return LaneParts(self._ingest_sessionmaker(), self.streams, _nothing_to_close)
            # Reads only: in autocommit, without a BEGIN and ROLLBACK round trip per pop.
            engine = make_engine(
                self.settings.database_url,
                pool_pre_ping=False,
                pool_size=1,
                isolation_level="AUTOCOMMIT",
            )
            streams = MeteredStreams(build_streams(self.settings), StreamMetrics.of(self.metrics))

            async def close() -> None:
                await streams.close()
                await engine.dispose()

            return LaneParts(make_sessionmaker(engine), streams, close)

        metrics = EarlyPopMetrics.of(self.metrics)
        return lambda policy, caches: EarlyPops(
            parts, policy, caches, metrics, own_thread=own_thread
        )

    def _ingest_sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        """Sessions for the call sinks: on a server database, a small pool without pre-ping.
        A sink retries any batch the database refused, so a dead pooled connection costs one
        retry; pre-ping would cost three round trips per batch (asyncpg pings inside BEGIN
        and ROLLBACK), on the screen pop's path."""
        if is_sqlite(self.settings.database_url):
            return self.sessionmaker
        if self.ingest_sessionmaker is None:
            self.ingest_engine = make_engine(
                self.settings.database_url, pool_pre_ping=False, pool_size=2
            )
            self.ingest_sessionmaker = make_sessionmaker(self.ingest_engine)
            install_outbox(self.ingest_sessionmaker, self.jobs)
        return self.ingest_sessionmaker

    def live_queues(self) -> LiveQueues:
        """This process's live queue board: the live sink of an adapter here, and what the
        queue endpoints read."""
        if self.queues_board is None:
            shared = None
            if self.settings.redis_url:
                from callcenter.queues.redis_board import RedisQueueViews

                shared = RedisQueueViews(
                    self.settings.redis_url, prefix=redis_prefix(self.settings, "queues")
                )
            self.queues_board = LiveQueues(
                self.sessionmaker, self.streams, self.settings, shared=shared
            )
        return self.queues_board

    async def close(self) -> None:
        for sink in self.sinks:
            await sink.close()
        await self.jobs.close()
        if self.queues_board is not None:
            await self.queues_board.close()
        await self.streams.close()
        if self.ingest_engine is not None:
            await self.ingest_engine.dispose()
        await self.engine.dispose()


async def _nothing_to_close() -> None:
    return None


def build_context(settings: Settings, jobs: JobQueue | None = None) -> AppContext:
    """Wire the parts that the settings choose (SQLite or PostgreSQL; memory or Redis;
    in-process jobs or Celery); a Celery worker passes its own `jobs`."""
    from workers.tasks import build_job_queue

    engine = make_engine(settings.database_url)
    sessionmaker = make_sessionmaker(engine)
    metrics = CollectorRegistry()
    ctx = AppContext(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        phones=phone_identity(settings.default_region, settings.default_area_code),
        streams=MeteredStreams(build_streams(settings), StreamMetrics.of(metrics)),
        login_limiter=LoginRateLimiter(settings.login_attempts_per_minute),
        jobs=jobs or build_job_queue(settings),
        metrics=metrics,
    )
    ctx.jobs.start(ctx)
    install_outbox(sessionmaker, ctx.jobs)
    return ctx


def redis_prefix(settings: Settings, part: str) -> str:
    """Where a part's keys live in Redis (`jobs_key_prefix` sets deployments apart)."""
    return f"{settings.jobs_key_prefix}callcenter:{part}:"


def build_streams(settings: Settings) -> Streams:
    """Redis Streams shared by every process when `redis_url` is set; else in this process."""
    if not settings.redis_url:
        return InMemoryStreams(replay_size=settings.realtime_replay_size)
    from callcenter.realtime.redis_streams import RedisStreams

    return RedisStreams(
        settings.redis_url,
        replay_size=settings.realtime_replay_size,
        prefix=redis_prefix(settings, "rt"),
    )
