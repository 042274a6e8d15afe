"""How long the Redis event streams wait between attempts to reach Redis again: short enough
that pops resume within 5 s of Redis answering after a restart, however long it was away
(issue 7; the fault test is tests/faults/test_redis_restart.py)."""

from __future__ import annotations

from callcenter.config import Settings
from callcenter.context import build_streams
from callcenter.realtime.redis_streams import MAX_BACKOFF_S, RedisStreams, retry_wait


def test_given_any_draw_then_the_wait_is_at_most_the_backoff_and_at_least_half_of_it() -> None:
    delay = MAX_BACKOFF_S
    waits = [retry_wait(delay, draw) for draw in (0.0, 0.25, 0.5, 0.75, 0.999999)]
    assert all(delay / 2 <= wait <= delay for wait in waits)
    assert waits == sorted(waits, reverse=True), "the jitter spreads the waits out"


async def test_given_the_default_settings_then_the_streams_back_off_at_most_a_second() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", _env_file=None)  # type: ignore[call-arg]
    streams = build_streams(settings)  # connects on first use only
    try:
        assert isinstance(streams, RedisStreams)
        assert streams._max_backoff_s == MAX_BACKOFF_S <= 1.0  # the ceiling the loops cap at
    finally:
        await streams.close()
