"""One active adapter per PBX: a lease in Redis, and a fencing token that refuses stale writers.

The lease is a key `SET NX PX` with a random owner token; only its owner extends it (a Lua
compare-and-extend) or deletes it (compare-and-delete). Each acquisition also increments the
PBX's fencing counter in the same script, so every term of holding has a larger token than
the one before.

A holder stops applying as soon as a renewal fails. That alone is not enough (a process can
pause for longer than the lease and wake up believing it still holds it), so the writes carry
the token too: the call sink, inside its transaction and holding the PBX's write lock, asks
`LeaseFence.check()` whether the token is still the PBX's latest and the lease still this
owner's. Writes of one PBX are serialised by that lock, so once a newer holder has
incremented the counter no write of an older holder can commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

MAX_TTL_S = 8.0
"""A standby must take over within 10 s of the holder's death: the lease's TTL plus one
acquisition attempt interval (at most 1 s) must stay under that, with time to connect."""

_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return redis.call('INCR', KEYS[2])
end
return false
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

_IS_CURRENT = """
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
    return 1
end
return 0
"""


class LeaseLost(Exception):
    """This process no longer holds the PBX's lease (or cannot prove it does)."""


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """One term of holding a PBX: who holds it and the term's fencing token."""

    pbx: str
    owner: str
    fencing_token: int


class PbxLease:
    """The lease on one PBX in Redis (see the module docstring)."""

    def __init__(
        self, redis: Redis, pbx: str, *, ttl_s: float = 6.0, key_prefix: str = "callcenter:"
    ) -> None:
        if not 0 < ttl_s <= MAX_TTL_S:
            raise ValueError(f"lease TTL must be in (0, {MAX_TTL_S:g}] s, not {ttl_s!r}")
        self.redis = redis
        self.pbx = pbx
        self.ttl_s = ttl_s
        self.lease_key = f"{key_prefix}pbx-lease:{pbx}"
        self.fence_key = f"{key_prefix}pbx-fence:{pbx}"
        self.grant: LeaseGrant | None = None
        """The term held now; None while standing by (set and cleared by `Leaseholder`)."""

    @property
    def renew_interval_s(self) -> float:
        return self.ttl_s / 3

    @property
    def retry_interval_s(self) -> float:
        """How often a standby tries to take the lease."""
        return min(self.ttl_s / 3, 1.0)

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl_s * 1000))

    async def acquire(self) -> LeaseGrant | None:
        """Take the lease if nobody holds it: a new term with the next fencing token."""
        owner = secrets.token_hex(16)
        token = await self.redis.eval(
            _ACQUIRE, 2, self.lease_key, self.fence_key, owner, self._ttl_ms
        )
        if token is None:
            return None
        return LeaseGrant(self.pbx, owner, int(token))

    async def renew(self, grant: LeaseGrant) -> bool:
        """Extend the lease by a TTL if `grant` still holds it."""
        extended = await self.redis.eval(_RENEW, 1, self.lease_key, grant.owner, self._ttl_ms)
        return bool(extended)

    async def release(self, grant: LeaseGrant) -> bool:
        """Give the lease up (only if `grant` still holds it): a standby need not wait."""
        deleted = await self.redis.eval(_RELEASE, 1, self.lease_key, grant.owner)
        return bool(deleted)

    async def is_current(self, grant: LeaseGrant) -> bool:
        """Whether `grant` holds the lease and is the PBX's latest term."""
        current = await self.redis.eval(
            _IS_CURRENT,
            2,
            self.lease_key,
            self.fence_key,
            grant.owner,
            str(grant.fencing_token),
        )
        return bool(current)


class LeaseFence:
    """The check a call sink makes before each commit (a `callcenter.calls.ingest.WriteFence`)."""

    def __init__(self, lease: PbxLease) -> None:
        self._lease = lease
        self.pbx = lease.pbx
        self.refused = 0

    async def check(self) -> None:
        grant = self._lease.grant
        try:
            current = grant is not None and await self._lease.is_current(grant)
        except RedisError as exc:
            current = False
            log.warning("PBX %s: cannot verify the lease (%s); refusing the write", self.pbx, exc)
        if not current:
            self.refused += 1
            token = grant.fencing_token if grant else None
            raise LeaseLost(f"PBX {self.pbx}: fencing token {token} is stale; write refused")


class Leaseholder:
    """Acquires the lease (retrying while another process holds it) and keeps it renewed."""

    def __init__(self, lease: PbxLease) -> None:
        self.lease = lease
        self.terms = 0

    async def acquire(self, stop: asyncio.Event) -> LeaseGrant | None:
        """Wait until this process holds the lease (None when `stop` is set first)."""
        while not stop.is_set():
            try:
                grant = await self.lease.acquire()
            except RedisError as exc:
                log.warning("PBX %s: lease not reachable (%s)", self.lease.pbx, exc)
                grant = None
            if grant is not None:
                self.lease.grant = grant
                self.terms += 1
                log.info("PBX %s: lease taken, fencing token %d", grant.pbx, grant.fencing_token)
                return grant
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.lease.retry_interval_s)
        return None

    async def keep(self, grant: LeaseGrant) -> None:
        """Renew every TTL / 3; return as soon as a renewal fails (the term is over)."""
        interval = self.lease.renew_interval_s
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    async with asyncio.timeout(interval):
                        renewed = await self.lease.renew(grant)
                except (RedisError, TimeoutError) as exc:
                    log.warning("PBX %s: lease renewal failed (%s)", grant.pbx, exc)
                    return
                if not renewed:
                    log.warning("PBX %s: lease taken over by another adapter", grant.pbx)
                    return
        finally:
            self.lease.grant = None

    async def release(self, grant: LeaseGrant) -> None:
        self.lease.grant = None
        try:
            await self.lease.release(grant)
        except RedisError as exc:
            log.warning("PBX %s: lease not released (%s); it expires by itself", grant.pbx, exc)
