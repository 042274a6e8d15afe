"""One heartbeat loop per process for all its websockets: keep the links alive, and close
the sockets whose session was revoked.

A task per socket that sleeps, checks its session and beats would cost every idle socket a
task, a coroutine and a timer for its whole life, and one database session per beat. Here a
live socket is an entry in one of `slices` slots; every `interval_s / slices` the loop takes
the next slot, checks the sessions of all its sockets in one lookup, closes the revoked ones
and sends a heartbeat to the others. A new socket goes into the emptiest slot, so sockets
that (re)connect together (a restart, a network blip) are checked a slice at a time over the
interval, not all in the same instant, and each gets its first beat within one interval.

The loop runs while there are sockets: the first one starts it, it ends when the last one
has gone, and `close` (the app's shutdown) stops it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class BeatTarget(Protocol):
    """What the loop needs of a websocket (Starlette's `WebSocket` has it)."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


LiveTokens = Callable[[Sequence[str]], Awaitable[Collection[str]]]
"""Which of these session tokens are still live sessions (one lookup for all of them)."""


@dataclass(eq=False, slots=True)
class LiveSocket:
    """A registered socket; `Heartbeats.discard` takes it back."""

    socket: BeatTarget
    token: str
    slot: int
    sending: bool = False
    """A beat (or the close) for it is still on its way: a stalled socket gets no second one."""


class Heartbeats:
    """See the module docstring."""

    def __init__(
        self,
        live_tokens: LiveTokens,
        interval_s: float,
        *,
        beat: str,
        revoked_code: int,
        slices: int = 16,
    ) -> None:
        """`beat` is the message sent, `revoked_code` the close code of a revoked session."""
        if slices < 1 or interval_s <= 0:
            raise ValueError("heartbeats need a positive interval and at least one slice")
        self._live_tokens = live_tokens
        self._interval_s = interval_s
        self._beat = beat
        self._revoked_code = revoked_code
        self._slots: list[set[LiveSocket]] = [set() for _ in range(slices)]
        self._next_slot = 0
        self._count = 0
        self._loop_task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._closed = False

    def __len__(self) -> int:
        return self._count

    @property
    def running(self) -> bool:
        """Whether the loop runs now (it does while there are sockets)."""
        return self._loop_task is not None

    def slot_sizes(self) -> list[int]:
        """How many sockets each slot holds (for tests and metrics)."""
        return [len(slot) for slot in self._slots]

    def add(self, socket: BeatTarget, token: str) -> LiveSocket:
        """Beat `socket` from now on, checking the session behind `token` each time."""
        slot = min(range(len(self._slots)), key=lambda i: len(self._slots[i]))
        entry = LiveSocket(socket, token, slot)
        self._slots[slot].add(entry)
        self._count += 1
        if self._loop_task is None and not self._closed:
            self._loop_task = asyncio.create_task(self._run(), name="websocket-heartbeats")
        return entry

    def discard(self, entry: LiveSocket) -> None:
        """Stop beating this socket (idempotent)."""
        members = self._slots[entry.slot]
        if entry in members:
            members.remove(entry)
            self._count -= 1

    async def beat_slot(self, slot: int) -> None:
        """Check the sessions of the sockets in `slot` at once; close the revoked ones and
        start a heartbeat to each of the others (sent without waiting for slow sockets)."""
        due = [entry for entry in self._slots[slot] if not entry.sending]
        if not due:
            return
        try:
            live = set(await self._live_tokens(list({entry.token for entry in due})))
        except Exception:
            # The sessions cannot be checked now (the database is away): nobody is closed
            # for that, and the next round checks again.
            log.warning("websocket sessions not checked; heartbeats skipped", exc_info=True)
            return
        for entry in due:
            if entry not in self._slots[slot]:
                continue  # it went while its session was being checked
            revoked = entry.token not in live
            if revoked:
                self.discard(entry)
            entry.sending = True
            task = asyncio.create_task(self._send(entry, revoked))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, entry: LiveSocket, revoked: bool) -> None:
        try:
            if revoked:
                await entry.socket.close(code=self._revoked_code)
            else:
                await entry.socket.send_text(self._beat)
        except Exception as exc:  # the socket is closing or gone: its handler discards it
            log.debug("heartbeat not sent (%s)", exc)
        finally:
            entry.sending = False

    async def _run(self) -> None:
        tick_s = self._interval_s / len(self._slots)
        try:
            while True:
                await asyncio.sleep(tick_s)
                if not self._count:
                    return  # the next socket starts the loop again
                slot = self._next_slot
                self._next_slot = (slot + 1) % len(self._slots)
                await self.beat_slot(slot)
        finally:
            self._loop_task = None

    async def close(self) -> None:
        """Stop the loop and the beats on their way."""
        self._closed = True
        tasks = [task for task in (self._loop_task, *self._sending) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
