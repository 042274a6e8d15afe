"""A real TCP AMI server that behaves like the lab Asterisk, for tests, demos and load.

`AmiSimulator` speaks AMI over asyncio TCP: the `Asterisk Call Manager/9.0.0` banner, Login
(credentials checked), Ping, Logoff, Events, CoreShowChannels and QueueStatus (answered from
what it has emitted so far), QueuePause/QueueAdd/QueueRemove and Originate. Every action it
receives is recorded in `actions`.

Where events come from:

- replay: the Event frames of a recorded stream (`tests/fixtures/ami/*.ami`), at the
  recorded pace (`speed=1`), faster or slower (`speed=X`), or as fast as possible
  (`speed=None`). The replay cursor only moves while a client is logged in (and not
  stalled), so after a cut the next login resumes where it stopped; frames written into a
  connection that was dying may be lost, as with a real PBX;
- generation: inbound calls into queues at `rate` calls/s, with the event shapes of the
  recordings (IAX2 trunk channel, QueueCallerJoin, Local/10x@agents legs, AgentCalled,
  AgentConnect, AgentComplete, Hangup, ...), callers in mixed number formats and Cyrillic
  names, and the queues/agents of `queues`;
- by hand: `ring(agent, number, name)`, `answer(linkedid)`, `hangup(linkedid)`,
  `start_call(...)`, `emit(frame, split_at=...)` and `send_raw(bytes, split_at=...)`.

Fault injection: `cut()` resets the TCP connections, `stall(seconds)` stops reading and
answering on the connections open now (the sockets stay open), `restart()` drops everything
(connections, channels, queue callers), `cut_on_next(action)`/`ignore_next(action)` lose the
answer to the next such action. Writes can be split at given byte offsets (`split_at`), to
put a UTF-8 character across two TCP segments.

Run it alone: `python -m pbx_adapter.simulator --port 5038 --replay FILE --speed 2`
or `--rate 0.5`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import math
import os
import random
import secrets
import signal
import socket
import struct
import time
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pbx_adapter.frames import CLIENT_KINDS, FrameParser, serialize_frame

log = logging.getLogger(__name__)

Frame = dict[str, str]

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
MONITOR_DIR = "/var/spool/asterisk/monitor"
TRUNK_PREFIX = "IAX2/127.0.0.1:4570-"
TRUNK_CONTEXT = "trunk-in"
AGENT_CONTEXT = "agents"
_BACKLOG_HIGH = 256
"""Replay waits while a client's write queue holds more frames than this."""

_STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
_PRIVILEGE = {
    "Newexten": "dialplan,all",
    "VarSet": "dialplan,all",
    "QueueCallerJoin": "agent,all",
    "QueueCallerLeave": "agent,all",
    "QueueCallerAbandon": "agent,all",
    "AgentCalled": "agent,all",
    "AgentConnect": "agent,all",
    "AgentComplete": "agent,all",
    "AgentRingNoAnswer": "agent,all",
    "QueueMemberStatus": "agent,all",
    "QueueMemberPause": "agent,all",
    "QueueMemberAdded": "agent,all",
    "QueueMemberRemoved": "agent,all",
    "FullyBooted": "system,all",
}
_DEVICE_STATUS = {"NOT_INUSE": "1", "INUSE": "2", "RINGING": "6"}

CALLER_NAMES = (
    "Наталья Щукина-Львова",
    "ИП Горбунов",
    "Иван Петров",
    "Мария Сидорова",
    "Алексей Кузнецов",
    "ООО Ромашка",
    "Ёлкин Пётр",
    "John O'Brien",
    "Anna Smith",
    "",
)
CallerFormat = Literal["plus", "seven", "eight", "ten", "local", "foreign", "anonymous"]
CALLER_FORMATS: tuple[CallerFormat, ...] = (
    "plus",
    "seven",
    "eight",
    "ten",
    "local",
    "foreign",
    "anonymous",
)
_FOREIGN = ("+442079460958", "+380441234567", "+4930901820", "+33142685300", "+12125550100")


# --------------------------------------------------------------------------- replay


def load_replay(path: Path | str) -> list[Frame]:
    """The Event frames of a recorded stream (its banner and responses are skipped)."""
    parser = FrameParser()
    frames = parser.feed(Path(path).read_bytes())
    return [frame for frame in frames if "Event" in frame]


def replay_schedule(frames: Sequence[Mapping[str, str]], speed: float | None) -> list[float]:
    """When each frame is due, in seconds after the first, at `speed` (None: all at once).

    Times come from the frames' `Timestamp`; a frame without one is due with the frame
    before it, and time never runs backwards.
    """
    if speed is not None and (not math.isfinite(speed) or speed < 0):
        raise ValueError(f"speed must be a positive number or None, not {speed!r}")
    offsets: list[float] = []
    first: float | None = None
    latest = 0.0
    for frame in frames:
        stamp = _timestamp(frame)
        if stamp is not None:
            if first is None:
                first = stamp
            latest = max(latest, stamp - first)
        offsets.append(0.0 if not speed else latest / speed)
    return offsets


def _timestamp(frame: Mapping[str, str]) -> float | None:
    try:
        value = float(frame.get("Timestamp", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One queue of the simulated PBX and its static members (`Local/101@agents` ...)."""

    name: str
    did: str
    members: tuple[str, ...]
    strategy: Literal["rrmemory", "ringall"] = "rrmemory"
    timeout_s: float = 45.0
    """The queue gives up on a caller after this long (QUEUESTATUS=TIMEOUT)."""
    servicelevel_s: int = 20


DEFAULT_QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec("support", "8001", ("Local/101@agents", "Local/102@agents", "Local/103@agents")),
    QueueSpec(
        "sales",
        "8004",
        ("Local/104@agents", "Local/105@agents", "Local/106@agents"),
        strategy="ringall",
        timeout_s=40.0,
        servicelevel_s=30,
    ),
)


@dataclass(frozen=True, slots=True)
class CallTiming:
    """How generated calls behave; every duration is multiplied by `scale` (tests: 0.01)."""

    scale: float = 1.0
    ring_s: tuple[float, float] = (2.0, 4.0)
    """An agent who answers rings this long first."""
    talk_s: tuple[float, float] = (6.0, 14.0)
    patience_s: tuple[float, float] = (20.0, 120.0)
    """A caller waiting in a queue hangs up after this long."""
    ring_timeout_s: float = 8.0
    """A queue member rings at most this long (then AgentRingNoAnswer)."""
    answer_probability: float = 0.85
    agent_hangs_up_probability: float = 0.5
    max_calls: int = 200
    """Generation skips new calls while this many are in progress."""

    def pick(self, rng: random.Random, bounds: tuple[float, float]) -> float:
        low, high = bounds
        return rng.uniform(low, high) * self.scale

    def scaled(self, seconds: float) -> float:
        return seconds * self.scale


def member_name(interface: str) -> str:
    """`Local/101@agents` → `Оператор 101`, as the lab PBX names its members."""
    return f"Оператор {_extension(interface)}"


def _extension(interface: str) -> str:
    tail = interface.split("/", 1)[-1]
    return tail.split("@", 1)[0].split("-", 1)[0]


def random_caller(rng: random.Random, kind: CallerFormat | None = None) -> tuple[str, str]:
    """A caller number written one of the ways carriers present them, and a caller name."""
    chosen: CallerFormat = rng.choice(CALLER_FORMATS) if kind is None else kind
    subscriber = f"9{rng.randrange(10**8, 10**9)}"
    number = {
        "plus": f"+7{subscriber}",
        "seven": f"7{subscriber}",
        "eight": f"8{subscriber}",
        "ten": subscriber,
        "local": str(rng.randrange(2_000_000, 10_000_000)),
        "foreign": rng.choice(_FOREIGN),
        "anonymous": "anonymous",
    }[chosen]
    name = "" if chosen == "anonymous" else rng.choice(CALLER_NAMES)
    return number, name


# --------------------------------------------------------------------------- the live model


@dataclass(slots=True)
class _LiveChannel:
    fields: dict[str, str]
    born: float
    application: str = ""
    application_data: str = ""
    bridge: str = ""


@dataclass(slots=True)
class _Waiting:
    queue: str
    uniqueid: str
    joined: float


class _LiveModel:
    """What is alive according to the frames emitted so far (what Asterisk would list)."""

    _CHANNEL_KEYS = (
        "Channel",
        "ChannelState",
        "ChannelStateDesc",
        "CallerIDNum",
        "CallerIDName",
        "ConnectedLineNum",
        "ConnectedLineName",
        "Language",
        "AccountCode",
        "Context",
        "Exten",
        "Priority",
        "Uniqueid",
        "Linkedid",
    )

    def __init__(self, queues: Iterable[QueueSpec]) -> None:
        self.specs = {spec.name: spec for spec in queues}
        self.channels: dict[str, _LiveChannel] = {}
        self.waiting: list[_Waiting] = []
        self.members: dict[tuple[str, str], dict[str, str]] = {}
        self.completed: dict[str, int] = {}
        self.abandoned: dict[str, int] = {}
        self._stream_time = 0.0
        self._wall_at_stream_time = time.monotonic()
        self.seed_members()

    def seed_members(self) -> None:
        """The static members of the configured queues, as at PBX start."""
        login = str(int(time.time()))
        for spec in self.specs.values():
            for interface in spec.members:
                self.members[(spec.name, interface)] = _member_fields(
                    spec.name, interface, member_name(interface), login_time=login
                )

    def clear(self) -> None:
        """A PBX restart: no channel, no caller; members as configured."""
        self.channels.clear()
        self.waiting.clear()
        self.members.clear()
        self.seed_members()

    def now(self) -> float:
        """The stream's clock: the latest Timestamp seen, moved on by wall time since."""
        return self._stream_time + (time.monotonic() - self._wall_at_stream_time)

    def observe(self, frame: Mapping[str, str]) -> None:
        event = frame.get("Event", "")
        stamp = _timestamp(frame)
        if stamp is not None:
            self._stream_time = stamp
            self._wall_at_stream_time = time.monotonic()
        if event.startswith("QueueMember"):
            self._observe_member(event, frame)
            return
        uid = frame.get("Uniqueid", "")
        if event == "Newchannel" and uid:
            self.channels[uid] = _LiveChannel({}, stamp if stamp is not None else self.now())
        live = self.channels.get(uid)
        if live is None:
            return
        if event == "Hangup":
            del self.channels[uid]
            self.waiting = [w for w in self.waiting if w.uniqueid != uid]
            return
        for key in self._CHANNEL_KEYS:
            if key in frame and not (event.startswith("Bridge") and key == "Exten"):
                live.fields[key] = frame[key]
        if event == "Newexten":
            live.application = frame.get("Application", "")
            live.application_data = frame.get("AppData", "")
        elif event == "BridgeEnter":
            live.bridge = frame.get("BridgeUniqueid", "")
        elif event == "BridgeLeave":
            live.bridge = ""
        elif event == "QueueCallerJoin":
            joined = stamp if stamp is not None else self.now()
            self.waiting.append(_Waiting(frame.get("Queue", ""), uid, joined))
        elif event in ("QueueCallerLeave", "QueueCallerAbandon"):
            if event == "QueueCallerAbandon":
                queue = frame.get("Queue", "")
                self.abandoned[queue] = self.abandoned.get(queue, 0) + 1
            self.waiting = [w for w in self.waiting if w.uniqueid != uid]
        elif event == "AgentComplete":
            queue = frame.get("Queue", "")
            self.completed[queue] = self.completed.get(queue, 0) + 1

    def _observe_member(self, event: str, frame: Mapping[str, str]) -> None:
        key = (frame.get("Queue", ""), frame.get("Interface", ""))
        if not all(key):
            return
        if event == "QueueMemberRemoved":
            self.members.pop(key, None)
            return
        fields = self.members.setdefault(
            key, _member_fields(key[0], key[1], frame.get("MemberName", ""))
        )
        for name, value in frame.items():
            if name not in ("Event", "Privilege", "Timestamp"):
                fields[name] = value

    def queue_position(self, queue: str, uniqueid: str) -> int:
        mine = [w.uniqueid for w in self.waiting if w.queue == queue]
        return mine.index(uniqueid) + 1 if uniqueid in mine else len(mine) + 1

    def queue_count(self, queue: str) -> int:
        return sum(1 for w in self.waiting if w.queue == queue)

    def member(self, queue: str, interface: str) -> dict[str, str] | None:
        return self.members.get((queue, interface))

    def queues(self) -> list[str]:
        names = set(self.specs) | {q for q, _ in self.members} | {w.queue for w in self.waiting}
        return sorted(name for name in names if name)

    def core_show_channels(self, action_id: str) -> list[Frame]:
        now = self.now()
        frames: list[Frame] = []
        for live in self.channels.values():
            frame: Frame = {"Event": "CoreShowChannel"}
            if action_id:
                frame["ActionID"] = action_id
            frame.update({key: live.fields.get(key, "") for key in self._CHANNEL_KEYS})
            frame["Application"] = live.application
            frame["ApplicationData"] = live.application_data
            frame["Duration"] = _duration(now - live.born)
            frame["BridgeId"] = live.bridge
            frames.append(frame)
        complete: Frame = {"Event": "CoreShowChannelsComplete"}
        if action_id:
            complete["ActionID"] = action_id
        complete.update({"EventList": "Complete", "ListItems": str(len(frames))})
        return [*frames, complete]

    def queue_status(self, action_id: str, only_queue: str = "") -> list[Frame]:
        now = self.now()
        frames: list[Frame] = []
        aid = {"ActionID": action_id} if action_id else {}
        for queue in self.queues():
            if only_queue and queue != only_queue:
                continue
            spec = self.specs.get(queue)
            frames.append(
                {
                    "Event": "QueueParams",
                    "Queue": queue,
                    "Max": "0",
                    "Strategy": spec.strategy if spec else "ringall",
                    "Calls": str(self.queue_count(queue)),
                    "Holdtime": "0",
                    "TalkTime": "0",
                    "Completed": str(self.completed.get(queue, 0)),
                    "Abandoned": str(self.abandoned.get(queue, 0)),
                    "ServiceLevel": str(spec.servicelevel_s if spec else 0),
                    "ServicelevelPerf": "0.0",
                    "ServicelevelPerf2": "0.0",
                    "Weight": "0",
                    **aid,
                }
            )
            for (member_queue, interface), fields in sorted(self.members.items()):
                if member_queue != queue:
                    continue
                frames.append(
                    {
                        "Event": "QueueMember",
                        "Queue": queue,
                        "Name": fields.get("MemberName", ""),
                        "Location": interface,
                        "StateInterface": fields.get("StateInterface", interface),
                        "Membership": fields.get("Membership", "static"),
                        "Penalty": fields.get("Penalty", "0"),
                        "CallsTaken": fields.get("CallsTaken", "0"),
                        "LastCall": fields.get("LastCall", "0"),
                        "LastPause": fields.get("LastPause", "0"),
                        "LoginTime": fields.get("LoginTime", "0"),
                        "InCall": fields.get("InCall", "0"),
                        "Status": fields.get("Status", "1"),
                        "Paused": fields.get("Paused", "0"),
                        "PausedReason": fields.get("PausedReason", ""),
                        "Wrapuptime": fields.get("Wrapuptime", "0"),
                        **aid,
                    }
                )
            position = 0
            for waiting in self.waiting:
                if waiting.queue != queue or waiting.uniqueid not in self.channels:
                    continue
                position += 1
                live = self.channels[waiting.uniqueid].fields
                frames.append(
                    {
                        "Event": "QueueEntry",
                        "Queue": queue,
                        "Position": str(position),
                        "Channel": live.get("Channel", ""),
                        "Uniqueid": waiting.uniqueid,
                        "CallerIDNum": live.get("CallerIDNum", ""),
                        "CallerIDName": live.get("CallerIDName", ""),
                        "ConnectedLineNum": live.get("ConnectedLineNum", ""),
                        "ConnectedLineName": live.get("ConnectedLineName", ""),
                        "Wait": str(max(0, int(now - waiting.joined))),
                        "Priority": "0",
                        **aid,
                    }
                )
        complete: Frame = {
            "Event": "QueueStatusComplete",
            **aid,
            "EventList": "Complete",
            "ListItems": str(len(frames)),
        }
        return [*frames, complete]


def _member_fields(
    queue: str, interface: str, name: str, *, login_time: str = "0"
) -> dict[str, str]:
    return {
        "Queue": queue,
        "MemberName": name,
        "Interface": interface,
        "StateInterface": interface,
        "Membership": "static",
        "Penalty": "0",
        "CallsTaken": "0",
        "LastCall": "0",
        "LastPause": "0",
        "LoginTime": login_time,
        "InCall": "0",
        "Status": "1",
        "Paused": "0",
        "PausedReason": "",
        "Ringinuse": "0",
        "Wrapuptime": "0",
    }


def _duration(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


# --------------------------------------------------------------------------- calls


@dataclass(slots=True)
class _Chan:
    """One simulated channel and the header block AMI prints for it."""

    name: str
    uniqueid: str
    linkedid: str
    state: int
    caller_num: str
    caller_name: str
    context: str
    exten: str
    connected_num: str = "<unknown>"
    connected_name: str = "<unknown>"
    priority: int = 1

    def block(self, prefix: str = "") -> Frame:
        return {
            f"{prefix}Channel": self.name,
            f"{prefix}ChannelState": str(self.state),
            f"{prefix}ChannelStateDesc": _STATE_DESC.get(self.state, "Unknown"),
            f"{prefix}CallerIDNum": self.caller_num,
            f"{prefix}CallerIDName": self.caller_name,
            f"{prefix}ConnectedLineNum": self.connected_num,
            f"{prefix}ConnectedLineName": self.connected_name,
            f"{prefix}Language": "ru",
            f"{prefix}AccountCode": "",
            f"{prefix}Context": self.context,
            f"{prefix}Exten": self.exten,
            f"{prefix}Priority": str(self.priority),
            f"{prefix}Uniqueid": self.uniqueid,
            f"{prefix}Linkedid": self.linkedid,
        }


@dataclass(slots=True)
class _Leg:
    """The channel(s) a call dials towards one agent: a Local pair, or one device channel."""

    interface: str
    one: _Chan
    two: _Chan | None
    started: float
    decide_at: float = math.inf
    answers: bool = False


@dataclass(slots=True)
class _Call:
    linkedid: str
    caller: _Chan
    did: str
    queue: str | None
    started: float = field(default_factory=time.monotonic)
    joined: float = 0.0
    original_position: int = 0
    ringing: dict[str, _Leg] = field(default_factory=dict)
    connected: _Leg | None = None
    connected_at: float = 0.0
    """time.monotonic() of the answer."""
    bridge: str = ""
    ended: bool = False
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


# --------------------------------------------------------------------------- sessions


@dataclass(slots=True)
class _Out:
    data: bytes
    split_at: tuple[int, ...] = ()
    done: asyncio.Event | None = None


@dataclass(eq=False, slots=True)
class _Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str
    parser: FrameParser = field(
        default_factory=lambda: FrameParser(banner_seen=True, kinds=CLIENT_KINDS)
    )
    out: asyncio.Queue[_Out | None] = field(default_factory=asyncio.Queue)
    logged_in: bool = False
    events_on: bool = True
    stalled_until: float = 0.0
    closed: bool = False
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    handler: asyncio.Task[None] | None = None
    writer_task: asyncio.Task[None] | None = None

    def stalled(self) -> bool:
        return time.monotonic() < self.stalled_until

    def send(
        self, data: bytes, split_at: Sequence[int] = (), done: asyncio.Event | None = None
    ) -> None:
        """Queue bytes for this client (in order; split writes stay whole frames)."""
        if self.closed:
            if done is not None:
                done.set()
            return
        self.out.put_nowait(_Out(data, tuple(split_at), done))


Fault = Literal["cut", "ignore"]


class AmiSimulator:
    """An asyncio AMI server: replays, generates, answers actions, and fails on request."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "crm",
        secret: str = "simulator",  # noqa: S107 - a test double; callers pass their own
        *,
        replay: Path | str | Sequence[Mapping[str, str]] | None = None,
        speed: float | None = 1.0,
        rate: float | None = None,
        queues: Sequence[QueueSpec] | None = None,
        timing: CallTiming | None = None,
        seed: int | None = None,
        chunk_gap_s: float = 0.02,
        callers: Sequence[str] = (),
        known_caller_share: float = 0.6,
    ) -> None:
        if rate is not None and (not math.isfinite(rate) or rate <= 0):
            raise ValueError(f"rate must be a positive number of calls/s, not {rate!r}")
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self.speed = speed if speed else None
        self.rate = rate
        self.timing = timing or CallTiming()
        self.chunk_gap_s = chunk_gap_s
        self.callers = list(callers)
        """Numbers generated calls come from this share of the time (a demo's known clients)."""
        self.known_caller_share = known_caller_share
        self.actions: list[dict[str, str]] = []
        """Every action received, in order (Login and Ping included)."""
        if isinstance(replay, (str, Path)):
            self._replay: list[Frame] = load_replay(replay)
        else:
            self._replay = [dict(frame) for frame in replay or ()]
        self.queue_specs: tuple[QueueSpec, ...] = tuple(
            queues if queues is not None else (() if self._replay else DEFAULT_QUEUES)
        )
        self._schedule = replay_schedule(self._replay, self.speed)
        self._cursor = 0
        self.replay_done = asyncio.Event()
        if not self._replay:
            self.replay_done.set()
        self._rng = random.Random(seed)  # noqa: S311 - simulated traffic, not secrets
        self.model = _LiveModel(self.queue_specs)
        self.events_emitted = 0
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._calls: dict[str, _Call] = {}
        self._busy: set[str] = set()
        self._rr_next: dict[str, int] = {}
        self._faults: dict[str, Fault] = {}
        self._active = asyncio.Event()
        self._seq = itertools.count(1)
        self._local_seq = itertools.count(0)
        self._trunk_seq = itertools.count(self._rng.randrange(1000, 9000))
        self._last_stamp = 0.0
        self._booted = time.time()

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Listen (an ephemeral port when `port` is 0; see `port` afterwards)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        if self._replay:
            self._spawn(self._replay_loop(), "ami-sim-replay")
        if self.rate:
            self._spawn(self._generate_loop(self.rate), "ami-sim-generate")
        log.info("AMI simulator listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Close the listener and every connection; stop replay and generation."""
        if self._server is not None:
            self._server.close()
        sessions = list(self._sessions)
        handlers = [s.handler for s in sessions if s.handler is not None]
        for session in sessions:
            self._close(session)
        tasks = [*self._tasks, *(c.task for c in self._calls.values() if c.task)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> AmiSimulator:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Run until cancelled (the command line)."""
        await self.start()
        mode = f"replaying {len(self._replay)} events" if self._replay else "idle"
        if self.rate:
            mode = f"generating {self.rate:g} calls/s"
        print(f"AMI simulator on {self.host}:{self.port}, {mode}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # ----------------------------------------------------------------- observation

    @property
    def logged_in(self) -> int:
        """How many clients are logged in now."""
        return sum(1 for s in self._sessions if s.logged_in and not s.closed)

    @property
    def replay_position(self) -> int:
        """How many replay frames have been emitted."""
        return self._cursor

    @property
    def replay_total(self) -> int:
        return len(self._replay)

    @property
    def calls_in_progress(self) -> int:
        return len(self._calls)

    async def wait_logged_in(self, count: int = 1, within_s: float = 5.0) -> None:
        """Wait until `count` clients are logged in (TimeoutError after `within_s`)."""
        async with asyncio.timeout(within_s):
            while self.logged_in < count:  # noqa: ASYNC110 - a test helper; polling is fine
                await asyncio.sleep(0.01)

    def live_channels(self) -> list[Frame]:
        """The channels alive now, as CoreShowChannel frames."""
        return self.model.core_show_channels("")[:-1]

    # ----------------------------------------------------------------- faults

    def cut(self) -> None:
        """Reset every client connection (RST), as a network failure would."""
        for session in list(self._sessions):
            self._close(session, reset=True)

    def stall(self, seconds: float) -> None:
        """Stop reading and answering on the connections open now; the sockets stay open."""
        until = time.monotonic() + seconds
        for session in self._sessions:
            session.stalled_until = until
        self._update_active()
        self._spawn(self._end_stall(seconds), "ami-sim-stall")

    def restart(self) -> None:
        """Drop every connection and forget every channel and queue caller (a PBX restart)."""
        for session in list(self._sessions):
            self._close(session, reset=True)
        for call in list(self._calls.values()):
            call.ended = True
            if call.task is not None:
                call.task.cancel()
        self._calls.clear()
        self._busy.clear()
        self.model.clear()
        self._booted = time.time()

    def cut_on_next(self, action: str) -> None:
        """Record the next `action` received, then reset the connection without answering."""
        self._faults[action.lower()] = "cut"

    def ignore_next(self, action: str) -> None:
        """Record the next `action` received and never answer it."""
        self._faults[action.lower()] = "ignore"

    # ----------------------------------------------------------------- raw emission

    async def emit(self, frame: Mapping[str, str], split_at: Sequence[int] = ()) -> None:
        """Send one event to every logged-in client now, written in chunks cut at `split_at`
        (byte offsets into the frame); returns once it is written."""
        self.model.observe(frame)
        self.events_emitted += 1
        await self._deliver(serialize_frame(dict(frame)), split_at)

    async def send_raw(self, data: bytes, split_at: Sequence[int] = ()) -> None:
        """Write arbitrary bytes (garbage, partial frames) to every logged-in client."""
        await self._deliver(data, split_at)

    async def _deliver(self, data: bytes, split_at: Sequence[int]) -> None:
        waits: list[asyncio.Event] = []
        for session in self._event_sessions(include_stalled=True):
            done = asyncio.Event()
            session.send(data, split_at, done)
            waits.append(done)
        for done in waits:
            await done.wait()

    def _publish(self, frame: Frame) -> None:
        self.model.observe(frame)
        self.events_emitted += 1
        data = serialize_frame(frame)
        for session in self._event_sessions(include_stalled=True):
            session.send(data)

    def _event_sessions(self, *, include_stalled: bool) -> list[_Session]:
        return [
            s
            for s in self._sessions
            if s.logged_in and s.events_on and not s.closed and (include_stalled or not s.stalled())
        ]

    # ----------------------------------------------------------------- connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        session = _Session(reader, writer, str(peer))
        session.handler = asyncio.current_task()
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sessions.add(session)
        session.writer_task = asyncio.create_task(self._write_loop(session))
        session.send(BANNER)
        try:
            while not session.closed:
                await self._wait_unstalled(session)
                data = await reader.read(65536)
                if not data:
                    break
                await self._wait_unstalled(session)
                for action in session.parser.feed(data):
                    if session.closed:
                        break
                    self._handle_action(session, action)
                for rejected in session.parser.take_rejected():
                    log.debug("simulator: not an action from %s: %s", peer, rejected.reason)
        except (ConnectionError, OSError):
            pass
        finally:
            self._close(session)
            if session.writer_task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await session.writer_task

    async def _write_loop(self, session: _Session) -> None:
        writer = session.writer
        try:
            while True:
                item = await session.out.get()
                if item is None:
                    return
                try:
                    await self._wait_unstalled(session)
                    for index, chunk in enumerate(_chunks(item.data, item.split_at)):
                        if index:
                            await asyncio.sleep(self.chunk_gap_s)
                        if session.closed:
                            break
                        writer.write(chunk)
                        await writer.drain()
                finally:
                    if item.done is not None:
                        item.done.set()
        except (ConnectionError, OSError):
            self._close(session)
        finally:
            while not session.out.empty():
                pending = session.out.get_nowait()
                if pending is not None and pending.done is not None:
                    pending.done.set()

    async def _wait_unstalled(self, session: _Session) -> None:
        remaining = session.stalled_until - time.monotonic()
        if remaining > 0 and not session.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.gone.wait(), remaining)

    async def _end_stall(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._update_active()

    def _close(self, session: _Session, *, reset: bool = False) -> None:
        if session.closed:
            return
        session.closed = True
        session.gone.set()
        session.logged_in = False
        self._sessions.discard(session)
        transport = session.writer.transport
        if reset:
            sock = session.writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        session.out.put_nowait(None)
        self._update_active()

    def _update_active(self) -> None:
        if self._event_sessions(include_stalled=False):
            self._active.set()
        else:
            self._active.clear()

    # ----------------------------------------------------------------- actions

    def _handle_action(self, session: _Session, action: Frame) -> None:
        self.actions.append(dict(action))
        try:
            self._answer_action(session, action)
        except Exception:  # a simulator bug must not take the connection down
            log.exception("simulator: action %s failed", action.get("Action", "?"))
            self._respond(session, action.get("ActionID", ""), "Error", Message="Internal error")

    def _answer_action(self, session: _Session, action: Frame) -> None:
        name = action.get("Action", "").lower()
        fault = self._faults.pop(name, None)
        if fault == "cut":
            self._close(session, reset=True)
            return
        if fault == "ignore":
            return
        aid = action.get("ActionID", "")
        if name == "login":
            self._login(session, action, aid)
        elif name == "logoff":
            self._respond(session, aid, "Goodbye", Message="Thanks for all the fish.")
            self._spawn(self._close_after_flush(session), "ami-sim-logoff")
        elif not session.logged_in:
            self._respond(session, aid, "Error", Message="Permission denied")
        elif name == "ping":
            self._respond(session, aid, "Success", Ping="Pong", Timestamp=f"{time.time():.6f}")
        elif name == "events":
            mask = action.get("EventMask", "on").lower()
            session.events_on = mask not in ("off", "none", "")
            self._respond(session, aid, "Success", Events="On" if session.events_on else "Off")
            self._update_active()
        elif name == "coreshowchannels":
            self._respond(
                session, aid, "Success", EventList="start", Message="Channels will follow"
            )
            self._send_frames(session, self.model.core_show_channels(aid))
        elif name == "queuestatus":
            self._respond(
                session, aid, "Success", EventList="start", Message="Queue status will follow"
            )
            self._send_frames(session, self.model.queue_status(aid, action.get("Queue", "")))
        elif name == "queuepause":
            self._queue_pause(session, action, aid)
        elif name == "queueadd":
            self._queue_add(session, action, aid)
        elif name == "queueremove":
            self._queue_remove(session, action, aid)
        elif name == "originate":
            self._originate(session, action, aid)
        else:
            self._respond(session, aid, "Error", Message="Invalid/unknown command")

    def _respond(self, session: _Session, aid: str, response: str, **fields: str) -> None:
        frame: Frame = {"Response": response}
        if aid:
            frame["ActionID"] = aid
        frame.update(fields)
        session.send(serialize_frame(frame))

    def _send_frames(self, session: _Session, frames: Iterable[Frame]) -> None:
        session.send(b"".join(serialize_frame(frame) for frame in frames))

    async def _close_after_flush(self, session: _Session) -> None:
        done = asyncio.Event()
        session.send(b"", (), done)
        await done.wait()
        self._close(session)

    def _login(self, session: _Session, action: Frame, aid: str) -> None:
        user_ok = secrets.compare_digest(
            action.get("Username", "").encode(), self.username.encode()
        )
        secret_ok = secrets.compare_digest(action.get("Secret", "").encode(), self._secret.encode())
        if not (user_ok and secret_ok):
            self._respond(session, aid, "Error", Message="Authentication failed")
            return
        session.logged_in = True
        session.events_on = action.get("Events", "on").lower() not in ("off", "none")
        self._respond(session, aid, "Success", Message="Authentication accepted")
        uptime = str(max(0, int(time.time() - self._booted)))
        booted: Frame = {
            "Event": "FullyBooted",
            "Privilege": "system,all",
            "Uptime": uptime,
            "LastReload": uptime,
            "Status": "Fully Booted",
        }
        if session.events_on:
            session.send(serialize_frame(booted))
        self._update_active()

    def _queue_pause(self, session: _Session, action: Frame, aid: str) -> None:
        interface = action.get("Interface", "")
        queue = action.get("Queue", "")
        paused = action.get("Paused", "true").lower() in ("true", "1", "yes", "on")
        reason = action.get("Reason", "")
        keys = [k for k in self.model.members if k[1] == interface and (not queue or k[0] == queue)]
        if not keys:
            self._respond(session, aid, "Error", Message="Interface not found")
            return
        self._respond(
            session,
            aid,
            "Success",
            Message=f"Interface {'paused' if paused else 'unpaused'} successfully",
        )
        for member_queue, member_interface in keys:
            fields = dict(self.model.members[(member_queue, member_interface)])
            fields.update(
                Paused="1" if paused else "0",
                PausedReason=reason if paused else "",
                LastPause=str(int(time.time())) if paused else fields.get("LastPause", "0"),
            )
            self._publish(self._frame("QueueMemberPause", None, fields))

    def _queue_add(self, session: _Session, action: Frame, aid: str) -> None:
        queue, interface = action.get("Queue", ""), action.get("Interface", "")
        if not queue or not interface:
            self._respond(session, aid, "Error", Message="'Queue' and 'Interface' not set.")
            return
        if (queue, interface) in self.model.members:
            self._respond(session, aid, "Error", Message="Unable to add interface: Already there")
            return
        self._respond(session, aid, "Success", Message="Added interface to queue")
        fields = _member_fields(
            queue,
            interface,
            action.get("MemberName", "") or interface,
            login_time=str(int(time.time())),
        )
        fields["Membership"] = "dynamic"
        fields["Penalty"] = action.get("Penalty", "0") or "0"
        paused = action.get("Paused", "false").lower() in ("true", "1", "yes")
        fields["Paused"] = "1" if paused else "0"
        self._publish(self._frame("QueueMemberAdded", None, fields))

    def _queue_remove(self, session: _Session, action: Frame, aid: str) -> None:
        key = (action.get("Queue", ""), action.get("Interface", ""))
        fields = self.model.members.get(key)
        if fields is None:
            self._respond(session, aid, "Error", Message="Unable to remove interface: Not there")
            return
        self._respond(session, aid, "Success", Message="Removed interface from queue")
        self._publish(self._frame("QueueMemberRemoved", None, dict(fields)))

    def _originate(self, session: _Session, action: Frame, aid: str) -> None:
        self._respond(session, aid, "Success", Message="Originate successfully queued")
        frame: Frame = {"Event": "OriginateResponse", "Privilege": "call,all"}
        if aid:
            frame["ActionID"] = aid
        frame.update(
            {
                "Timestamp": self._stamp(),
                "Response": "Success",
                "Channel": action.get("Channel", ""),
                "Context": action.get("Context", ""),
                "Exten": action.get("Exten", ""),
                "Application": action.get("Application", ""),
                "Data": action.get("Data", ""),
                "Reason": "4",
                "Uniqueid": self._uniqueid(),
                "CallerIDNum": action.get("CallerID", "<unknown>"),
                "CallerIDName": "<unknown>",
            }
        )
        self._publish(frame)

    # ----------------------------------------------------------------- replay

    async def _replay_loop(self) -> None:
        loop = asyncio.get_running_loop()
        base: float | None = None
        while self._cursor < len(self._replay):
            if not self._active.is_set():
                await self._active.wait()
                base = None
            if base is None:
                base = loop.time() - self._schedule[self._cursor]
            delay = base + self._schedule[self._cursor] - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                if not self._active.is_set():
                    continue
            await self._wait_for_room()
            if not self._active.is_set():
                continue
            self._publish(dict(self._replay[self._cursor]))
            self._cursor += 1
            if self.speed is None and self._cursor % 64 == 0:
                await asyncio.sleep(0)
        self.replay_done.set()

    async def _wait_for_room(self) -> None:
        while self._backlogged():  # noqa: ASYNC110 - a few sessions; polling is simplest
            await asyncio.sleep(0.002)

    def _backlogged(self) -> bool:
        sessions = self._event_sessions(include_stalled=False)
        return any(s.out.qsize() > _BACKLOG_HIGH for s in sessions)

    # ----------------------------------------------------------------- generation

    async def _generate_loop(self, rate: float) -> None:
        while True:
            await asyncio.sleep(self._rng.expovariate(rate))
            if len(self._calls) >= self.timing.max_calls or not self.queue_specs:
                continue
            known = self.callers and self._rng.random() < self.known_caller_share
            self.start_call(caller_num=self._rng.choice(self.callers) if known else None)

    def start_call(
        self,
        queue: str | None = None,
        caller_num: str | None = None,
        caller_name: str | None = None,
    ) -> str:
        """An inbound trunk call into `queue` (a random one) now; its linkedid.

        The call then lives on its own: waits, rings members, is answered or abandoned or
        timed out, talks and ends, with the configured `timing`.
        """
        specs = {spec.name: spec for spec in self.queue_specs}
        if not specs:
            raise ValueError("no queue configured")
        spec = specs[queue] if queue else self._rng.choice(list(specs.values()))
        if caller_num is None:
            caller_num, generated_name = random_caller(self._rng)
            caller_name = generated_name if caller_name is None else caller_name
        caller_name = caller_name or ""
        call = self._inbound(caller_num, caller_name, spec.did, spec.name)
        self._trunk_prelude(
            call,
            [
                ("NoOp", f'Inbound to queue {spec.name} from "{caller_name}" <{caller_num}>'),
                ("Answer", ""),
                ("Set", f"CDR(userfield)={spec.name}"),
                ("MixMonitor", f"{call.linkedid}.wav,b"),
                ("Queue", f"{spec.name},t,,,{int(spec.timeout_s)}"),
            ],
        )
        self._join_queue(call, spec)
        call.task = self._spawn(self._drive_queue_call(call, spec), f"ami-sim-{call.linkedid}")
        return call.linkedid

    def ring(
        self,
        agent_interface: str,
        caller_num: str,
        caller_name: str = "",
        *,
        did: str | None = None,
        answer_after_s: float | None = None,
        hangup_after_s: float | None = None,
    ) -> str:
        """An inbound call that rings `agent_interface` right now (a direct Dial, no queue).

        `agent_interface` is `Local/101@agents`, a device such as `PJSIP/101`, or a bare
        extension (`101` means `Local/101@agents`). The call rings until `answer(linkedid)`
        or `hangup(linkedid)`, or until the optional timers fire. Returns the linkedid.
        """
        interface = _interface(agent_interface)
        extension = _extension(interface)
        call = self._inbound(caller_num, caller_name, did or extension, None)
        self._trunk_prelude(
            call,
            [
                ("NoOp", f"Direct call to {extension}"),
                ("Answer", ""),
                ("MixMonitor", f"{call.linkedid}.wav,b"),
                ("Dial", f"{interface},30"),
            ],
        )
        self._ring_leg(call, interface, dial_string=interface.split("/", 1)[-1])
        if answer_after_s is not None or hangup_after_s is not None:
            call.task = self._spawn(
                self._drive_direct_call(call, answer_after_s, hangup_after_s),
                f"ami-sim-{call.linkedid}",
            )
        return call.linkedid

    def answer(self, linkedid: str, agent_interface: str | None = None) -> None:
        """The (or the given) ringing agent of call `linkedid` answers now."""
        call = self._calls.get(linkedid)
        if call is None or call.connected is not None or not call.ringing:
            raise LookupError(f"no ringing call {linkedid!r}")
        interface = _interface(agent_interface) if agent_interface else next(iter(call.ringing))
        leg = call.ringing.get(interface)
        if leg is None:
            raise LookupError(f"{interface} does not ring on call {linkedid!r}")
        self._connect(call, leg)
        call.wakeup.set()

    def hangup(self, linkedid: str, by: Literal["caller", "agent"] = "caller") -> None:
        """Call `linkedid` ends now: the caller (or the talking agent) hangs up."""
        call = self._calls.get(linkedid)
        if call is None:
            raise LookupError(f"no call {linkedid!r}")
        if call.connected is not None:
            self._end_talk(call, by)
        else:
            self._caller_gives_up(call)
        call.wakeup.set()

    async def _drive_direct_call(
        self, call: _Call, answer_after_s: float | None, hangup_after_s: float | None
    ) -> None:
        if answer_after_s is not None:
            await self._sleep_until(call, time.monotonic() + answer_after_s)
            if not call.ended and call.connected is None and call.ringing:
                self._connect(call, next(iter(call.ringing.values())))
        if hangup_after_s is not None and not call.ended:
            await self._sleep_until(call, time.monotonic() + hangup_after_s)
            if not call.ended:
                self.hangup(call.linkedid, "agent" if call.connected else "caller")

    async def _drive_queue_call(self, call: _Call, spec: QueueSpec) -> None:
        timing = self.timing
        now = time.monotonic()
        gives_up_at = now + timing.pick(self._rng, timing.patience_s)
        timeout_at = now + timing.scaled(spec.timeout_s)
        poll = max(0.02, timing.scaled(0.5))
        try:
            while not call.ended:
                now = time.monotonic()
                if call.connected is not None:
                    hang_at = call.connected_at + timing.pick(self._rng, timing.talk_s)
                    await self._sleep_until(call, hang_at)
                    if not call.ended and call.connected is not None:
                        by: Literal["caller", "agent"] = (
                            "agent"
                            if self._rng.random() < timing.agent_hangs_up_probability
                            else "caller"
                        )
                        self._end_talk(call, by)
                    return
                if not call.ringing:
                    self._offer(call, spec, now)
                wake = min(gives_up_at, timeout_at)
                if call.ringing:
                    wake = min(wake, *(leg.decide_at for leg in call.ringing.values()))
                else:
                    wake = min(wake, now + poll)
                await self._sleep_until(call, wake)
                if call.ended or call.connected is not None:
                    continue
                now = time.monotonic()
                if now >= gives_up_at:
                    self._caller_gives_up(call)
                elif now >= timeout_at:
                    self._queue_timeout(call)
                else:
                    due = [leg for leg in call.ringing.values() if leg.decide_at <= now]
                    answering = [leg for leg in due if leg.answers]
                    if answering:
                        self._connect(call, answering[0])
                    else:
                        for leg in due:
                            self._ring_no_answer(call, leg)
        finally:
            if not call.ended:
                self._forget(call)

    async def _sleep_until(self, call: _Call, deadline: float) -> None:
        delay = deadline - time.monotonic()
        call.wakeup.clear()
        if delay > 0 and not call.ended:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.wakeup.wait(), delay)

    def _offer(self, call: _Call, spec: QueueSpec, now: float) -> None:
        """Ring the free, unpaused members the strategy picks (one, or all for ringall)."""
        free = [
            interface
            for interface in self._members_of(spec.name)
            if interface not in self._busy
            and (self.model.member(spec.name, interface) or {}).get("Paused", "0") != "1"
        ]
        if not free:
            return
        if spec.strategy == "ringall":
            chosen = free
        else:
            members = self._members_of(spec.name)
            start = self._rr_next.get(spec.name, 0)
            ordered = sorted(free, key=lambda i: (members.index(i) - start) % len(members))
            chosen = ordered[:1]
            self._rr_next[spec.name] = (members.index(chosen[0]) + 1) % len(members)
        for interface in chosen:
            leg = self._ring_leg(call, interface, queue=spec.name, dial_string=interface)
            leg.answers = self._rng.random() < self.timing.answer_probability
            ring_for = (
                self.timing.pick(self._rng, self.timing.ring_s)
                if leg.answers
                else self.timing.scaled(self.timing.ring_timeout_s)
            )
            leg.decide_at = now + min(ring_for, self.timing.scaled(self.timing.ring_timeout_s))

    def _members_of(self, queue: str) -> list[str]:
        return [interface for q, interface in self.model.members if q == queue]

    # ----------------------------------------------------------------- call steps

    def _inbound(self, caller_num: str, caller_name: str, did: str, queue: str | None) -> _Call:
        uid = self._uniqueid()
        name = caller_name or ("Anonymous" if caller_num == "anonymous" else "<unknown>")
        chan = _Chan(
            name=f"{TRUNK_PREFIX}{next(self._trunk_seq)}",
            uniqueid=uid,
            linkedid=uid,
            state=4,
            caller_num=caller_num,
            caller_name=name,
            context=TRUNK_CONTEXT,
            exten=did,
        )
        call = _Call(linkedid=uid, caller=chan, did=did, queue=queue)
        self._calls[uid] = call
        self._emit("Newchannel", chan)
        return call

    def _trunk_prelude(self, call: _Call, steps: Sequence[tuple[str, str]]) -> None:
        chan = call.caller
        for priority, (application, data) in enumerate(steps, start=1):
            chan.priority = priority
            self._emit("Newexten", chan, Extension=call.did, Application=application, AppData=data)
            if application == "Answer":
                chan.state = 6
                self._emit("Newstate", chan)
            elif application == "MixMonitor":
                path = f"{MONITOR_DIR}/{call.linkedid}.wav"
                self._emit("VarSet", chan, Variable="MIXMONITOR_FILENAME", Value=path)
                self._emit("MixMonitorStart", chan)

    def _join_queue(self, call: _Call, spec: QueueSpec) -> None:
        position = self.model.queue_count(spec.name) + 1
        call.joined = time.monotonic()
        call.original_position = position
        self._emit(
            "QueueCallerJoin",
            call.caller,
            Queue=spec.name,
            Position=str(position),
            Count=str(position),
        )

    def _ring_leg(
        self, call: _Call, interface: str, *, queue: str | None = None, dial_string: str
    ) -> _Leg:
        extension = _extension(interface)
        suffix = f"{next(self._local_seq):08x}"
        caller = call.caller
        if interface.startswith("Local/"):
            one = _Chan(
                f"{interface}-{suffix};1",
                self._uniqueid(),
                call.linkedid,
                0,
                "<unknown>",
                "<unknown>",
                AGENT_CONTEXT,
                extension,
            )
            two: _Chan | None = _Chan(
                f"{interface}-{suffix};2",
                self._uniqueid(),
                call.linkedid,
                4,
                "<unknown>",
                "<unknown>",
                AGENT_CONTEXT,
                extension,
            )
        else:
            one = _Chan(
                f"{interface}-{suffix}",
                self._uniqueid(),
                call.linkedid,
                0,
                "<unknown>",
                "<unknown>",
                "from-internal",
                extension,
            )
            two = None
        leg = _Leg(interface, one, two, time.monotonic())
        call.ringing[interface] = leg
        self._busy.add(interface)
        self._emit("Newchannel", one)
        if two is not None:
            self._emit("Newchannel", two)
        one.caller_num = call.did
        self._emit(
            "NewCallerid", one, **{"CID-CallingPres": "0 (Presentation Allowed, Not Screened)"}
        )
        if two is not None:
            two.caller_num, two.caller_name = caller.caller_num, caller.caller_name
            two.connected_num = call.did
            self._emit(
                "NewCallerid", two, **{"CID-CallingPres": "0 (Presentation Allowed, Not Screened)"}
            )
            self._emit("NewConnectedLine", two)
            self._emit(
                "LocalBridge",
                None,
                **one.block("LocalOne"),
                **two.block("LocalTwo"),
                Context=AGENT_CONTEXT,
                Exten=extension,
                LocalOptimization="Yes",
            )
        if queue is not None:
            self._emit(
                "AgentCalled",
                caller,
                **one.block("Dest"),
                Queue=queue,
                Interface=interface,
                MemberName=self._member_name(queue, interface),
            )
        self._emit("DialBegin", caller, **one.block("Dest"), DialString=dial_string)
        one.state = 5
        one.exten = call.did
        one.connected_num, one.connected_name = caller.caller_num, caller.caller_name
        self._emit("Newstate", one)
        self._emit("DialState", caller, **one.block("Dest"), DialStatus="RINGING")
        self._member_state(interface, "RINGING")
        return leg

    def _connect(self, call: _Call, leg: _Leg) -> None:
        caller = call.caller
        del call.ringing[leg.interface]
        if leg.two is not None:
            leg.two.state = 6
            self._emit("Newstate", leg.two)
        leg.one.state = 6
        self._emit("Newstate", leg.one)
        self._emit("DialEnd", caller, **leg.one.block("Dest"), DialStatus="ANSWER")
        for other in list(call.ringing.values()):
            self._drop_leg(call, other, status="CANCEL", cause="26", cause_txt="Answered elsewhere")
        now = time.monotonic()
        ring_time = str(int(now - leg.started))
        if call.queue is not None:
            position = self.model.queue_position(call.queue, caller.uniqueid)
            count = max(0, self.model.queue_count(call.queue) - 1)
            self._emit(
                "QueueCallerLeave",
                caller,
                Queue=call.queue,
                Position=str(position),
                Count=str(count),
            )
            hold = str(int(now - call.joined))
            self._emit("VarSet", caller, Variable="QUEUEWAIT", Value=hold)
            self._emit(
                "AgentConnect",
                caller,
                **leg.one.block("Dest"),
                Queue=call.queue,
                Interface=leg.interface,
                MemberName=self._member_name(call.queue, leg.interface),
                HoldTime=hold,
                RingTime=ring_time,
            )
        call.connected = leg
        call.connected_at = now
        call.bridge = str(uuid.uuid4())
        bridge = _bridge_block(call.bridge, 0)
        self._emit("BridgeCreate", None, **bridge)
        self._emit_bridge("BridgeEnter", leg.one, call.bridge, 1)
        self._emit_bridge("BridgeEnter", caller, call.bridge, 2)
        self._member_state(leg.interface, "INUSE")

    def _end_talk(self, call: _Call, by: Literal["caller", "agent"]) -> None:
        leg = call.connected
        if leg is None:
            return
        caller = call.caller
        talk = str(int(time.monotonic() - call.connected_at))
        hold = str(int(max(0.0, call.connected_at - call.joined)))
        complete: Frame = {}
        if call.queue is not None:
            complete = {
                **leg.one.block("Dest"),
                "Queue": call.queue,
                "Interface": leg.interface,
                "MemberName": self._member_name(call.queue, leg.interface),
                "HoldTime": hold,
                "TalkTime": talk,
                "Reason": by,
            }
        if by == "agent":
            if leg.two is not None:
                self._emit("SoftHangupRequest", leg.two, Cause="16")
            self._emit("HangupRequest", leg.one, Cause="16")
            if complete:
                self._emit("AgentComplete", caller, **complete)
            if leg.two is not None:
                self._hangup(leg.two, "16")
            self._emit_bridge("BridgeLeave", leg.one, call.bridge, 1)
            self._hangup(leg.one, "16")
            self._emit_bridge("BridgeLeave", caller, call.bridge, 0)
            self._emit("SoftHangupRequest", caller, Cause="16")
            self._emit("HangupRequest", caller, Cause="16")
            self._hangup(caller, "16")
        else:
            self._emit("HangupRequest", caller, Cause="16")
            self._emit_bridge("BridgeLeave", caller, call.bridge, 1)
            if complete:
                self._emit("AgentComplete", caller, **complete)
            self._emit("SoftHangupRequest", caller, Cause="16")
            self._hangup(caller, "16")
            self._emit_bridge("BridgeLeave", leg.one, call.bridge, 0)
            if leg.two is not None:
                self._emit("HangupRequest", leg.two, Cause="16")
            self._hangup(leg.one, "16")
            if leg.two is not None:
                self._emit("SoftHangupRequest", leg.two, Cause="16")
                self._hangup(leg.two, "16")
        self._emit("BridgeDestroy", None, **_bridge_block(call.bridge, 0))
        if call.queue is not None:
            self._count_call_taken(call.queue, leg.interface)
        self._member_state(leg.interface, "NOT_INUSE")
        call.connected = None
        self._forget(call)

    def _caller_gives_up(self, call: _Call) -> None:
        """The caller hangs up before anyone answered (abandoned, or a cancelled Dial)."""
        caller = call.caller
        self._emit("HangupRequest", caller, Cause="16")
        for leg in list(call.ringing.values()):
            self._drop_leg(call, leg, status="CANCEL", cause="0", cause_txt="Unknown")
        if call.queue is not None:
            self._leave_queue(call, abandoned=True)
        self._emit("SoftHangupRequest", caller, Cause="16")
        self._hangup(caller, "16")
        self._forget(call)

    def _queue_timeout(self, call: _Call) -> None:
        caller = call.caller
        for leg in list(call.ringing.values()):
            self._drop_leg(call, leg, status="CANCEL", cause="0", cause_txt="Unknown")
        self._emit("VarSet", caller, Variable="ABANDONED", Value="TRUE")
        self._leave_queue(call, abandoned=True)
        self._emit("VarSet", caller, Variable="QUEUESTATUS", Value="TIMEOUT")
        self._emit("SoftHangupRequest", caller, Cause="16")
        self._emit("HangupRequest", caller, Cause="16")
        self._hangup(caller, "16")
        self._forget(call)

    def _leave_queue(self, call: _Call, *, abandoned: bool) -> None:
        if call.queue is None:
            return
        caller = call.caller
        position = str(self.model.queue_position(call.queue, caller.uniqueid))
        if abandoned:
            self._emit(
                "QueueCallerAbandon",
                caller,
                Queue=call.queue,
                Position=position,
                OriginalPosition=str(call.original_position),
                HoldTime=str(int(time.monotonic() - call.joined)),
            )
        count = str(max(0, self.model.queue_count(call.queue) - 1))
        self._emit("QueueCallerLeave", caller, Queue=call.queue, Position=position, Count=count)

    def _ring_no_answer(self, call: _Call, leg: _Leg) -> None:
        if call.queue is not None:
            self._emit(
                "AgentRingNoAnswer",
                call.caller,
                **leg.one.block("Dest"),
                Queue=call.queue,
                Interface=leg.interface,
                MemberName=self._member_name(call.queue, leg.interface),
                RingTime=str(int((time.monotonic() - leg.started) * 1000)),
            )
        self._drop_leg(call, leg, status="NOANSWER", cause="0", cause_txt="Unknown")

    def _drop_leg(self, call: _Call, leg: _Leg, *, status: str, cause: str, cause_txt: str) -> None:
        call.ringing.pop(leg.interface, None)
        self._emit("DialEnd", call.caller, **leg.one.block("Dest"), DialStatus=status)
        if leg.two is not None:
            self._emit("HangupRequest", leg.two, Cause=cause)
        self._hangup(leg.one, cause, cause_txt)
        if leg.two is not None:
            self._emit("SoftHangupRequest", leg.two, Cause="16")
            self._hangup(leg.two, cause, cause_txt)
        self._member_state(leg.interface, "NOT_INUSE")

    def _hangup(self, chan: _Chan, cause: str, cause_txt: str = "Normal Clearing") -> None:
        self._emit("Hangup", chan, Cause=cause, **{"Cause-txt": cause_txt})

    def _forget(self, call: _Call) -> None:
        call.ended = True
        self._calls.pop(call.linkedid, None)
        call.wakeup.set()

    def _member_state(self, interface: str, state: str) -> None:
        if state == "NOT_INUSE":
            self._busy.discard(interface)
        self._emit("DeviceStateChange", None, Device=interface, State=state)
        for (_, member_interface), fields in list(self.model.members.items()):
            if member_interface != interface:
                continue
            updated = dict(fields)
            updated["Status"] = _DEVICE_STATUS[state]
            updated["InCall"] = "1" if state == "INUSE" else "0"
            self._publish(self._frame("QueueMemberStatus", None, updated))

    def _count_call_taken(self, queue: str, interface: str) -> None:
        fields = self.model.member(queue, interface)
        if fields is not None:
            fields["CallsTaken"] = str(int(fields.get("CallsTaken", "0") or 0) + 1)
            fields["LastCall"] = str(int(time.time()))

    def _member_name(self, queue: str, interface: str) -> str:
        fields = self.model.member(queue, interface)
        return (fields or {}).get("MemberName", "") or member_name(interface)

    # ----------------------------------------------------------------- helpers

    def _emit(self, event: str, chan: _Chan | None, /, **extra: str) -> None:
        """Publish an event built from `chan`'s header block, then `extra`."""
        self._publish(self._frame(event, chan, extra))

    def _emit_bridge(self, event: str, chan: _Chan, bridge_id: str, channels: int) -> None:
        """Publish a bridge event: the bridge block comes before the channel's."""
        frame: Frame = {
            "Event": event,
            "Privilege": "call,all",
            "Timestamp": self._stamp(),
            **_bridge_block(bridge_id, channels),
            **chan.block(),
        }
        self._publish(frame)

    def _frame(self, event: str, chan: _Chan | None, fields: Mapping[str, str]) -> Frame:
        frame: Frame = {
            "Event": event,
            "Privilege": _PRIVILEGE.get(event, "call,all"),
            "Timestamp": self._stamp(),
        }
        if chan is not None:
            frame.update(chan.block())
        frame.update(fields)
        return frame

    def _stamp(self) -> str:
        now = max(time.time(), self._last_stamp + 1e-6)
        self._last_stamp = now
        return f"{now:.6f}"

    def _uniqueid(self) -> str:
        return f"{int(time.time())}.{next(self._seq)}"

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task %s failed", task.get_name(), exc_info=task.exception())


def _bridge_block(bridge_id: str, channels: int) -> Frame:
    return {
        "BridgeUniqueid": bridge_id,
        "BridgeType": "basic",
        "BridgeTechnology": "simple_bridge",
        "BridgeCreator": "<unknown>",
        "BridgeName": "<unknown>",
        "BridgeNumChannels": str(channels),
        "BridgeVideoSourceMode": "none",
    }


def _interface(agent: str) -> str:
    agent = agent.strip()
    return agent if "/" in agent else f"Local/{agent}@{AGENT_CONTEXT}"


def _chunks(data: bytes, split_at: Sequence[int]) -> list[bytes]:
    cuts = sorted({cut for cut in split_at if 0 < cut < len(data)})
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)] if data else [b""]


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pbx_adapter.simulator",
        description="A simulated Asterisk AMI server (replays a recording or generates calls).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("CALLCENTER_AMI_PORT", 5038))
    )
    parser.add_argument("--username", default=os.environ.get("CALLCENTER_AMI_USERNAME") or "crm")
    parser.add_argument(
        "--secret",
        default=os.environ.get("CALLCENTER_AMI_SECRET") or "simulator",
        help="the AMI secret clients must log in with (default: $CALLCENTER_AMI_SECRET)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--replay", type=Path, metavar="FILE", help="a recorded .ami stream")
    source.add_argument("--rate", type=float, help="generate this many calls per second")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="replay speed factor (1 = as recorded, 0 = as fast as possible)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="time scale of generated calls")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until interrupted; the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    if args.speed < 0 or (args.rate is not None and args.rate <= 0):
        print("error: --speed must be >= 0 and --rate > 0")
        return 2
    sim = AmiSimulator(
        args.host,
        args.port,
        args.username,
        args.secret,
        replay=args.replay,
        speed=args.speed or None,
        rate=args.rate,
        timing=CallTiming(scale=args.scale),
        seed=args.seed,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signalled(sim))
    return 0


async def _serve_until_signalled(sim: AmiSimulator) -> None:
    """Serve until SIGTERM or SIGINT, then close every connection cleanly."""
    task = asyncio.create_task(sim.serve_forever())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


if __name__ == "__main__":
    raise SystemExit(main())
