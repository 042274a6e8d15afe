"""Login throttling: a sliding one-minute window per (client address, login)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

RateKey = tuple[str, str]
"""(client ip, login lowercased)."""

WINDOW_S = 60.0


def login_key(ip: str, login: str) -> RateKey:
    """The limiter key for an attempt to log in as `login` from `ip`."""
    return (ip, login.strip().lower())


class LoginRateLimiter:
    """Allows at most `limit_per_minute` attempts per key in any sliding 60 s window.

    State lives in this object only (one per process, held by the AppContext); with several
    API processes each counts on its own, which still bounds guessing per process.
    """

    def __init__(
        self,
        limit_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if limit_per_minute < 1:
            raise ValueError("limit_per_minute must be at least 1")
        self._limit = limit_per_minute
        self._clock = clock
        self._max_keys = max_keys
        self._hits: dict[RateKey, deque[float]] = {}

    @property
    def limit_per_minute(self) -> int:
        return self._limit

    def hit(self, key: RateKey) -> bool:
        """Count one attempt for `key`; False (and not counted) when over the limit."""
        now = self._clock()
        hits = self._recent(key, now)
        if hits is None:
            if len(self._hits) >= self._max_keys:
                self._sweep(now)
            hits = self._hits[key] = deque()
        elif len(hits) >= self._limit:
            return False
        hits.append(now)
        return True

    def retry_after(self, key: RateKey) -> float:
        """Seconds until `key` may try again (0 when it may try now)."""
        now = self._clock()
        hits = self._recent(key, now)
        if hits is None or len(hits) < self._limit:
            return 0.0
        return max(0.0, hits[0] + WINDOW_S - now)

    def reset(self, key: RateKey) -> None:
        """Forget the attempts of `key` (after a successful login)."""
        self._hits.pop(key, None)

    def _recent(self, key: RateKey, now: float) -> deque[float] | None:
        """The attempts of `key` inside the window, or None when there are none."""
        hits = self._hits.get(key)
        if hits is None:
            return None
        cutoff = now - WINDOW_S
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def _sweep(self, now: float) -> None:
        cutoff = now - WINDOW_S
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[key]
