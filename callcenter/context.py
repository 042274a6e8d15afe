"""The process's long-lived parts, built once by the composition root and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.auth.ratelimit import LoginRateLimiter
from callcenter.config import Settings
from callcenter.db import make_engine, make_sessionmaker
from callcenter.phones import PhoneIdentity, phone_identity
from callcenter.realtime.streams import InMemoryStreams, Streams


@dataclass(slots=True)
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    phones: PhoneIdentity
    streams: Streams
    login_limiter: LoginRateLimiter

    async def close(self) -> None:
        await self.streams.close()
        await self.engine.dispose()


def build_context(settings: Settings) -> AppContext:
    """Wire the parts that the settings choose (SQLite or PostgreSQL; memory or Redis)."""
    engine = make_engine(settings.database_url)
    return AppContext(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        phones=phone_identity(settings.default_region, settings.default_area_code),
        streams=InMemoryStreams(replay_size=settings.realtime_replay_size),
        login_limiter=LoginRateLimiter(settings.login_attempts_per_minute),
    )
