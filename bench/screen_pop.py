"""Screen-pop latency: AMI frame written → `call.ringing` received by the operator's browser.

The simulator emits R calls/s while N authenticated websocket clients are connected; per
pop, the time from the simulator writing the triggering event on the AMI socket to the
client receiving the pop; p50/p95/p99/max, pops/s, AMI events/s.

How it is measured:

- this process runs the AMI simulator (`TimedSimulator`, a subclass that stamps every
  frame as it is handed to the socket) and the N websocket clients, so both ends of each
  pop are read from one clock (`time.perf_counter`);
- the API runs as its own process, `callcenter serve --with-pbx`, connected to that
  simulator, on the embedded default (a fresh migrated SQLite file in a temp dir) or on
  `--database-url` (an empty database; it is migrated and filled here);
- N operators with extensions 1000..1000+N-1 are created before the server starts, and
  `--known-clients` client cards; `--known-share` of the calls come from their numbers
  (written the ways carriers present them), so pops carry real cards;
- each call rings one operator directly (`Local/<ext>@agents`, round-robin); most are
  answered after `--ring-seconds` and end `--talk-seconds` later, the rest are abandoned
  while ringing, so calls never pile up;
- a pop is matched by `call.call_key` (the linkedid) to the write time of the call's
  `DialBegin` (`AgentCalled` for queue calls) frame. Only calls placed during the measured
  window count; the load keeps running afterwards until their pops are in (or
  `--drain-seconds` pass), and a pop that never arrives is reported as lost.

`--scale-out` measures the same path across processes: one `callcenter pbx-adapter` (it
takes the PBX's lease in Redis and applies the calls), `--apis` (2) `callcenter serve`
processes, PostgreSQL (a fresh database made on `--pg-admin-url` and dropped afterwards,
unless `--database-url` names one) and Redis streams under a key prefix of the run's own
(its keys are deleted afterwards). Operators are spread over the API processes, so a pop
crosses adapter → PostgreSQL commit → Redis stream → the right API's reader → websocket.
The simulator stays in this process, so both ends of a pop are read from one clock.
Defaults there: 1,000 operators, 100 calls/s, target p99 ≤ 30 ms; `--short`: 100
operators, 10 calls/s. `--profile pyspy` records the adapter process. `--early-pops` turns
on `settings.early_pops` (rings popped before their batch commits).

Run from the repository root:

    .venv/bin/python bench/screen_pop.py [--rate 50] [--clients 200] [--seconds 20]
        [--scale-out [--apis 2] [--redis-url redis://127.0.0.1:6379/0]] [--short]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/fresh_db]
        [--profile stages|pyspy|cprofile] [--result-name screen_pop]

(`--database-url` must name an empty database you created; drop it afterwards.)

Where the time goes (`--profile`):

- `stages`: the server runs as `callcenter serve --with-pbx` with a few product functions
  wrapped in its own process (no file changes) to stamp each pop on its way: AMI frame
  parsed, fed to translation, its batch reaching the sink, ingest() done, committed,
  published, taken by the websocket task, sent. Stamps share the benchmark's clock
  (CLOCK_MONOTONIC), so each step gets p50/p95/p99; per sink batch: size, ingest, card,
  commit, publish time, and the SQL statements with their cursor time;
- `pyspy`: `py-spy record` on the server during the measured window (needs py-spy in the
  venv); the event-loop thread's samples are filed by part of the pipeline;
- `cprofile`: the server under `python -m cProfile` (all of its life; slower).

Figures are printed and written to `bench/results/<--result-name>.json` (`screen_pop`).
The exit status is 1 when pops were lost or the server died, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import IO, Any, cast

import httpx
from _common import (
    ROOT,
    callcenter_command,
    percentile,
    run_on_migrated_database,
    server_log_problems,
    write_result,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from pbx_adapter.simulator import AmiSimulator, random_caller

HOST = "127.0.0.1"
FIRST_EXTENSION = 1000
PASSWORD = "screen-pop-bench-1"
TARGET_P99_MS = 15.0
TARGET_SCALE_OUT_P99_MS = 30.0
API_METRICS = (
    "callcenter_websocket_connections",
    "callcenter_events_published_total",
    "callcenter_event_publish_failures_total",
)
"""What the benchmark reads from each API process's `/metrics` at the end."""
FAST_ARGON2 = {
    "CALLCENTER_ARGON2_TIME_COST": "1",
    "CALLCENTER_ARGON2_MEMORY_KIB": "1024",
    "CALLCENTER_ARGON2_PARALLELISM": "1",
}
"""Cheap password hashing, so creating and logging in hundreds of users takes seconds."""
_TRIGGERS = (b"Event: DialBegin\r\n", b"Event: AgentCalled\r\n")
"""The frames that make the adapter emit AgentRinging (a direct dial; a queue member)."""
_LINKEDID = b"\r\nLinkedid: "
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


# --------------------------------------------------------------------------- the PBX side


class _TimedWriter:
    """Stands in for one simulator session's StreamWriter and stamps what it writes."""

    def __init__(self, inner: asyncio.StreamWriter, owner: TimedSimulator) -> None:
        self._inner = inner
        self._owner = owner

    def write(self, data: bytes) -> None:
        self._owner.stamp(data)
        self._inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TimedSimulator(AmiSimulator):
    """The AMI simulator, with the time each ringing frame was written to the socket.

    `_write_loop` writes every queued frame with one `writer.write()` (the transport sends
    at once when its buffer is empty), so wrapping the session's writer is enough.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ring_written: dict[str, float] = {}
        """linkedid → perf_counter() when its first DialBegin/AgentCalled was written."""
        self.frames_written = 0
        self.bytes_written = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        timed = cast(asyncio.StreamWriter, _TimedWriter(writer, self))
        await super()._serve(reader, timed)

    def stamp(self, data: bytes) -> None:
        now = time.perf_counter()
        self.frames_written += data.count(b"\r\n\r\n")
        self.bytes_written += len(data)
        if not any(trigger in data for trigger in _TRIGGERS):
            return
        # Usually one frame per write; a write holding several is split into frames.
        for frame in data.split(b"\r\n\r\n"):
            if frame.startswith(_TRIGGERS):
                start = frame.find(_LINKEDID)
                if start >= 0:
                    start += len(_LINKEDID)
                    end = frame.find(b"\r\n", start)
                    linkedid = frame[start : end if end >= 0 else len(frame)].decode()
                    self.ring_written.setdefault(linkedid, now)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Config:
    rate: float
    clients: int
    seconds: float
    warmup: float
    drain: float
    database_url: str | None
    known_clients: int
    known_share: float
    answer_share: float
    ring_s: float
    talk_s: float
    poisson: bool
    seed: int
    profile: str
    result_name: str
    scale_out: bool = False
    apis: int = 2
    redis_url: str = ""
    key_prefix: str = ""
    early_pops: bool = False


@dataclass(slots=True)
class Placed:
    extension: int
    phase: str
    known: bool


@dataclass(slots=True)
class Pop:
    at: float
    extension: int
    known: bool


@dataclass(slots=True)
class Tally:
    """What the clients saw, filled in by their reader tasks."""

    pops: dict[str, Pop] = field(default_factory=dict)
    duplicates: int = 0
    misrouted: int = 0
    unknown_calls: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    disconnects: list[str] = field(default_factory=list)
    stopping: bool = False


@dataclass(slots=True)
class Operator:
    extension: int
    login: str
    base_url: str = ""
    """The API process this operator's browser uses."""
    cookie: str = ""
    last_ids: dict[str, str] = field(default_factory=dict)
    ws: ClientConnection | None = None


# --------------------------------------------------------------------------- seeding


def known_numbers(count: int, seed: int) -> list[str]:
    """Distinct Russian mobile numbers (E.164) for the known client cards."""
    rng = random.Random(seed)
    numbers: set[str] = set()
    while len(numbers) < count:
        numbers.add(f"+79{rng.randrange(10**8, 10**9)}")
    return sorted(numbers)


def as_carrier_presents(e164: str, rng: random.Random) -> str:
    """`+79161234567` written one of the ways a trunk presents it."""
    national = e164.removeprefix("+7")
    return rng.choice((e164, f"7{national}", f"8{national}", national))


async def seed(url: str, operators: list[Operator], numbers: list[str]) -> None:
    """Operators with their extensions, and client cards (some in organisations, some with
    open tasks), committed before the server starts."""
    # Imported here: the password hasher reads FAST_ARGON2 from the environment on import.
    from callcenter.auth.models import Role
    from callcenter.auth.service import create_user
    from callcenter.clients.schemas import ClientIn, OrganizationIn, PhoneIn
    from callcenter.clients.service import create_client, create_organization
    from callcenter.config import Settings
    from callcenter.context import build_context
    from callcenter.tasks.models import Task

    ctx = build_context(Settings(database_url=url, _env_file=None))
    try:
        async with ctx.sessionmaker() as session:
            for op in operators:
                await create_user(
                    session,
                    login=op.login,
                    name=f"Оператор {op.extension}",
                    password=PASSWORD,
                    role=Role.OPERATOR,
                    extensions=[str(op.extension)],
                )
            organization_id: int | None = None
            for index, number in enumerate(numbers):
                if index % 10 == 0:
                    org = await create_organization(
                        session, ctx.phones, OrganizationIn(name=f"ООО «Клиент {index // 10}»")
                    )
                    organization_id = org.id
                client = await create_client(
                    session,
                    ctx.phones,
                    ClientIn(
                        name=f"Клиент {index}",
                        organization_id=organization_id if index % 3 == 0 else None,
                        position="закупщик" if index % 3 == 0 else "",
                        phones=[PhoneIn(raw=number)],
                    ),
                )
                if index % 3 == 1:
                    session.add(Task(title=f"Перезвонить: клиент {index}", client_id=client.id))
            await session.commit()
    finally:
        await ctx.close()


# --------------------------------------------------------------------------- the server


def git_head() -> str:
    """The checked-out commit, read from .git without running git (the tree may be dirty)."""
    git = ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return "unknown"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_env(url: str, port: int, sim: AmiSimulator, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(FAST_ARGON2)
    env.update(
        CALLCENTER_DATABASE_URL=url,
        CALLCENTER_HOST=HOST,
        CALLCENTER_PORT=str(port),
        CALLCENTER_AMI_HOST=sim.host,
        CALLCENTER_AMI_PORT=str(sim.port),
        CALLCENTER_AMI_USERNAME=sim.username,
        CALLCENTER_AMI_SECRET=secret,
        CALLCENTER_ALLOWED_ORIGINS=json.dumps([f"http://{HOST}:{port}"]),
        CALLCENTER_LOGIN_ATTEMPTS_PER_MINUTE="1000000",
        PYTHONUNBUFFERED="1",
    )
    return env


def cpu_ticks(pid: int) -> dict[str, int]:
    """CPU clock ticks (user + system) of each thread of `pid`, by thread id."""
    out: dict[str, int] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process is gone
        return out
    for task in tasks:
        with contextlib.suppress(OSError, IndexError, ValueError):
            raw = (task / "stat").read_text()
            fields = raw[raw.rindex(")") + 2 :].split()
            out[task.name] = int(fields[11]) + int(fields[12])
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU clock ticks of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def cpu_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """CPU seconds spent per thread between two `cpu_ticks` readings."""
    return {
        name: (ticks - before.get(name, 0)) / _CLK_TCK
        for name, ticks in after.items()
        if ticks - before.get(name, 0) > 0
    }


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Server:
    """`callcenter serve --with-pbx` as a child process, always stopped in the end."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, log: IO[bytes]):
        self.command = command
        self.env = env
        self.cwd = cwd
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, base_url: str, within_s: float = 60.0) -> None:
        """Spawn, then wait until `base_url` answers its health check."""
        await self.spawn()
        assert self.process is not None
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
            while True:
                if not self.alive():
                    raise RuntimeError(f"the server exited with {self.process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/api/health")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server did not answer within {within_s:g} s")
                await asyncio.sleep(0.1)

    async def spawn(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    async def stop(self) -> int | None:
        """SIGINT (a clean uvicorn shutdown, which also writes a cProfile), then SIGKILL."""
        if self.process is None:
            return None
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()
        return self.process.returncode


@dataclass(slots=True)
class Deployment:
    """The processes under test: `callcenter serve --with-pbx` alone (embedded), or one
    `pbx-adapter` and API processes on PostgreSQL and Redis (`--scale-out`)."""

    processes: dict[str, Server]
    api_urls: dict[str, str]
    """The API processes (by role) and their base URLs; operators are spread over them."""
    sink: str
    """The process that applies the calls (py-spy records it)."""
    sink_metrics_url: str = ""
    """The adapter process's `/metrics` (scale-out)."""

    @property
    def urls(self) -> list[str]:
        return list(self.api_urls.values())

    @property
    def pid(self) -> int:
        return self.processes[self.sink].pid

    def alive(self) -> bool:
        return all(server.alive() for server in self.processes.values())

    def pids(self) -> dict[str, int]:
        return {role: s.pid for role, s in self.processes.items() if s.process is not None}

    async def start(self, sim: AmiSimulator) -> None:
        for role, server in self.processes.items():
            if role in self.api_urls:
                await server.start(self.api_urls[role])
            else:
                await server.spawn()
        try:
            await sim.wait_logged_in(1, within_s=30)
        except TimeoutError:
            raise RuntimeError("the AMI adapter did not log in within 30 s") from None

    async def stop(self) -> int | None:
        """Stop every process; the first failing exit status, else the sink's."""
        codes = {role: await server.stop() for role, server in self.processes.items()}
        failed = [code for code in codes.values() if code not in (0, None)]
        return failed[0] if failed else codes.get(self.sink)


def embedded(
    config: Config, workdir: Path, log: IO[bytes], url: str, sim: AmiSimulator, secret: str
) -> Deployment:
    port = free_port()
    command = [*callcenter_command(), "serve", "--with-pbx"]
    if config.profile == "cprofile":
        command = [sys.executable, "-m", "cProfile", "-o", str(workdir / "server.prof")]
        command += ["-m", "callcenter.cli", "serve", "--with-pbx"]
    elif config.profile == "stages":
        command = [sys.executable, str(Path(__file__).resolve())]
        command += ["--instrumented-server", str(workdir / "stages.json")]
    server = Server(command, server_env(url, port, sim, secret), workdir, log)
    return Deployment({"server": server}, {"server": f"http://{HOST}:{port}"}, "server")


def scale_out(
    config: Config, workdir: Path, log: IO[bytes], url: str, sim: AmiSimulator, secret: str
) -> Deployment:
    """One adapter process and `config.apis` API processes sharing PostgreSQL and Redis
    streams, under a Redis key prefix of this run's own."""
    ports = [free_port() for _ in range(config.apis)]
    origins = [f"http://{HOST}:{port}" for port in ports]
    shared = server_env(url, ports[0], sim, secret)
    shared.update(
        CALLCENTER_REDIS_URL=config.redis_url,
        CALLCENTER_JOBS_KEY_PREFIX=config.key_prefix,
        CALLCENTER_ALLOWED_ORIGINS=json.dumps(origins),
        CALLCENTER_EARLY_POPS=str(config.early_pops).lower(),
    )
    processes: dict[str, Server] = {}
    api_urls: dict[str, str] = {}
    for index, port in enumerate(ports):
        env = {k: v for k, v in shared.items() if not k.startswith("CALLCENTER_AMI_")}
        env["CALLCENTER_PORT"] = str(port)
        role = f"api{index + 1}"
        processes[role] = Server([*callcenter_command(), "serve"], env, workdir, log)
        api_urls[role] = origins[index]
    metrics_port = free_port()
    adapter = [*callcenter_command(), "pbx-adapter", "--metrics-port", str(metrics_port)]
    processes["adapter"] = Server(adapter, shared, workdir, log)
    return Deployment(processes, api_urls, "adapter", f"http://{HOST}:{metrics_port}/metrics")


async def delete_redis_keys(redis_url: str, prefix: str) -> int:
    """Delete every key under `prefix` (this run's streams, lease and job queue)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        return len(keys)
    finally:
        await redis.aclose()


async def adapter_apply_lag(url: str) -> dict[str, float]:
    """The adapter's own view of a pop's wait (`callcenter_pbx_apply_lag_seconds`, AMI
    arrival to commit, whole run): batches and bucket-bound percentiles in ms."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: list[tuple[float, float]] = []
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=10) as http:
            text = (await http.get(url)).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "callcenter_pbx_apply_lag_seconds_bucket":
                    buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    out: dict[str, float] = {"batches": total}
    for name, share in (("p50_le", 0.5), ("p95_le", 0.95), ("p99_le", 0.99)):
        bound = next((le for le, count in buckets if total and count >= share * total), None)
        if bound is not None:
            out[name] = bound * 1000
    return out


async def scrape(url: str, names: tuple[str, ...]) -> dict[str, float]:
    """The samples named `names` (summed over labels) of a process's `/metrics`."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=10) as http:
            text = (await http.get(url)).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in names:
                    out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


# --------------------------------------------------------------------------- stages


STAGES = (
    ("written", "the simulator writes DialBegin on the AMI socket (this process)"),
    ("parsed", "the adapter has read and parsed it (AmiClient.on_event)"),
    ("fed", "the adapter loop translates it (EventPipeline.feed)"),
    ("batch_start", "the batch holding its AgentRinging reaches the sink"),
    ("ingested", "ingest() returned: dedupe, state, records, card (flushed)"),
    ("committed", "the transaction is committed"),
    ("published", "call.ringing is published to the user's stream"),
    ("dequeued", "the websocket's sender task takes it"),
    ("sent", "websocket.send_text() returned"),
    ("received", "the client has it (this process)"),
)
"""Where a pop is on its way, in order; `--profile stages` stamps each one."""


def instrumented_server(out: Path) -> int:
    """`callcenter serve --with-pbx`, with every pop stamped at each stage (`STAGES`).

    The stamps are `time.perf_counter()` (CLOCK_MONOTONIC on Linux, so comparable with the
    benchmark process's), written to `out` as JSON when the server stops. Only this
    process's copies of the product's functions are wrapped; no product file changes.
    """
    from sqlalchemy import event as sa_event

    from callcenter import cli, context
    from callcenter.calls import ingest as sink_module
    from callcenter.calls import service
    from callcenter.realtime import api, streams
    from pbx_adapter import ami, runner

    clock = time.perf_counter
    stamps: dict[str, dict[str, float]] = {}
    batches: list[dict[str, Any]] = []
    current: dict[str, float] = {}
    """Figures of the batch being applied (the pipeline never runs two at once)."""
    triggers = ("DialBegin", "AgentCalled")

    in_sink: ContextVar[list[tuple[str, float]] | None] = ContextVar("in_sink", default=None)
    """The SQL statements of the batch being applied (SQLAlchemy carries the context into
    its greenlets), so statements of other requests are not counted."""

    def mark(key: str, stage: str) -> None:
        stamps.setdefault(key, {}).setdefault(stage, clock())

    missing: list[str] = []

    def patch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
        """Replace `owner.name` by `wrap(original)`; a renamed target only loses its stage."""
        original = getattr(owner, name, None)
        if original is None:
            missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            return
        setattr(owner, name, wrap(original))

    def engine_wrap(make_engine: Any) -> Any:
        def timed_make_engine(*args: Any, **kwargs: Any) -> Any:
            engine = make_engine(*args, **kwargs)

            def before(conn: Any, *_: Any) -> None:
                conn.info.setdefault("bench_started", []).append(clock())

            def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
                elapsed = (clock() - conn.info["bench_started"].pop()) * 1000
                batch_sql = in_sink.get()
                if batch_sql is not None:
                    batch_sql.append((statement_kind(statement), elapsed))

            sa_event.listen(engine.sync_engine, "before_cursor_execute", before)
            sa_event.listen(engine.sync_engine, "after_cursor_execute", after)
            return engine

        return timed_make_engine

    def frame_wrap(stage: str) -> Callable[[Any], Any]:
        def wrap(original: Any) -> Any:
            def timed(self: Any, frame: Any, *args: Any, **kwargs: Any) -> Any:
                if frame.get("Event") in triggers:
                    mark(frame.get("Linkedid", ""), stage)
                return original(self, frame, *args, **kwargs)

            return timed

        return wrap

    def ingest_wrap(ingest: Any) -> Any:
        async def timed_ingest(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            notifications = await ingest(*args, **kwargs)
            current["ingest_end"] = clock()
            current["ingest_ms"] += (current["ingest_end"] - started) * 1000
            return notifications

        return timed_ingest

    def commit_wrap(commit_with_retry: Any) -> Any:
        async def timed_commit(*args: Any, **kwargs: Any) -> Any:
            notifications = await commit_with_retry(*args, **kwargs)
            current["commit_end"] = clock()
            current["notifications"] = len(notifications)
            return notifications

        return timed_commit

    def card_wrap(caller_card: Any) -> Any:
        async def timed_card(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            card = await caller_card(*args, **kwargs)
            current["card_ms"] += (clock() - started) * 1000
            current["cards"] += 1
            return card

        return timed_card

    def sink_wrap(sink_call: Any) -> Any:
        async def timed_sink(self: Any, events: Any, *args: Any, **kwargs: Any) -> Any:
            start = clock()
            ringing = [e.call_key for e in events if type(e).__name__ == "AgentRinging"]
            for key in ringing:
                mark(key, "batch_start")
            current.clear()
            current.update(ingest_ms=0.0, card_ms=0.0, cards=0, ingest_end=start, commit_end=start)
            sql: list[tuple[str, float]] = []
            token = in_sink.set(sql)
            try:
                result = await sink_call(self, events, *args, **kwargs)
            finally:
                in_sink.reset(token)
            end = clock()
            for key in ringing:
                stamps[key].setdefault("ingested", current["ingest_end"])
                stamps[key].setdefault("committed", current["commit_end"])
            batches.append(
                {
                    "at": start,
                    "events": len(events),
                    "ringing": len(ringing),
                    "notifications": current.get("notifications", 0),
                    "total_ms": (end - start) * 1000,
                    "ingest_ms": current["ingest_ms"],
                    "card_ms": current["card_ms"],
                    "cards": current["cards"],
                    "commit_ms": (current["commit_end"] - current["ingest_end"]) * 1000,
                    "publish_ms": (end - current["commit_end"]) * 1000,
                    "statements": len(sql),
                    "sql_ms": sum(ms for _, ms in sql),
                    "sql": sql,
                }
            )
            return result

        return timed_sink

    def publish_wrap(publish: Any) -> Any:
        async def timed_publish(
            self: Any, topic: str, event_type: str, payload: Any, *args: Any, **kwargs: Any
        ) -> Any:
            event_id = await publish(self, topic, event_type, payload, *args, **kwargs)
            if event_type == "call.ringing":
                mark(str(payload["call"]["call_key"]), "published")
            return event_id

        return timed_publish

    def forward_wrap(_: Any) -> Any:
        async def timed_forward(websocket: Any, subscription: Any) -> None:
            async for event in subscription:
                key = ""
                if '"type":"call.ringing"' in event.data:
                    key = str(json.loads(event.data)["call"]["call_key"])
                    mark(key, "dequeued")
                await websocket.send_text(event.data)
                if key:
                    mark(key, "sent")

        return timed_forward

    patch(context, "make_engine", engine_wrap)
    patch(ami.AmiClient, "on_event", frame_wrap("parsed"))
    patch(runner.EventPipeline, "feed", frame_wrap("fed"))
    patch(sink_module, "ingest", ingest_wrap)
    patch(sink_module.CallEventSink, "_commit_with_retry", commit_wrap)
    patch(sink_module.CallEventSink, "__call__", sink_wrap)
    patch(service, "caller_card", card_wrap)
    patch(streams.InMemoryStreams, "publish", publish_wrap)
    patch(api, "_forward", forward_wrap)
    if missing:
        print(f"screen_pop stages: not found, not stamped: {missing}", file=sys.stderr)
    try:
        return cli.main(["serve", "--with-pbx"])
    finally:
        out.write_text(json.dumps({"stamps": stamps, "batches": batches, "missing": missing}))


def statement_kind(statement: str) -> str:
    """A SQL statement without its column list and parameter lists, cut to 110 characters."""
    text = re.sub(r"\s+", " ", statement).strip()
    text = re.sub(r"^SELECT .*? FROM ", "SELECT … FROM ", text)
    text = re.sub(r"\((?:\?|\$\d+|%\(\w+\)s)(?:, ?(?:\?|\$\d+|%\(\w+\)s))*\)", "(…)", text)
    text = re.sub(r"(?:, ?\(…\))+", "", text)
    return text[:110]


def stage_figures(
    path: Path, measured: list[str], written: dict[str, float], pops: dict[str, Pop], window: float
) -> dict[str, Any]:
    """Per stage step, the distribution (ms) over the measured pops; and the sink's batches."""
    if not path.exists():
        return {"error": "the instrumented server wrote no stamps"}
    data = json.loads(path.read_text())
    per_pop: list[dict[str, float]] = []
    for lid in measured:
        stamps = dict(data["stamps"].get(lid, {}))
        if lid in written:
            stamps["written"] = written[lid]
        if lid in pops:
            stamps["received"] = pops[lid].at
        per_pop.append(stamps)
    # A stage whose function was not found (renamed in the product) is left out.
    present = [name for name, _ in STAGES if any(name in stamps for stamps in per_pop)]
    steps: dict[str, list[float]] = {f"{a}→{b}": [] for a, b in pairwise(present)}
    complete = 0
    for stamps in per_pop:
        if any(name not in stamps for name in present):
            continue
        complete += 1
        for a, b in pairwise(present):
            steps[f"{a}→{b}"].append((stamps[b] - stamps[a]) * 1000)
    start = min((written[lid] for lid in measured if lid in written), default=0.0)
    batches = [b for b in data["batches"] if start <= b["at"] <= start + window]
    batch_figures = {
        key: summarize([float(b[key]) for b in batches])
        for key in (
            "events",
            "total_ms",
            "ingest_ms",
            "sql_ms",
            "statements",
            "card_ms",
            "commit_ms",
            "publish_ms",
        )
    }
    busy = sum(b["total_ms"] for b in batches) / 1000
    per_kind: dict[str, list[float]] = {}
    for batch in batches:
        for kind, ms in batch["sql"]:
            per_kind.setdefault(kind, []).append(ms)
    calls = max(1, len(measured))
    statements = {
        kind: {
            "per_call": round(len(values) / calls, 2),
            "mean_ms": round(sum(values) / len(values), 3),
            "ms_per_call": round(sum(values) / calls, 3),
        }
        for kind, values in sorted(per_kind.items(), key=lambda kv: -sum(kv[1]))
    }
    ingest_ms = sum(b["ingest_ms"] for b in batches)
    sql_ms = sum(b["sql_ms"] for b in batches)
    return {
        "unstamped_targets": data.get("missing", []),
        "pops_with_all_stamps": complete,
        "steps_ms": {step: summarize(values) for step, values in steps.items()},
        "sink_batches": len(batches),
        "sink_busy_share": round(busy / window, 3) if window else None,
        "sink_batch": batch_figures,
        "sink_ms_per_call": round(busy * 1000 / calls, 3),
        "ingest_ms_per_call": round(ingest_ms / calls, 3),
        "sql_cursor_ms_per_call": round(sql_ms / calls, 3),
        "sql_statements": statements,
    }


# --------------------------------------------------------------------------- the browsers


async def log_in(base_url: str, op: Operator) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        response = await http.post(
            "/api/auth/login", json={"login": op.login, "password": PASSWORD}
        )
        response.raise_for_status()
        op.cookie = response.cookies["cc_session"]
        snapshot = await http.get("/api/realtime/snapshot")
        snapshot.raise_for_status()
        op.last_ids = dict(snapshot.json()["last_ids"])


async def open_stream(base_url: str, op: Operator) -> None:
    ws = await connect(
        base_url.replace("http://", "ws://") + "/ws",
        additional_headers={"Cookie": f"cc_session={op.cookie}"},
        origin=Origin(base_url),
        ping_interval=None,
        open_timeout=60,
        max_queue=None,
    )
    await ws.send(json.dumps({"type": "resume", "last_ids": op.last_ids}))
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if message.get("type") == "ready":
            break
        if message.get("type") == "reload":
            raise RuntimeError(f"{op.login}: the server asked for a reload at connect")
    op.ws = ws


async def follow(op: Operator, placed: dict[str, Placed], tally: Tally) -> None:
    """Read one operator's stream; stamp each pop the moment it is received."""
    assert op.ws is not None
    try:
        async for message in op.ws:
            now = time.perf_counter()
            event = json.loads(message)
            kind = str(event.get("type"))
            tally.messages[kind] += 1
            if kind != "call.ringing":
                continue
            key = str((event.get("call") or {}).get("call_key"))
            if key in tally.pops:
                tally.duplicates += 1
                continue
            call = placed.get(key)
            if call is None:
                tally.unknown_calls += 1
            elif call.extension != op.extension:
                tally.misrouted += 1
            card = event.get("card") or {}
            tally.pops[key] = Pop(now, op.extension, bool(card.get("known")))
    except ConnectionClosed as exc:
        if not tally.stopping:
            tally.disconnects.append(f"{op.login}: {exc}")


async def gather_limited(jobs: list[Any], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(job: Any) -> None:
        async with gate:
            await job

    await asyncio.gather(*(one(job) for job in jobs))


# --------------------------------------------------------------------------- the load


@dataclass(slots=True)
class Load:
    """Places R calls/s on the simulator, round-robin over the operators."""

    sim: TimedSimulator
    config: Config
    numbers: list[str]
    placed: dict[str, Placed] = field(default_factory=dict)
    phase: str = "warmup"
    stopped: bool = False
    lag_ms: list[float] = field(default_factory=list)
    """How late each call was placed against its schedule (this process's loop lag)."""

    async def run(self) -> None:
        config = self.config
        rng = random.Random(config.seed)
        loop = asyncio.get_running_loop()
        due = loop.time()
        index = 0
        while not self.stopped:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.phase == "measure":
                self.lag_ms.append(max(0.0, loop.time() - due) * 1000)
            extension = FIRST_EXTENSION + index % config.clients
            known = bool(self.numbers) and rng.random() < config.known_share
            if known:
                number, name = as_carrier_presents(rng.choice(self.numbers), rng), ""
            else:
                number, name = random_caller(rng)
            answered = rng.random() < config.answer_share
            linkedid = self.sim.ring(
                f"Local/{extension}@agents",
                number,
                name,
                answer_after_s=config.ring_s if answered else None,
                hangup_after_s=config.talk_s if answered else config.ring_s,
            )
            self.placed[linkedid] = Placed(extension, self.phase, known)
            index += 1
            due += rng.expovariate(config.rate) if config.poisson else 1.0 / config.rate


# --------------------------------------------------------------------------- one run


def summarize(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {
        "p50": round(percentile(ordered, 0.50), 3),
        "p95": round(percentile(ordered, 0.95), 3),
        "p99": round(percentile(ordered, 0.99), 3),
        "max": round(ordered[-1], 3),
        "mean": round(sum(ordered) / len(ordered), 3),
    }


async def pyspy_record(pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process | None:
    """Start `py-spy record` on the server for the measured window (None if unavailable)."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(binary).exists():
        print("py-spy is not installed: no profile (pip install py-spy)", file=sys.stderr)
        return None
    return await asyncio.create_subprocess_exec(
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(out),
        "--threads",
        "--nonblocking",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def run(config: Config, workdir: Path, log: IO[bytes]) -> dict[str, Any]:
    # SIGTERM stops the run as Ctrl-C does: cancelled, so every `finally` below cleans up.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    url = config.database_url or f"sqlite+aiosqlite:///{workdir}/screen_pop.db"
    operators = [
        Operator(FIRST_EXTENSION + i, f"op{FIRST_EXTENSION + i}") for i in range(config.clients)
    ]
    numbers = known_numbers(config.known_clients, config.seed)
    started = time.perf_counter()
    await seed(url, operators, numbers)
    seeded_s = time.perf_counter() - started

    secret = f"bench-{random.randrange(10**9)}"
    sim = TimedSimulator(HOST, 0, "crm", secret, queues=(), seed=config.seed)
    await sim.start()
    build = scale_out if config.scale_out else embedded
    server = build(config, workdir, log, url, sim, secret)
    base_url = server.urls[0]
    for index, op in enumerate(operators):
        op.base_url = server.urls[index % len(server.urls)]
    tally = Tally()
    load = Load(sim, config, numbers)
    readers: list[asyncio.Task[None]] = []
    load_task: asyncio.Task[None] | None = None
    spy: asyncio.subprocess.Process | None = None
    try:
        await server.start(sim)
        started = time.perf_counter()
        await gather_limited([log_in(op.base_url, op) for op in operators], 16)
        await gather_limited([open_stream(op.base_url, op) for op in operators], 32)
        connect_s = time.perf_counter() - started
        readers = [asyncio.create_task(follow(op, load.placed, tally)) for op in operators]
        print(
            f"seeded {config.clients} operators + {len(numbers)} clients in {seeded_s:.1f} s;"
            f" {config.clients} websocket clients ready in {connect_s:.1f} s",
            flush=True,
        )

        load_task = asyncio.create_task(load.run())
        await asyncio.sleep(config.warmup)
        load.phase = "measure"
        events_before, frames_before = sim.events_emitted, sim.frames_written
        bytes_before = sim.bytes_written
        pids = server.pids()
        cpu_before = {role: cpu_ticks(pid) for role, pid in pids.items()}
        bench_cpu_before = os.times()
        machine_before = machine_ticks()
        window_start = time.perf_counter()
        if config.profile == "pyspy":
            spy = await pyspy_record(server.pid, config.seconds, workdir / "pyspy.txt")
        await asyncio.sleep(config.seconds)
        window_s = time.perf_counter() - window_start
        cpu_after = {role: cpu_ticks(pid) for role, pid in pids.items()}
        bench_cpu_after = os.times()
        machine_after = machine_ticks()
        events = sim.events_emitted - events_before
        frames = sim.frames_written - frames_before
        written = sim.bytes_written - bytes_before
        load.phase = "cooldown"

        measured = [lid for lid, call in load.placed.items() if call.phase == "measure"]
        deadline = time.monotonic() + config.drain
        while any(lid not in tally.pops for lid in measured) and time.monotonic() < deadline:
            if not server.alive():
                break
            await asyncio.sleep(0.05)
        load.stopped = True
        if spy is not None:
            _, spy_err = await spy.communicate()
            if spy.returncode:
                print(f"py-spy failed: {spy_err.decode(errors='replace')[-800:]}", file=sys.stderr)

        died = not server.alive()
        health: dict[str, Any] = {}
        api_metrics: dict[str, dict[str, float]] = {}
        apply_lag: dict[str, float] = {}
        if not died:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    health = (await http.get("/api/health")).json()
            for role, api_url in server.api_urls.items():
                api_metrics[role] = await scrape(f"{api_url}/metrics", API_METRICS)
            if server.sink_metrics_url:
                apply_lag = await adapter_apply_lag(server.sink_metrics_url)
    finally:
        load.stopped = True
        tally.stopping = True
        if load_task is not None:
            load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await load_task
        closing = [op.ws.close() for op in operators if op.ws is not None]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), 15)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        if spy is not None and spy.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                spy.kill()
            await spy.wait()
        code = await server.stop()
        await sim.stop()
        if config.scale_out:
            await delete_redis_keys(config.redis_url, config.key_prefix)
    if code not in (0, None):
        print(f"note: the server exited with status {code}", file=sys.stderr)

    latencies: list[float] = []
    unwritten = 0
    lost: list[str] = []
    known_latencies: list[float] = []
    for lid in measured:
        pop = tally.pops.get(lid)
        written_at = sim.ring_written.get(lid)
        if written_at is None:
            unwritten += 1
        elif pop is None:
            lost.append(lid)
        else:
            latencies.append((pop.at - written_at) * 1000)
            if load.placed[lid].known:
                known_latencies.append(latencies[-1])
    by_process = {role: cpu_delta(cpu_before[role], cpu_after[role]) for role in pids}
    # The event loop runs on the main thread; the others are aiosqlite's connection threads
    # (or asyncpg's none) and the default executor.
    server_cpu = by_process[server.sink]
    threads = {"event loop (main thread)": server_cpu.pop(str(pids[server.sink]), 0.0)}
    threads["other threads"] = sum(server_cpu.values())
    process_cpu_s = {
        role: round(sum(cpu_delta(cpu_before[role], cpu_after[role]).values()), 2) for role in pids
    }
    server_cpu_s = sum(process_cpu_s.values())
    bench_cpu_s = (bench_cpu_after.user - bench_cpu_before.user) + (
        bench_cpu_after.system - bench_cpu_before.system
    )
    machine_busy_s = (machine_after[0] - machine_before[0]) / _CLK_TCK
    machine_total_s = (machine_after[1] - machine_before[1]) / _CLK_TCK
    target = TARGET_SCALE_OUT_P99_MS if config.scale_out else TARGET_P99_MS
    figures: dict[str, Any] = {
        "mode": f"scale-out: {config.apis} API processes + adapter process, Redis streams"
        + (", early pops" if config.early_pops else "")
        if config.scale_out
        else "embedded: one process",
        "database": url.split(":")[0] if config.database_url else "sqlite (embedded default)",
        "rate_calls_per_s": config.rate,
        "clients": config.clients,
        "seconds": round(window_s, 3),
        "warmup_s": config.warmup,
        "arrivals": "poisson" if config.poisson else "uniform",
        "known_caller_share": config.known_share,
        "pops_expected": len(measured),
        "pops_received": len(latencies),
        "pops_lost": len(lost),
        "ring_frames_not_written": unwritten,
        "pop_latency_ms": summarize(latencies),
        "pop_latency_known_caller_ms": summarize(known_latencies),
        "target_p99_ms": target,
        "target_met": bool(latencies)
        and not lost
        and percentile(sorted(latencies), 0.99) <= target,
        "pops_per_s": round(len(latencies) / window_s, 1),
        "calls_per_s_placed": round(len(measured) / window_s, 1),
        "ami_events_per_s": round(events / window_s, 1),
        "ami_frames_written_per_s": round(frames / window_s, 1),
        "ami_kib_written_per_s": round(written / 1024 / window_s, 1),
        "server_cpu_s": round(server_cpu_s, 2),
        "server_cpu_share": round(server_cpu_s / window_s, 3),
        "server_cpu_by_thread_s": {k: round(v, 2) for k, v in threads.items()},
        "server_cpu_by_process_s": process_cpu_s,
        "api_metrics_at_end": api_metrics,
        "adapter_apply_lag_ms": apply_lag,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "bench_process_cpu_share": round(bench_cpu_s / window_s, 3),
        "bench_schedule_lag_ms": summarize(load.lag_ms),
        "machine_cpu_busy_share": round(machine_busy_s / machine_total_s, 3),
        "other_processes_cpu_share": round(
            max(0.0, machine_busy_s - server_cpu_s - bench_cpu_s) / window_s, 3
        ),
        "duplicate_pops": tally.duplicates,
        "misrouted_pops": tally.misrouted,
        "pops_of_unknown_calls": tally.unknown_calls,
        "websocket_disconnects": len(tally.disconnects),
        "messages_by_type": dict(tally.messages.most_common()),
        "pbx_health": health.get("pbx"),
        "server_died_during_run": died,
        "server_exit_status": code,
        "cpus": os.cpu_count(),
        "git_head": git_head(),
    }
    if config.profile == "stages":
        figures["stages"] = stage_figures(
            workdir / "stages.json", measured, sim.ring_written, tally.pops, window_s
        )
    if lost:
        figures["lost_call_keys_sample"] = lost[:10]
    if tally.disconnects:
        figures["disconnects_sample"] = tally.disconnects[:5]
    return figures


# --------------------------------------------------------------------------- reporting


_PYSPY_PARTS = (
    ("sink: caller card queries", ("caller_card (",)),
    ("sink: commit", ("Session.commit (",)),
    ("sink: publish (JSON)", ("InMemoryStreams.publish (", "encode_event (")),
    ("sink: identify caller", ("_identify_caller (",)),
    ("sink: dedupe insert", ("insert_new_events (",)),
    ("sink: notifications", ("_notifications (",)),
    ("sink: rest of ingest", ("ingest (callcenter", "CallEventSink", "EventPipeline._drain")),
    ("websocket heartbeats", ("_heartbeats (", "principal_from_cookie (")),
    ("websocket send", ("_forward (", "WebSocket.send (", "WebSocketsSansIOProtocol.send (")),
    ("AMI read + frame parsing", ("FrameParser.feed (", "data_received (pbx_adapter")),
    ("AMI translate", ("translate (pbx_adapter",)),
    ("socket writes (PostgreSQL, Redis)", ("_SelectorSocketTransport.write (",)),
    ("AMI dispatch", ("AmiClient._dispatch (", "AmiClient.on_event (")),
)
"""How `--profile pyspy` files the event loop's samples: the first part whose marker
appears in a stack wins."""


IDLE_PART = "uvloop native code (mostly epoll_pwait: waiting), not in the shares"
SELECTOR_IDLE_PART = "asyncio's selector waiting for I/O (no uvloop here), not in the shares"


def pyspy_parts(path: Path) -> dict[str, float]:
    """The event-loop thread's samples by part of the pipeline, as shares of its busy ones.

    SQLAlchemy runs statements inside greenlets, whose stacks py-spy shows without their
    async caller: those are filed apart (nearly all of them are the sink's statements).
    Samples with no Python frame below the loop are uvloop's own C code; a `--native`
    sample shows them mostly in epoll_pwait, so they are reported but not counted as busy.
    """
    parts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue  # a line py-spy cut short
        if "MainThread" not in stack.split(";", 1)[0]:
            continue
        frames = stack.split(";")
        loop_at = next((i for i, f in enumerate(frames) if f.startswith("Runner.run ")), None)
        if loop_at is None and ("sqlalchemy/" in stack or "aiosqlite/" in stack):
            part = "SQLAlchemy in greenlets (caller not shown; ~all sink)"
        elif len(frames) == 1 or loop_at == len(frames) - 1:
            part = IDLE_PART
        elif frames[-1].startswith("EpollSelector.select ("):
            part = SELECTOR_IDLE_PART
        else:
            part = next(
                (name for name, marks in _PYSPY_PARTS if any(m in stack for m in marks)),
                "other",
            )
        parts[part] += int(count)
    busy = sum(n for name, n in parts.items() if name not in (IDLE_PART, SELECTOR_IDLE_PART)) or 1
    return {name: round(n / busy, 3) for name, n in parts.most_common()}


def print_profile(workdir: Path, kind: str, top: int = 40) -> dict[str, Any]:
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    if kind == "cprofile":
        import pstats

        path = workdir / "server.prof"
        if not path.exists():
            print("no cProfile output (the server did not exit cleanly)", file=sys.stderr)
            return {}
        stats = pstats.Stats(str(path))
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        keep = results / "screen_pop.prof"
        shutil.copyfile(path, keep)
        print(f"cProfile data kept at {keep}")
        return {"cprofile": str(keep)}
    if kind == "pyspy":
        path = workdir / "pyspy.txt"
        if not path.exists():
            return {}
        keep = results / "screen_pop.pyspy.txt"
        shutil.copyfile(path, keep)
        parts = pyspy_parts(path)
        print("\nevent-loop thread samples (py-spy, the measured window) by part:")
        for name, share in parts.items():
            print(f"  {share:6.1%}  {name}")
        print(f"py-spy folded stacks kept at {keep}")
        return {"pyspy_file": str(keep), "event_loop_samples_by_part": parts}
    return {}


def report(figures: dict[str, Any]) -> None:
    latency = figures["pop_latency_ms"]
    print()
    for key, value in figures.items():
        if key in ("pbx_health", "messages_by_type", "server_cpu_by_thread_s", "stages", "profile"):
            continue
        print(f"{key:>28}: {value}")
    print(f"{'server_cpu_by_thread_s':>28}: {figures['server_cpu_by_thread_s']}")
    print(f"{'messages_by_type':>28}: {figures['messages_by_type']}")
    stages = figures.get("stages")
    if stages and "steps_ms" in stages:
        print(f"\nwhere a pop's time goes ({stages['pops_with_all_stamps']} pops fully stamped):")
        for step, values in stages["steps_ms"].items():
            print(f"  {step:>24}: {values}")
        print(f"  sink: {stages['sink_batches']} batches, busy {stages['sink_busy_share']:.0%}")
        for key, values in stages["sink_batch"].items():
            print(f"  {'batch ' + key:>24}: {values}")
        print(
            f"  per call: sink {stages['sink_ms_per_call']} ms, ingest()"
            f" {stages['ingest_ms_per_call']} ms, of which SQL cursor time"
            f" {stages['sql_cursor_ms_per_call']} ms; statements by time:"
        )
        for kind, values in list(stages["sql_statements"].items())[:15]:
            print(f"    {values}  {kind}")
    if figures["server_died_during_run"]:
        status = figures["server_exit_status"]
        print(f"\n!!! THE SERVER DIED DURING THE RUN (exit status {status})")
    if figures["pops_lost"] or figures["ring_frames_not_written"]:
        print("\n" + "!" * 72)
        print(
            f"!!! LOST POPS: {figures['pops_lost']} of {figures['pops_expected']} calls rang"
            f" and never popped ({figures['ring_frames_not_written']} never written to AMI)"
        )
        print("!" * 72)
    if latency:
        verdict = "MET" if figures["target_met"] else "MISSED"
        target = figures["target_p99_ms"]
        print(f"\npop p99 {latency['p99']} ms — target ≤ {target:g} ms: {verdict}")


def admin_sql(admin_url: str, sql: str) -> str:
    """Run `sql` on the PostgreSQL server of `admin_url`; its SQLAlchemy URL sans database."""
    import asyncpg  # type: ignore[import-untyped]

    async def execute() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute())
    return admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")


def main() -> int:
    if sys.argv[1:2] == ["--instrumented-server"]:
        return instrumented_server(Path(sys.argv[2]))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=None, help="calls/s (50; scale-out 100)")
    parser.add_argument(
        "--clients", type=int, default=None, help="websocket clients (200; scale-out 1000)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window (20)")
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help="an adapter process and --apis API processes on PostgreSQL and Redis streams",
    )
    parser.add_argument("--apis", type=int, default=2, help="API processes (scale-out; 2)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="(scale-out)")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("CALLCENTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"),
        help="scale-out without --database-url: a fresh database is made here, then dropped",
    )
    parser.add_argument(
        "--short", action="store_true", help="a quick setting: 100 operators, 10 calls/s"
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="uncounted warm-up (3)")
    parser.add_argument("--drain-seconds", type=float, default=10.0, dest="drain")
    parser.add_argument("--database-url", default=None, help="an empty database (default: SQLite)")
    parser.add_argument("--known-clients", type=int, default=500)
    parser.add_argument("--known-share", type=float, default=0.6)
    parser.add_argument("--answer-share", type=float, default=0.8)
    parser.add_argument("--ring-seconds", type=float, default=None, dest="ring_s")
    parser.add_argument("--talk-seconds", type=float, default=None, dest="talk_s")
    parser.add_argument("--poisson", action="store_true", help="Poisson arrivals, not uniform")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--profile", choices=["none", "stages", "pyspy", "cprofile"], default="none"
    )
    parser.add_argument("--result-name", default="screen_pop")
    parser.add_argument(
        "--early-pops",
        action="store_true",
        help="scale-out: the adapter pops rings before their batch commits (settings.early_pops)",
    )
    args = parser.parse_args()
    full = (100.0, 1000) if args.scale_out else (50.0, 200)
    short = (10.0, 100)
    rate, clients = short if args.short else full
    args.rate = args.rate if args.rate is not None else rate
    args.clients = args.clients if args.clients is not None else clients
    if args.scale_out and args.profile in ("stages", "cprofile"):
        parser.error("--scale-out profiles with --profile pyspy only (the adapter process)")
    if args.apis < 1:
        parser.error("--apis must be positive")
    if args.rate <= 0 or args.clients < 1 or args.seconds <= 0:
        parser.error("--rate, --clients and --seconds must be positive")
    # An operator gets a call every clients/rate seconds: calls must be over by then.
    cycle = args.clients / args.rate
    step = min(1.0, cycle / 3)
    config = Config(
        rate=args.rate,
        clients=args.clients,
        seconds=args.seconds,
        warmup=args.warmup,
        drain=args.drain,
        database_url=args.database_url,
        known_clients=args.known_clients,
        known_share=args.known_share,
        answer_share=args.answer_share,
        ring_s=args.ring_s if args.ring_s is not None else step,
        talk_s=args.talk_s if args.talk_s is not None else step,
        poisson=args.poisson,
        seed=args.seed,
        profile=args.profile,
        result_name=args.result_name,
        scale_out=args.scale_out,
        apis=args.apis,
        redis_url=args.redis_url,
        early_pops=args.early_pops,
        key_prefix=f"bench-screen-pop-{secrets.token_hex(4)}:",
    )
    os.environ.update(FAST_ARGON2)
    fresh_database = ""
    if config.scale_out and not config.database_url:
        fresh_database = f"bench_screen_pop_{secrets.token_hex(4)}"
        url = admin_sql(args.pg_admin_url, f'CREATE DATABASE "{fresh_database}"')
        config = dataclasses.replace(config, database_url=f"{url}/{fresh_database}")
    try:
        with tempfile.TemporaryDirectory(prefix="screen_pop-") as tmp:
            workdir = Path(tmp)
            url = config.database_url or f"sqlite+aiosqlite:///{workdir}/screen_pop.db"
            figures = run_on_migrated_database(workdir, url, lambda log: run(config, workdir, log))
            if isinstance(figures, int):
                return figures
            if config.profile in ("pyspy", "cprofile"):
                figures["profile"] = print_profile(workdir, config.profile)
            figures["server_log_problems"] = server_log_problems(workdir)
    finally:
        if fresh_database:
            admin_sql(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{fresh_database}" WITH (FORCE)')
    report(figures)
    print(f"\nwritten to {write_result(config.result_name, figures)}")
    failed = figures["pops_lost"] or figures["ring_frames_not_written"]
    return 1 if failed or figures["server_died_during_run"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
