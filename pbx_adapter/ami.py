"""The AMI link to Asterisk: connect, log in, keep alive, reconnect, snapshot, act.

This is the only module of the project that imports panoramisk. What is taken from it and
what is replaced (panoramisk 1.4, the PyPI release):

- kept: `AMIProtocol.send` (an `Action` is serialised, registered under its ActionID and
  written), `AMIProtocol.handle_message` with `Action.add_message` (responses and the events
  of list actions are matched to the pending action by ActionID and resolve its future),
  and the `Action`/`Message` classes;
- replaced: `data_received`, which decodes each TCP chunk on its own with
  `errors="ignore"` (a Cyrillic CallerIDName split across two reads loses characters): the
  bytes go through our `FrameParser` instead, which decodes whole frames only;
- replaced: `close`, which puts unanswered actions on `Manager.awaiting_actions` for
  `send_awaiting_actions` to send again after the next login (an Originate would dial
  twice): here every unanswered action fails with `AmiNoAnswer` and nothing is ever re-sent.
  Originates are tracked by ActionID; one whose answer was lost is reported with outcome
  `unknown` and a second `originate` with the same ActionID is refused;
- replaced: the `Manager` (connection lifecycle): it reconnects after a fixed delay (cast to
  whole seconds), does not notice a dead link (its Ping answers are never checked), ignores
  a refused Login, and calls back with no ordering against snapshots. `AmiClient.run` does
  the lifecycle itself: jittered exponential backoff, a link is dead when no Ping has been
  answered for `dead_after_s`, a wrong secret stops with `AmiLoginError`, and events are
  held while `on_connected` takes its snapshot.

Single-answer actions are sent with `as_list=False`: panoramisk's list detection takes
"Added interface to queue" for the start of a list (a QueueAdd would never resolve) and
reads a missing `Async` header with `[]` (an Originate without it raises in the reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
import secrets
import socket
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol
from weakref import WeakKeyDictionary

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pbx_adapter.frames import EventFilter, Frame, FrameParser, RejectedFrame

log = logging.getLogger(__name__)

OnFrame = Callable[[Frame, datetime], Awaitable[None]]
"""Called with every event frame, in arrival order, and when it arrived."""
OnConnected = Callable[["AmiClient"], Awaitable[None]]
"""Called after every successful login, before the events that follow it are delivered."""

_ORIGINATES_KEPT = 10_000
_REJECTS_LOGGED = 20


class AmiError(Exception):
    """Something went wrong on the AMI link."""


class AmiLoginError(AmiError):
    """Asterisk refused the username/secret; `run()` stops with it instead of retrying."""


class AmiNotConnected(AmiError):
    """No logged-in link right now: the action was not sent (safe to try again later)."""


class AmiNoAnswer(AmiError):
    """The action was sent but its answer never came (the link died or it timed out):
    whether Asterisk carried it out is unknown."""

    def __init__(self, action_id: str, reason: str) -> None:
        super().__init__(f"no answer to action {action_id}: {reason}")
        self.action_id = action_id
        self.reason = reason


class OriginateOutcome(StrEnum):
    ACCEPTED = "accepted"
    """Asterisk answered Success: the originate is queued (OriginateResponse follows)."""
    REJECTED = "rejected"
    """Asterisk answered Error: nothing was dialled."""
    UNKNOWN = "unknown"
    """The answer was lost: it may or may not dial. It is never sent again."""


@dataclass(frozen=True, slots=True)
class OriginateResult:
    action_id: str
    outcome: OriginateOutcome
    response: Frame | None
    message: str = ""


@dataclass(frozen=True, slots=True)
class AmiHealth:
    """How the AMI link is doing, for health endpoints and metrics."""

    connected: bool
    last_event_at: datetime | None
    events_per_s: float
    """Events received per second over the last `rate_window_s` seconds."""
    reconnects: int
    """Successful logins after the first one."""
    resyncs: int
    """`on_connected` calls (one per login)."""
    frames_rejected: int
    frames_ignored: int
    """Events dropped unread because nothing here reads them (`events` of the client)."""
    originates_sent: int
    originates_unknown: int
    dead_links: int
    """Links dropped because Pings went unanswered for `dead_after_s`."""
    connect_failures: int
    last_error: str


# --------------------------------------------------------------------------- the protocol


class _LinkCallbacks(Protocol):
    """What the protocol tells the client (kept narrow so the protocol stays dumb)."""

    def on_event(self, frame: Frame, arrival: datetime) -> None: ...

    def on_rejected(self, rejected: list[RejectedFrame]) -> None: ...

    def on_ignored(self, count: int) -> None: ...


class _GuardedProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk has no type hints
    """panoramisk's protocol with our byte-level framing and no re-sending of actions."""

    def __init__(self, callbacks: _LinkCallbacks, wanted: EventFilter | None = None) -> None:
        super().__init__()
        self._callbacks = callbacks
        self._parser = FrameParser(wanted=wanted)
        self._raw: dict[str, list[Frame]] = {}
        loop = asyncio.get_running_loop()
        self.banner: asyncio.Future[str] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"
        self.log = log
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        frames = self._parser.feed(data)
        if self._parser.banner_seen and not self.banner.done():
            self.version = self._parser.banner.partition("/")[2].strip()
            self.banner.set_result(self._parser.banner)
        rejected = self._parser.take_rejected()
        if rejected:
            self._callbacks.on_rejected(rejected)
        if self._parser.ignored:
            self._callbacks.on_ignored(self._parser.ignored)
            self._parser.ignored = 0
        if not frames:
            return
        arrival = datetime.now(UTC)
        for frame in frames:
            self._route(frame, arrival)

    def _route(self, frame: Frame, arrival: datetime) -> None:
        action_id = frame.get("ActionID", "")
        if action_id and action_id in self.responses:
            self._raw.setdefault(action_id, []).append(frame)
            try:
                self.handle_message(Message(frame))
            except Exception:  # panoramisk's completion logic must not kill the reader
                log.exception("AMI answer to %s could not be matched", action_id)
                self._fail(action_id, "unreadable answer")
            return
        if "Event" in frame:
            self._callbacks.on_event(frame, arrival)
            if frame["Event"] == "Shutdown":
                self.close()
        elif action_id:
            log.debug("AMI answer to an action nobody waits for: %s", action_id)

    def take_raw(self, action_id: str) -> list[Frame]:
        """The frames that answered `action_id`, as received."""
        return self._raw.pop(action_id, [])

    def forget(self, action_id: str) -> None:
        """Stop waiting for `action_id` (timed out): a late answer is then ignored."""
        self.responses.pop(action_id, None)
        self._raw.pop(action_id, None)

    def _fail(self, action_id: str, reason: str) -> None:
        action = self.responses.pop(action_id, None)
        self._raw.pop(action_id, None)
        if action is not None and not action.future.done():
            action.future.set_exception(AmiNoAnswer(action_id, reason))

    def _fail_all(self, reason: str) -> None:
        for action_id in list(self.responses):
            self._fail(action_id, reason)

    def close(self) -> None:
        # panoramisk queues unanswered actions here to send them again after the next
        # login. Never: fail them, so the caller learns the outcome is unknown.
        self._fail_all("the AMI link closed before the answer")
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Drop the link now (no flush): a dead link."""
        self._fail_all("the AMI link was found dead")
        self.closed = True
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_all("the AMI link was lost")
        if not self.banner.done():
            self.banner.set_exception(ConnectionResetError("closed before the AMI banner"))
            self.banner.exception()  # retrieved: nobody may be waiting any more
        if not self.lost.done():
            self.lost.set_result(None)


# --------------------------------------------------------------------------- the client


class AmiClient(_LinkCallbacks):
    """One AMI connection kept alive: events to `on_frame`, `on_connected` after each login.

    Run it with `await client.run()` (returns after `stop()`, raises `AmiLoginError` on a
    wrong secret); everything else is safe to call from other tasks of the same loop.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        on_frame: OnFrame,
        on_connected: OnConnected | None = None,
        ping_interval_s: float = 5.0,
        dead_after_s: float = 15.0,
        connect_timeout_s: float = 5.0,
        action_timeout_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        rate_window_s: float = 10.0,
        pbx: str = "default",
        registry: CollectorRegistry | None = None,
        seed: int | None = None,
        events: EventFilter | None = None,
    ) -> None:
        for name, value in (
            ("ping_interval_s", ping_interval_s),
            ("dead_after_s", dead_after_s),
            ("connect_timeout_s", connect_timeout_s),
            ("action_timeout_s", action_timeout_s),
            ("backoff_initial_s", backoff_initial_s),
            ("backoff_max_s", backoff_max_s),
            ("rate_window_s", rate_window_s),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value!r}")
        if dead_after_s <= ping_interval_s:
            raise ValueError("dead_after_s must be longer than ping_interval_s")
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self._on_frame = on_frame
        self._wanted = events.including("Shutdown") if events is not None else None
        """Events `on_frame` is given (None: all); `Shutdown` is read here."""
        self._on_connected = on_connected
        self.ping_interval_s = ping_interval_s
        self.dead_after_s = dead_after_s
        self.connect_timeout_s = connect_timeout_s
        self.action_timeout_s = action_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.rate_window_s = rate_window_s
        self.pbx = pbx
        self.banner = ""
        self._served_links = 0
        self._rng = random.Random(seed)  # noqa: S311 - backoff jitter, not a secret
        self._tag = secrets.token_hex(3)
        self._ids = itertools.count(1)
        self._protocol: _GuardedProtocol | None = None
        self._connected = asyncio.Event()
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._running = False
        self._inbox: asyncio.Queue[tuple[Frame, datetime]] = asyncio.Queue()
        self._delivery_open = asyncio.Event()
        self._delivery_open.set()
        self._progress = asyncio.Event()
        self._received = 0
        self._delivered = 0
        self._last_pong = 0.0
        self._originates: OrderedDict[str, OriginateOutcome] = OrderedDict()
        self._rate: deque[list[int]] = deque()
        self._last_event_at: datetime | None = None
        self._logins = 0
        self._resyncs = 0
        self._frames_rejected = 0
        self._frames_ignored = 0
        self._originates_sent = 0
        self._originates_unknown = 0
        self._dead_links = 0
        self._connect_failures = 0
        self._last_error = ""
        self.registry = registry if registry is not None else CollectorRegistry()
        AmiHealthCollector.of(self.registry).add(pbx, lambda: self.health)

    # ----------------------------------------------------------------- state

    @property
    def connected(self) -> bool:
        """True while logged in on a live link."""
        return self._connected.is_set()

    @property
    def health(self) -> AmiHealth:
        return AmiHealth(
            connected=self.connected,
            last_event_at=self._last_event_at,
            events_per_s=self._events_per_s(),
            reconnects=max(0, self._logins - 1),
            resyncs=self._resyncs,
            frames_rejected=self._frames_rejected,
            frames_ignored=self._frames_ignored,
            originates_sent=self._originates_sent,
            originates_unknown=self._originates_unknown,
            dead_links=self._dead_links,
            connect_failures=self._connect_failures,
            last_error=self._last_error,
        )

    async def wait_connected(self, within_s: float | None = None) -> None:
        """Wait until logged in (TimeoutError after `within_s` seconds)."""
        async with asyncio.timeout(within_s):
            await self._connected.wait()

    def originate_outcome(self, action_id: str) -> OriginateOutcome | None:
        """What became of the Originate sent with `action_id` (None: never sent)."""
        return self._originates.get(action_id)

    # ----------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Connect, log in, keep alive and reconnect until `stop()`.

        Raises `AmiLoginError` when Asterisk refuses the credentials: retrying a wrong
        secret would only hammer the PBX (and may get the address banned).
        """
        if self._running:
            raise RuntimeError("AmiClient.run() is already running")
        self._running = True
        self._idle.clear()
        self._stop.clear()
        dispatcher = asyncio.create_task(self._dispatch(), name=f"ami-dispatch-{self.pbx}")
        attempt = 0
        try:
            while not self._stop.is_set():
                loop = asyncio.get_running_loop()
                began = loop.time()
                served_before = self._served_links
                await self._one_link()
                if self._stop.is_set():
                    break
                if self._served_links > served_before or loop.time() - began >= self.backoff_max_s:
                    # The lost link worked (logged in and resynced) or lived a while: come back
                    # at once. Only failing attempts back off, so a PBX that refuses
                    # connections is not hammered, yet a link cut every few seconds is
                    # resynced within the initial delay each time.
                    attempt = 0
                delay = self._backoff(attempt)
                attempt += 1
                log.info("AMI %s:%s: reconnecting in %.2fs", self.host, self.port, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
            # Frames of a link that is gone are not delivered by a later run (an adapter
            # that lost its lease and took it again): that run's resync covers them.
            while not self._inbox.empty():
                self._inbox.get_nowait()
            self._delivered = self._received
            self._running = False
            self._idle.set()

    async def stop(self) -> None:
        """Log off and close; `run()` returns."""
        self._stop.set()
        await self._idle.wait()

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(attempt, 30))
        return ceiling * (0.5 + 0.5 * self._rng.random())

    async def _one_link(self) -> None:
        """One connection from connect to loss; raises only `AmiLoginError` (and
        cancellation): anything else is logged and the caller reconnects."""
        link = asyncio.create_task(self._link(), name=f"ami-link-{self.pbx}")
        stopper = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({link, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not link.done() and not self.connected:
                await _reap(link)  # stop() while connecting or logging in
            else:
                await link
        except AmiLoginError as exc:
            self._last_error = str(exc)
            log.error("AMI %s:%s: %s; not retrying", self.host, self.port, exc)
            raise
        except (OSError, TimeoutError, AmiError) as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.warning("AMI %s:%s: %s", self.host, self.port, self._last_error)
        except Exception as exc:  # a bug must not end the adapter: log it, reconnect
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.exception("AMI %s:%s: unexpected failure", self.host, self.port)
        finally:
            stopper.cancel()
            if not link.done():
                with contextlib.suppress(Exception):
                    await _reap(link)

    async def _link(self) -> None:
        loop = asyncio.get_running_loop()
        protocol: _GuardedProtocol | None = None
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, protocol = await loop.create_connection(
                    lambda: _GuardedProtocol(self, self._wanted), self.host, self.port
                )
                self.banner = await protocol.banner
        except (OSError, TimeoutError):
            self._connect_failures += 1
            if protocol is not None:
                protocol.close()
            raise
        except asyncio.CancelledError:
            if protocol is not None:
                protocol.close()
            raise
        try:
            await self._login(protocol)
            self._protocol = protocol
            self._logins += 1
            self._last_pong = loop.time()
            self._last_error = ""
            self._connected.set()
            log.info("AMI %s:%s: logged in as %s", self.host, self.port, self.username)
            keepalive = asyncio.create_task(self._keepalive(protocol))
            stopper = asyncio.create_task(self._stop.wait())
            try:
                await self._resync(protocol)
                self._served_links += 1
                ends: set[asyncio.Future[Any]] = {protocol.lost, keepalive, stopper}
                await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            finally:
                keepalive.cancel()
                stopper.cancel()
            if self._stop.is_set() and not protocol.closed:
                with contextlib.suppress(AmiError, TimeoutError):
                    await self._request(protocol, {"Action": "Logoff"}, wait_s=1.0)
            elif protocol.lost.done() and not keepalive.done():
                self._last_error = "the AMI link was closed by the other side"
                log.warning("AMI %s:%s: link lost", self.host, self.port)
        finally:
            self._connected.clear()
            self._protocol = None
            protocol.close()

    async def _login(self, protocol: _GuardedProtocol) -> None:
        fields = {
            "Action": "Login",
            "Username": self.username,
            "Secret": self._secret,
            "Events": "on",
        }
        frames = await self._request(protocol, fields, wait_s=self.connect_timeout_s)
        response = frames[0] if frames else {}
        if response.get("Response") != "Success":
            reason = response.get("Message", "") or response.get("Response", "no answer")
            raise AmiLoginError(f"AMI login as {self.username!r} refused: {reason}")

    async def _resync(self, protocol: _GuardedProtocol) -> None:
        """Deliver what came before the login, then run `on_connected` with events held."""
        await self._wait_delivered(self._received)
        self._delivery_open.clear()
        try:
            self._resyncs += 1
            if self._on_connected is not None:
                await self._on_connected(self)
        except Exception as exc:
            self._last_error = f"on_connected failed: {type(exc).__name__}: {exc}"
            if isinstance(exc, AmiError):  # the link went away under the snapshot
                log.warning("AMI %s:%s: %s", self.host, self.port, self._last_error)
            else:
                log.exception("AMI %s:%s: on_connected failed; reconnecting", self.host, self.port)
            protocol.abort()
        finally:
            self._delivery_open.set()

    async def _keepalive(self, protocol: _GuardedProtocol) -> None:
        """Ping every `ping_interval_s`; no answer for `dead_after_s` means a dead link."""
        loop = asyncio.get_running_loop()
        next_ping = loop.time()
        while not protocol.closed:
            now = loop.time()
            if now - self._last_pong > self.dead_after_s:
                self._dead_links += 1
                self._last_error = f"no answer to Ping for {self.dead_after_s:g}s: link dead"
                log.warning("AMI %s:%s: %s", self.host, self.port, self._last_error)
                protocol.abort()
                return
            if now >= next_ping:
                self._ping(protocol)
                next_ping = now + self.ping_interval_s
            wake = min(next_ping, self._last_pong + self.dead_after_s) - now
            await asyncio.sleep(max(wake, 0.01))

    def _ping(self, protocol: _GuardedProtocol) -> None:
        action_id = self._new_id("ping")
        future = protocol.send(Action({"Action": "Ping", "ActionID": action_id}), as_list=False)
        loop = asyncio.get_running_loop()

        def answered(done: asyncio.Future[Any]) -> None:
            protocol.take_raw(action_id)
            if not done.cancelled() and done.exception() is None:
                self._last_pong = loop.time()

        future.add_done_callback(answered)

    # ----------------------------------------------------------------- events

    def on_event(self, frame: Frame, arrival: datetime) -> None:
        self._received += 1
        self._last_event_at = arrival
        second = int(time.monotonic())
        if self._rate and self._rate[-1][0] == second:
            self._rate[-1][1] += 1
        else:
            self._rate.append([second, 1])
            while self._rate and self._rate[0][0] <= second - self.rate_window_s:
                self._rate.popleft()
        self._inbox.put_nowait((frame, arrival))

    def on_rejected(self, rejected: list[RejectedFrame]) -> None:
        for item in rejected:
            if self._frames_rejected < _REJECTS_LOGGED:
                log.warning("AMI frame rejected (%s): %r", item.reason, item.raw[:120])
            self._frames_rejected += 1

    def on_ignored(self, count: int) -> None:
        self._frames_ignored += count

    def _events_per_s(self) -> float:
        now = int(time.monotonic())
        recent = sum(count for second, count in self._rate if second > now - self.rate_window_s)
        return recent / self.rate_window_s

    async def _dispatch(self) -> None:
        while True:
            frame, arrival = await self._inbox.get()
            await self._delivery_open.wait()
            try:
                await self._on_frame(frame, arrival)
            except Exception:
                log.exception("on_frame failed for AMI event %s", frame.get("Event", "?"))
            self._delivered += 1
            self._progress.set()

    async def _wait_delivered(self, count: int) -> None:
        while self._delivered < count:
            self._progress.clear()
            await self._progress.wait()

    # ----------------------------------------------------------------- actions

    async def send_action(self, action: Mapping[str, str], *, wait_s: float | None = None) -> Frame:
        """Send one action and return Asterisk's response frame (Success or Error alike).

        Raises `AmiNotConnected` (not sent) or `AmiNoAnswer` (sent; outcome unknown). An
        `Originate` goes through the same once-only guard as `originate()`.
        """
        fields = _checked(action)
        if fields["Action"].lower() == "originate":
            result = await self._originate(fields, wait_s)
            if result.response is None:
                raise AmiNoAnswer(result.action_id, result.message)
            return result.response
        frames = await self._request(self._require_link(), fields, wait_s=wait_s)
        return frames[0]

    async def send_list_action(
        self, action: Mapping[str, str], *, wait_s: float | None = None
    ) -> list[Frame]:
        """Send an action answered by a list (`EventList: start` ... `...Complete`): the
        response frame followed by every list event, the completion event last."""
        fields = _checked(action)
        return await self._request(self._require_link(), fields, wait_s=wait_s, as_list=True)

    async def snapshot(self, *, wait_s: float | None = None) -> tuple[list[Frame], list[Frame]]:
        """What is live now: the CoreShowChannel events (and CoreShowChannelsComplete), and
        the QueueParams/QueueMember/QueueEntry events (and QueueStatusComplete)."""
        channels, queues = await asyncio.gather(
            self.send_list_action({"Action": "CoreShowChannels"}, wait_s=wait_s),
            self.send_list_action({"Action": "QueueStatus"}, wait_s=wait_s),
        )
        for name, frames in (("CoreShowChannels", channels), ("QueueStatus", queues)):
            first = frames[0] if frames else {}
            if first.get("Response") not in ("Success", None):
                raise AmiError(f"{name} refused: {first.get('Message', '')}")
        return (
            [frame for frame in channels if "Event" in frame],
            [frame for frame in queues if "Event" in frame],
        )

    async def originate(
        self,
        channel: str,
        *,
        exten: str | None = None,
        context: str | None = None,
        priority: str = "1",
        application: str | None = None,
        data: str | None = None,
        caller_id: str | None = None,
        ring_timeout_s: float = 30.0,
        variables: Mapping[str, str] | None = None,
        account: str | None = None,
        action_id: str | None = None,
        wait_s: float | None = None,
    ) -> OriginateResult:
        """Ask Asterisk to call `channel` and connect it to `exten@context` (or to
        `application(data)`); asynchronous on Asterisk's side (`OriginateResponse` arrives
        later as an event with the same ActionID).

        Sent at most once per ActionID, even across reconnects: when the answer is lost the
        outcome is `unknown`, and it is not sent again. Raises `AmiNotConnected` when there
        is no link (nothing was sent).
        """
        fields: dict[str, str] = {"Action": "Originate", "Channel": channel}
        if application is not None:
            fields["Application"] = application
            if data is not None:
                fields["Data"] = data
        else:
            if exten is None or context is None:
                raise ValueError("originate needs exten and context, or an application")
            fields.update(Exten=exten, Context=context, Priority=priority)
        if caller_id is not None:
            fields["CallerID"] = caller_id
        if account is not None:
            fields["Account"] = account
        if variables:
            fields["Variable"] = ",".join(f"{k}={v}" for k, v in variables.items())
        fields["Timeout"] = str(int(ring_timeout_s * 1000))
        fields["Async"] = "true"
        if action_id is not None:
            fields["ActionID"] = action_id
        return await self._originate(_checked(fields), wait_s)

    async def queue_pause(
        self,
        interface: str,
        paused: bool,
        *,
        queue: str | None = None,
        reason: str = "",
        wait_s: float | None = None,
    ) -> Frame:
        """Pause or unpause `interface` in `queue` (every queue it is a member of when None).
        Asterisk's response frame; raises like `send_action`."""
        fields = {
            "Action": "QueuePause",
            "Interface": interface,
            "Paused": "true" if paused else "false",
        }
        if queue:
            fields["Queue"] = queue
        if reason:
            fields["Reason"] = reason
        return await self.send_action(fields, wait_s=wait_s)

    async def queue_add(
        self,
        queue: str,
        interface: str,
        *,
        member_name: str = "",
        penalty: int = 0,
        paused: bool = False,
        wait_s: float | None = None,
    ) -> Frame:
        """Make `interface` a dynamic member of `queue`. Asterisk's response frame."""
        if penalty < 0:
            raise ValueError(f"a queue penalty is never negative, not {penalty}")
        fields = {"Action": "QueueAdd", "Queue": queue, "Interface": interface}
        if member_name:
            fields["MemberName"] = member_name
        fields["Penalty"] = str(penalty)
        fields["Paused"] = "true" if paused else "false"
        return await self.send_action(fields, wait_s=wait_s)

    async def queue_remove(
        self, queue: str, interface: str, *, wait_s: float | None = None
    ) -> Frame:
        """Take `interface` out of `queue` (dynamic members only). Asterisk's response frame."""
        fields = {"Action": "QueueRemove", "Queue": queue, "Interface": interface}
        return await self.send_action(fields, wait_s=wait_s)

    async def _originate(self, fields: dict[str, str], wait_s: float | None) -> OriginateResult:
        action_id = fields.setdefault("ActionID", f"originate-{uuid.uuid4().hex}")
        known = self._originates.get(action_id)
        if known is not None:
            return OriginateResult(action_id, known, None, "already sent once; not sent again")
        protocol = self._require_link()
        self._originates[action_id] = OriginateOutcome.UNKNOWN
        while len(self._originates) > _ORIGINATES_KEPT:
            self._originates.popitem(last=False)
        self._originates_sent += 1
        try:
            frames = await self._request(protocol, fields, wait_s=wait_s)
        except AmiNoAnswer as exc:
            self._originates_unknown += 1
            log.warning("Originate %s: outcome unknown (%s); not re-sent", action_id, exc.reason)
            return OriginateResult(action_id, OriginateOutcome.UNKNOWN, None, exc.reason)
        response = frames[0]
        outcome = (
            OriginateOutcome.ACCEPTED
            if response.get("Response") == "Success"
            else OriginateOutcome.REJECTED
        )
        self._originates[action_id] = outcome
        return OriginateResult(action_id, outcome, response, response.get("Message", ""))

    def _require_link(self) -> _GuardedProtocol:
        protocol = self._protocol
        if protocol is None or protocol.closed or not self.connected:
            raise AmiNotConnected(f"no AMI link to {self.host}:{self.port}")
        return protocol

    async def _request(
        self,
        protocol: _GuardedProtocol,
        fields: Mapping[str, str],
        *,
        wait_s: float | None,
        as_list: bool = False,
    ) -> list[Frame]:
        """Send through panoramisk and wait for the answer frames (never re-sent)."""
        if protocol.closed:
            raise AmiNotConnected(f"no AMI link to {self.host}:{self.port}")
        message = dict(fields)
        action_id = message.setdefault("ActionID", self._new_id(message["Action"].lower()))
        if action_id in protocol.responses:
            raise ValueError(f"ActionID {action_id!r} is already waiting for an answer")
        # as_list=None lets panoramisk follow `EventList: start` to the `...Complete` event
        # (and still resolve on a single Error); False resolves on the first response.
        mode = None if as_list else False
        future = protocol.send(Action(message, as_list=mode), as_list=mode)
        try:
            await asyncio.wait_for(future, wait_s or self.action_timeout_s)
        except TimeoutError:
            raise AmiNoAnswer(action_id, "timed out") from None
        except BaseException:
            protocol.forget(action_id)
            raise
        finally:
            if not future.done() or future.cancelled():
                protocol.forget(action_id)
        return protocol.take_raw(action_id)

    def _new_id(self, kind: str) -> str:
        return f"cc-{self._tag}-{kind}-{next(self._ids)}"


async def _reap(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait for it, without swallowing our own cancellation."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError


def _checked(action: Mapping[str, str]) -> dict[str, str]:
    """A copy of `action`, refusing what would break AMI framing (header injection)."""
    fields = dict(action)
    if not fields.get("Action"):
        raise ValueError("an AMI action needs an 'Action' header")
    for key, value in fields.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"AMI header {key!r} must be a str with a str value")
        if not key or any(c in key for c in ": \r\n"):
            raise ValueError(f"invalid AMI header name {key!r}")
        if "\r" in value or "\n" in value:
            raise ValueError(f"AMI header {key} must not contain a line break")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"AMI header {key} is not valid text") from None
    return fields


# --------------------------------------------------------------------------- metrics


class AmiHealthCollector(Collector):
    """Prometheus metrics read from `AmiHealth` sources at scrape time, one `pbx` label value
    per source (one process may run an adapter per PBX)."""

    _by_registry: ClassVar[WeakKeyDictionary[CollectorRegistry, AmiHealthCollector]] = (
        WeakKeyDictionary()
    )

    def __init__(self, source: Callable[[], AmiHealth] | None = None, pbx: str = "default") -> None:
        self._sources: dict[str, Callable[[], AmiHealth]] = {}
        if source is not None:
            self.add(pbx, source)

    @classmethod
    def of(cls, registry: CollectorRegistry) -> AmiHealthCollector:
        """The registry's collector (a metric name may be registered only once per registry)."""
        collector = cls._by_registry.get(registry)
        if collector is None:
            collector = cls._by_registry[registry] = cls()
            registry.register(collector)
        return collector

    def add(self, pbx: str, source: Callable[[], AmiHealth]) -> None:
        """Report `source` as `pbx` (a newer client of the same PBX replaces the older one)."""
        self._sources[pbx] = source

    def describe(self) -> Iterable[Metric]:
        return self._families({})

    def collect(self) -> Iterable[Metric]:
        return self._families({pbx: source() for pbx, source in self._sources.items()})

    @staticmethod
    def _families(healths: Mapping[str, AmiHealth]) -> Iterable[Metric]:
        for name, doc, kind, read in _HEALTH_METRICS:
            family_type = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
            family = family_type(name, doc, labels=["pbx"])
            for pbx, health in healths.items():
                family.add_metric([pbx], float(read(health)))
            yield family


def _last_event(health: AmiHealth) -> float:
    return health.last_event_at.timestamp() if health.last_event_at else 0.0


_HEALTH_METRICS: tuple[tuple[str, str, str, Callable[[AmiHealth], float]], ...] = (
    ("callcenter_ami_connected", "1 while logged in to AMI.", "gauge", lambda h: h.connected),
    (
        "callcenter_ami_last_event_timestamp_seconds",
        "When the last AMI event arrived (0: never).",
        "gauge",
        _last_event,
    ),
    (
        "callcenter_ami_events_per_second",
        "AMI events received per second, recent window.",
        "gauge",
        lambda h: h.events_per_s,
    ),
    (
        "callcenter_ami_reconnects",
        "Successful AMI logins after the first.",
        "counter",
        lambda h: h.reconnects,
    ),
    (
        "callcenter_ami_resyncs",
        "Snapshots taken after a (re)connect.",
        "counter",
        lambda h: h.resyncs,
    ),
    (
        "callcenter_ami_frames_rejected",
        "Malformed AMI frames.",
        "counter",
        lambda h: h.frames_rejected,
    ),
    (
        "callcenter_ami_frames_ignored",
        "AMI events dropped unparsed: nothing reads them.",
        "counter",
        lambda h: h.frames_ignored,
    ),
    (
        "callcenter_ami_originates_sent",
        "Originate actions sent.",
        "counter",
        lambda h: h.originates_sent,
    ),
    (
        "callcenter_ami_originates_unknown",
        "Originates whose answer was lost (never re-sent).",
        "counter",
        lambda h: h.originates_unknown,
    ),
    (
        "callcenter_ami_dead_links",
        "Links dropped for unanswered Pings.",
        "counter",
        lambda h: h.dead_links,
    ),
    (
        "callcenter_ami_connect_failures",
        "Failed TCP connects to AMI.",
        "counter",
        lambda h: h.connect_failures,
    ),
)


def render_metrics(source: AmiClient | AmiHealth, *, pbx: str = "default") -> bytes:
    """Prometheus text exposition of a client's registry, or of one `AmiHealth` value (in a
    registry of its own)."""
    if isinstance(source, AmiClient):
        return generate_latest(source.registry)
    registry = CollectorRegistry()
    registry.register(AmiHealthCollector(lambda: source, pbx))
    return generate_latest(registry)
