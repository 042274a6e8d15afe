"""Wallboard update latency: a PBX event → the `queues.updated` that shows it, received by
every supervisor's browser.

The embedded default app (`callcenter serve --with-pbx`: SQLite, in-process streams, one
uvicorn process) reads an AMI simulator into which this process places `--rate` inbound
calls/s (Poisson arrivals) across `--queues` queues whose members are the `--operators`
operators; `--supervisors` supervisors and every operator hold an authenticated websocket.
For each change a supervisor's wallboard shows, the time from the PBX event that caused it
to the receipt of the first `queues.updated` showing it; p50/p95/p99/max and the count.

How it is measured:

- this process runs the AMI simulator and all the websocket clients, so both ends are read
  from one clock (`time.perf_counter`); the server runs as its own process;
- the simulator's sessions are wrapped to note when each frame that changes a queue's view
  is written on the socket, by call (Linkedid): `QueueCallerJoin` (a caller waits),
  `AgentCalled` (an agent rings), `DialEnd` ANSWER (the agent talks, the caller stops
  waiting), `QueueCallerAbandon` (the caller gave up or timed out), `AgentComplete` (the
  talk is over);
- a `queues.updated` carries a queue's whole view; compared with the previous view of that
  queue, it shows changes: callers that began or stopped waiting, agents that began ringing
  with, talking on, or stopped talking on a call. Each change is matched to the last such
  frame written before the view arrived; its latency is the receipt minus that write. An
  update is compared once (when the first supervisor gets it); every supervisor's receipt
  is a sample. So the figure includes the product's coalescing of updates (a view per
  changed queue per ingest batch, at most one per queue per `queues_publish_interval_s`,
  the last state always sent), as a supervisor experiences it;
- clients stamp a message the moment `recv()` hands it over and read only its id and type
  from the text (one full JSON parse per update, not per supervisor), so 550 sockets in one
  process stay cheap; this process's own event-loop lag is measured and printed beside the
  figures: a busy client side inflates what it measures (the machine has 2 cores).

Run from the repository root:

    .venv/bin/python bench/wallboard.py [--rate 50] [--supervisors 50] [--operators 500]
        [--queues 10] [--seconds 40] [--publish-interval S] [--profile pyspy] [--short]

`--short` is the CI-sized run (5 calls/s, 5 supervisors, 50 operators, 8 s).
`--publish-interval` overrides the product's `CALLCENTER_QUEUES_PUBLISH_INTERVAL_S`;
`--no-deflate` makes the clients not offer permessage-deflate (browsers do offer it; the
server declines it, and would otherwise compress every message once per socket).
The machine is shared: the load average before and after the run, the server's CPU (cores)
and what other processes took are printed with the figures. `latency_p99_by_second_ms` (the
p99 of each second of the window) tells a steady load from stalls (a periodic one repeats).
Figures are printed and written to `bench/results/<--result-name>.json` (`wallboard`, or
`wallboard_short`). The exit status is 1 when no change was measured or the server died,
130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from _common import (
    callcenter_command,
    percentile,
    run_on_migrated_database,
    server_log_problems,
    write_result,
)
from screen_pop import (
    FAST_ARGON2,
    HOST,
    PASSWORD,
    Operator,
    Server,
    cpu_delta,
    cpu_ticks,
    free_port,
    gather_limited,
    git_head,
    log_in,
    machine_ticks,
    pyspy_record,
    server_env,
    summarize,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from pbx_adapter.simulator import AmiSimulator, CallTiming, QueueSpec

TARGET_P99_MS = 50.0
FIRST_EXTENSION = 2000
FIRST_SUPERVISOR_EXTENSION = 9000
_CLK_TCK = os.sysconf("SC_CLK_TCK")

# --------------------------------------------------------------------------- the PBX side

_WATCHED = {
    b"QueueCallerJoin": "join",
    b"AgentCalled": "ring",
    b"DialEnd": "answer",
    b"QueueCallerAbandon": "abandon",
    b"AgentComplete": "end",
}
"""AMI events whose write is noted, and the change each one causes on a wallboard."""
_FIELD = re.compile(rb"\r\n(Linkedid|Interface|DialStatus): ([^\r]*)")


class _StampingWriter:
    """Stands in for one simulator session's StreamWriter; notes the watched frames."""

    def __init__(self, inner: asyncio.StreamWriter, owner: StampingSimulator) -> None:
        self._inner = inner
        self._owner = owner

    def write(self, data: bytes) -> None:
        self._inner.write(data)
        self._owner.written(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class StampingSimulator(AmiSimulator):
    """The AMI simulator, with when each frame that changes a wallboard was written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes: dict[tuple[str, ...], list[float]] = defaultdict(list)
        """(change, linkedid[, interface]) → perf_counter() of each write, in order."""
        self.frames_written = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await super()._serve(reader, cast(asyncio.StreamWriter, _StampingWriter(writer, self)))

    def written(self, data: bytes) -> None:
        now = time.perf_counter()
        for frame in data.split(b"\r\n\r\n"):
            if not frame.startswith(b"Event: "):
                continue
            self.frames_written += 1
            name = frame[7 : frame.find(b"\r\n")] if b"\r\n" in frame else frame[7:]
            change = _WATCHED.get(name)
            if change is None:
                continue
            fields = {k.decode(): v.decode() for k, v in _FIELD.findall(frame)}
            linkedid = fields.get("Linkedid", "")
            if change == "answer" and fields.get("DialStatus") != "ANSWER":
                continue
            if change == "ring":
                self.writes[(change, linkedid, fields.get("Interface", ""))].append(now)
            else:
                self.writes[(change, linkedid)].append(now)

    def last_write(self, key: tuple[str, ...], before: float) -> float | None:
        """The last write of `key` at or before `before`."""
        times = self.writes.get(key)
        if not times:
            return None
        index = bisect_right(times, before)
        return times[index - 1] if index else None


def queue_specs(queues: int, operators: int) -> tuple[QueueSpec, ...]:
    """`queues` queues sharing the operators out evenly (`Local/<ext>@agents` members)."""
    extensions = [FIRST_EXTENSION + i for i in range(operators)]
    return tuple(
        QueueSpec(
            name=f"q{index + 1:02d}",
            did=f"80{index + 1:02d}",
            members=tuple(f"Local/{ext}@agents" for ext in extensions[index::queues]),
            timeout_s=60.0,
        )
        for index in range(queues)
    )


def call_timing(rate: float, operators: int) -> CallTiming:
    """Calls short enough that about half the operators are busy at `rate`."""
    # Little's law: busy agents ≈ rate × (ring + talk); aim at half of them.
    budget = max(1.0, 0.5 * operators / rate)
    return CallTiming(
        ring_s=(0.2, 0.8),
        talk_s=(0.4 * budget, budget),
        patience_s=(5.0, 30.0),
        ring_timeout_s=3.0,
        answer_probability=0.9,
        max_calls=10 * operators,
    )


# --------------------------------------------------------------------------- what a view shows


def view_facts(view: Mapping[str, Any]) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """The callers waiting, and per agent interface (state, call key) when ringing/talking."""
    waiting = {str(w["call_key"]) for w in view.get("waiting") or ()}
    agents: dict[str, tuple[str, str]] = {}
    for agent in view.get("agents") or ():
        call = agent.get("call")
        if call and agent.get("state") in ("ringing", "in_call"):
            agents[str(agent["interface"])] = (str(agent["state"]), str(call["call_key"]))
    return waiting, agents


def changes_between(
    before: tuple[set[str], dict[str, tuple[str, str]]],
    after: tuple[set[str], dict[str, tuple[str, str]]],
) -> list[tuple[str, ...]]:
    """What a wallboard shows anew, each as the key of the frame that caused it (candidates
    for a caller who stopped waiting: answered, or gave up)."""
    waiting_before, agents_before = before
    waiting_after, agents_after = after
    changes: list[tuple[str, ...]] = [
        ("join", key) for key in sorted(waiting_after - waiting_before)
    ]
    changes += [("left", key) for key in sorted(waiting_before - waiting_after)]
    for interface, (state, key) in sorted(agents_after.items()):
        if agents_before.get(interface) == (state, key):
            continue
        changes.append(("ring", key, interface) if state == "ringing" else ("answer", key))
    for interface, (state, key) in sorted(agents_before.items()):
        if state == "in_call" and agents_after.get(interface) != ("in_call", key):
            changes.append(("end", key))
    return changes


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Config:
    rate: float
    supervisors: int
    operators: int
    queues: int
    seconds: float
    warmup: float
    publish_interval: float | None
    deflate: bool
    seed: int
    profile: str
    result_name: str


@dataclass(slots=True)
class Update:
    """One `queues.updated` event: the frame writes of the changes it shows."""

    queue: str
    first_seen: float
    writes: list[float]
    kinds: list[str]
    unmatched: int


@dataclass(slots=True)
class Tally:
    """What the clients saw, filled in by their reader tasks."""

    sim: StampingSimulator
    measuring: bool = False
    updates: dict[str, Update] = field(default_factory=dict)
    views: dict[str, tuple[set[str], dict[str, tuple[str, str]]]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    """When each of `latencies_ms` was received (perf_counter)."""
    by_change_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    receipts: int = 0
    unmatched: int = 0
    updates_measured: set[str] = field(default_factory=set)
    supervisor_bytes: int = 0
    supervisor_bytes_by_type: Counter[str] = field(default_factory=Counter)
    supervisor_messages: Counter[str] = field(default_factory=Counter)
    operator_messages: Counter[str] = field(default_factory=Counter)
    disconnects: list[str] = field(default_factory=list)
    stopping: bool = False

    def update(self, event_id: str, text: str, now: float) -> Update:
        """The changes of the update `event_id` (worked out the first time it is seen)."""
        found = self.updates.get(event_id)
        if found is not None:
            return found
        view = json.loads(text)["queue"]
        queue = f"{view['pbx']}/{view['queue']}"
        after = view_facts(view)
        before = self.views.get(queue, (set(), {}))
        self.views[queue] = after
        writes: list[float] = []
        kinds: list[str] = []
        unmatched = 0
        for change in changes_between(before, after):
            candidates: Iterable[tuple[str, ...]] = (
                [("answer", change[1]), ("abandon", change[1])] if change[0] == "left" else [change]
            )
            found_at = [
                at for key in candidates if (at := self.sim.last_write(key, now)) is not None
            ]
            if found_at:
                writes.append(min(found_at))
                kinds.append(change[0])
            else:
                unmatched += 1
        made = Update(view["queue"], now, writes, kinds, unmatched)
        self.updates[event_id] = made
        return made


# --------------------------------------------------------------------------- seeding


async def seed(
    url: str, operators: list[Operator], supervisors: list[Operator], queues: int
) -> None:
    """Operators (an extension, a queue) and supervisors, committed before the server starts."""
    # Imported here: the password hasher reads FAST_ARGON2 from the environment on import.
    from callcenter.auth.models import Role
    from callcenter.auth.service import create_user
    from callcenter.config import Settings
    from callcenter.context import build_context

    ctx = build_context(Settings(database_url=url, _env_file=None))
    try:
        async with ctx.sessionmaker() as session:
            for index, op in enumerate(operators):
                await create_user(
                    session,
                    login=op.login,
                    name=f"Оператор {op.extension}",
                    password=PASSWORD,
                    role=Role.OPERATOR,
                    extensions=[str(op.extension)],
                    queues=[f"q{index % queues + 1:02d}"],
                )
            for sup in supervisors:
                await create_user(
                    session,
                    login=sup.login,
                    name=f"Супервизор {sup.extension}",
                    password=PASSWORD,
                    role=Role.SUPERVISOR,
                    extensions=[str(sup.extension)],
                )
            await session.commit()
    finally:
        await ctx.close()


# --------------------------------------------------------------------------- the browsers


async def open_stream(base_url: str, user: Operator, *, deflate: bool) -> None:
    """Resume from the snapshot's ids, as the page does. Browsers offer permessage-deflate
    (and the server then compresses every message for every socket); `deflate=False` is a
    client that does not."""
    ws = await connect(
        base_url.replace("http://", "ws://") + "/ws",
        additional_headers={"Cookie": f"cc_session={user.cookie}"},
        origin=Origin(base_url),
        compression="deflate" if deflate else None,
        ping_interval=None,
        open_timeout=60,
        max_queue=None,
    )
    await ws.send(json.dumps({"type": "resume", "last_ids": user.last_ids}))
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if message.get("type") == "ready":
            break
        if message.get("type") == "reload":
            raise RuntimeError(f"{user.login}: the server asked for a reload at connect")
    user.ws = ws


_HEAD = re.compile(r'^\{"id":"([^"]+)","topic":"[^"]*","type":"([\w.]+)"')


async def follow_supervisor(sup: Operator, tally: Tally) -> None:
    """Read one supervisor's stream; stamp each update the moment it is received."""
    assert sup.ws is not None
    try:
        async for message in sup.ws:
            now = time.perf_counter()
            text = message if isinstance(message, str) else message.decode()
            head = _HEAD.match(text)
            kind = head.group(2) if head else str(json.loads(text).get("type"))
            tally.supervisor_messages[kind] += 1
            tally.supervisor_bytes += len(text)
            tally.supervisor_bytes_by_type[kind] += len(text)
            if head is None or kind != "queues.updated":
                continue
            update = tally.update(head.group(1), text, now)
            if not tally.measuring:
                continue
            tally.receipts += 1
            tally.updates_measured.add(head.group(1))
            tally.unmatched += update.unmatched
            for written, change in zip(update.writes, update.kinds, strict=True):
                latency = (now - written) * 1000
                tally.latencies_ms.append(latency)
                tally.received_at.append(now)
                tally.by_change_ms[change].append(latency)
    except ConnectionClosed as exc:
        if not tally.stopping:
            tally.disconnects.append(f"{sup.login}: {exc}")


async def follow_operator(op: Operator, tally: Tally) -> None:
    """Drain one operator's stream (screen pops), counting what arrives."""
    assert op.ws is not None
    try:
        async for message in op.ws:
            text = message if isinstance(message, str) else message.decode()
            head = _HEAD.match(text)
            tally.operator_messages[head.group(2) if head else "other"] += 1
    except ConnectionClosed as exc:
        if not tally.stopping:
            tally.disconnects.append(f"{op.login}: {exc}")


@dataclass(slots=True)
class LoopLag:
    """How late this process's event loop wakes a 10 ms timer (its own load)."""

    samples_ms: list[float] = field(default_factory=list)
    measuring: bool = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            if self.measuring:
                self.samples_ms.append(max(0.0, loop.time() - due) * 1000)


# --------------------------------------------------------------------------- the load


@dataclass(slots=True)
class Load:
    """Places calls into the queues at `rate` calls/s (Poisson arrivals)."""

    sim: StampingSimulator
    rate: float
    queues: list[str]
    seed: int
    placed: int = 0
    placed_measured: int = 0
    measuring: bool = False

    async def run(self) -> None:
        rng = random.Random(self.seed)
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += rng.expovariate(self.rate)
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.sim.start_call(queue=rng.choice(self.queues))
            self.placed += 1
            if self.measuring:
                self.placed_measured += 1


# --------------------------------------------------------------------------- one run


async def run(config: Config, workdir: Path, log: IO[bytes]) -> dict[str, Any]:
    # SIGTERM stops the run as Ctrl-C does: cancelled, so every `finally` below cleans up.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    url = f"sqlite+aiosqlite:///{workdir}/wallboard.db"
    operators = [
        Operator(FIRST_EXTENSION + i, f"op{FIRST_EXTENSION + i}") for i in range(config.operators)
    ]
    supervisors = [
        Operator(FIRST_SUPERVISOR_EXTENSION + i, f"sup{FIRST_SUPERVISOR_EXTENSION + i}")
        for i in range(config.supervisors)
    ]
    started = time.perf_counter()
    await seed(url, operators, supervisors, config.queues)
    seeded_s = time.perf_counter() - started

    specs = queue_specs(config.queues, config.operators)
    secret = f"bench-{random.randrange(10**9)}"
    sim = StampingSimulator(
        HOST,
        0,
        "crm",
        secret,
        queues=specs,
        timing=call_timing(config.rate, config.operators),
        seed=config.seed,
    )
    await sim.start()
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    env = server_env(url, port, sim, secret)
    if config.publish_interval is not None:
        env["CALLCENTER_QUEUES_PUBLISH_INTERVAL_S"] = str(config.publish_interval)
    command = [*callcenter_command(), "serve", "--with-pbx"]
    server = Server(command, env, workdir, log)
    tally = Tally(sim)
    lag = LoopLag()
    load = Load(sim, config.rate, [spec.name for spec in specs], config.seed)
    readers: list[asyncio.Task[None]] = []
    background: list[asyncio.Task[None]] = []
    spy: asyncio.subprocess.Process | None = None
    try:
        await server.start(base_url)
        try:
            await sim.wait_logged_in(1, within_s=30)
        except TimeoutError:
            raise RuntimeError("the server's AMI adapter did not log in within 30 s") from None
        started = time.perf_counter()
        everyone = [*supervisors, *operators]
        await gather_limited([log_in(base_url, user) for user in everyone], 16)
        opening = [open_stream(base_url, u, deflate=config.deflate) for u in everyone]
        await gather_limited(opening, 32)
        connect_s = time.perf_counter() - started
        readers = [asyncio.create_task(follow_supervisor(s, tally)) for s in supervisors]
        readers += [asyncio.create_task(follow_operator(op, tally)) for op in operators]
        print(
            f"seeded {config.operators} operators + {config.supervisors} supervisors in"
            f" {seeded_s:.1f} s; {len(everyone)} websockets ready in {connect_s:.1f} s",
            flush=True,
        )

        background = [asyncio.create_task(load.run()), asyncio.create_task(lag.run())]
        await asyncio.sleep(config.warmup)
        tally.measuring = lag.measuring = load.measuring = True
        events_before, frames_before = sim.events_emitted, sim.frames_written
        bytes_before = tally.supervisor_bytes
        cpu_before, bench_cpu_before = cpu_ticks(server.pid), os.times()
        machine_before = machine_ticks()
        window_start = time.perf_counter()
        if config.profile == "pyspy":
            spy = await pyspy_record(server.pid, config.seconds, workdir / "pyspy.txt")
        await asyncio.sleep(config.seconds)
        tally.measuring = lag.measuring = load.measuring = False
        window_s = time.perf_counter() - window_start
        cpu_after, bench_cpu_after = cpu_ticks(server.pid), os.times()
        machine_after = machine_ticks()
        events = sim.events_emitted - events_before
        frames = sim.frames_written - frames_before
        sent_bytes = tally.supervisor_bytes - bytes_before
        if spy is not None:
            _, spy_err = await spy.communicate()
            if spy.returncode:
                print(f"py-spy failed: {spy_err.decode(errors='replace')[-800:]}", file=sys.stderr)
        died = not server.alive()
    finally:
        tally.stopping = True
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        closing = [u.ws.close() for u in [*supervisors, *operators] if u.ws is not None]
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
    if code not in (0, None):
        print(f"note: the server exited with status {code}", file=sys.stderr)

    latencies = sorted(tally.latencies_ms)
    per_second: dict[int, list[float]] = defaultdict(list)
    for at, latency in zip(tally.received_at, tally.latencies_ms, strict=True):
        per_second[int(at - window_start)].append(latency)
    p99_by_second = [
        round(percentile(sorted(per_second[second]), 0.99), 1) for second in sorted(per_second)
    ]
    server_cpu = cpu_delta(cpu_before, cpu_after)
    threads = {"event loop (main thread)": server_cpu.pop(str(server.pid), 0.0)}
    threads["other threads"] = sum(server_cpu.values())
    server_cpu_s = sum(threads.values())
    bench_cpu_s = (bench_cpu_after.user - bench_cpu_before.user) + (
        bench_cpu_after.system - bench_cpu_before.system
    )
    machine_busy_s = (machine_after[0] - machine_before[0]) / _CLK_TCK
    machine_total_s = (machine_after[1] - machine_before[1]) / _CLK_TCK
    measured = [tally.updates[i] for i in tally.updates_measured]
    view_bytes = sent_bytes / max(1, sum(tally.supervisor_messages.values()))
    figures: dict[str, Any] = {
        "database": "sqlite (embedded default)",
        "rate_calls_per_s": config.rate,
        "supervisors": config.supervisors,
        "operators": config.operators,
        "queues": config.queues,
        "publish_interval_s": (
            config.publish_interval if config.publish_interval is not None else "product default"
        ),
        "websocket_compression_offered": "permessage-deflate" if config.deflate else "none",
        "seconds": round(window_s, 3),
        "warmup_s": config.warmup,
        "calls_placed_per_s": round(load.placed_measured / window_s, 1),
        "update_latency_ms": summarize(latencies),
        "latency_samples": len(latencies),
        "target_p99_ms": TARGET_P99_MS,
        "target_met": bool(latencies) and percentile(latencies, 0.99) <= TARGET_P99_MS,
        "latency_p99_by_second_ms": p99_by_second,
        "latency_by_change_ms": {
            kind: {**summarize(values), "samples": len(values)}
            for kind, values in sorted(tally.by_change_ms.items())
        },
        "updates_per_s": round(len(measured) / window_s, 1),
        "updates_received_per_s": round(tally.receipts / window_s, 1),
        "changes_per_update": round(
            sum(len(u.writes) for u in measured) / max(1, len(measured)), 2
        ),
        "changes_not_matched_to_a_frame": tally.unmatched,
        "supervisor_kib_received_per_s": round(sent_bytes / 1024 / window_s, 1),
        "mean_supervisor_message_bytes": round(view_bytes),
        "mean_supervisor_message_bytes_by_type": {
            kind: round(tally.supervisor_bytes_by_type[kind] / count)
            for kind, count in tally.supervisor_messages.most_common()
        },
        "supervisor_messages_by_type": dict(tally.supervisor_messages.most_common()),
        "operator_messages_by_type": dict(tally.operator_messages.most_common()),
        "ami_events_per_s": round(events / window_s, 1),
        "ami_frames_written_per_s": round(frames / window_s, 1),
        "server_cpu_share": round(server_cpu_s / window_s, 3),
        "server_cpu_by_thread_s": {k: round(v, 2) for k, v in threads.items()},
        "bench_process_cpu_share": round(bench_cpu_s / window_s, 3),
        "bench_loop_lag_ms": summarize(lag.samples_ms),
        "machine_cpu_busy_share": round(machine_busy_s / machine_total_s, 3),
        "other_processes_cpu_share": round(
            max(0.0, machine_busy_s - server_cpu_s - bench_cpu_s) / window_s, 3
        ),
        "websocket_disconnects": len(tally.disconnects),
        "server_died_during_run": died,
        "server_exit_status": code,
        "cpus": os.cpu_count(),
        "git_head": git_head(),
    }
    if tally.disconnects:
        figures["disconnects_sample"] = tally.disconnects[:5]
    if config.profile == "pyspy" and (workdir / "pyspy.txt").exists():
        figures["profile"] = pyspy_summary(workdir / "pyspy.txt")
    return figures


# --------------------------------------------------------------------------- profile

_PARTS = (
    ("live board: fold (queues.live.apply)", ("apply (callcenter/queues/live.py",)),
    ("live board: view + KPIs", ("queue_view (", "kpi_values (", "compute_all (")),
    ("live board: pydantic dump", ("model_dump (",)),
    ("publish: JSON encode", ("encode_event (",)),
    ("live board: other", ("callcenter/queues/",)),
    ("websocket send", ("_forward (", "WebSocket.send (", "send_text (")),
    ("websocket heartbeats", ("_heartbeats (",)),
    ("call sink (ingest, SQL, commit)", ("CallEventSink", "ingest (callcenter", "sqlalchemy/")),
    ("AMI read + parse + translate", ("pbx_adapter/",)),
)
"""How the event loop's py-spy samples are filed: the first part whose marker appears in
the stack wins."""


def pyspy_summary(path: Path) -> dict[str, Any]:
    """The server's main-thread samples by part (shares of the busy ones), kept beside the
    results."""
    parts: Counter[str] = Counter()
    idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "MainThread" not in stack.split(";", 1)[0]:
            continue
        frames = stack.split(";")
        if len(frames) <= 2:
            idle += int(count)
            continue
        part = next((name for name, marks in _PARTS if any(m in stack for m in marks)), "other")
        parts[part] += int(count)
    busy = sum(parts.values()) or 1
    keep = Path(__file__).resolve().parent / "results" / "wallboard.pyspy.txt"
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, keep)
    return {
        "pyspy_file": str(keep),
        "main_thread_idle_samples": idle,
        "main_thread_busy_by_part": {n: round(c / busy, 3) for n, c in parts.most_common()},
    }


# --------------------------------------------------------------------------- reporting


def report(figures: dict[str, Any]) -> None:
    print()
    skip = {"supervisor_messages_by_type", "operator_messages_by_type", "latency_by_change_ms"}
    for key, value in figures.items():
        if key not in skip and key != "profile":
            print(f"{key:>34}: {value}")
    print(f"{'latency_by_change_ms':>34}:")
    for kind, values in figures["latency_by_change_ms"].items():
        print(f"{kind:>34}  {values}")
    print(f"{'supervisor_messages_by_type':>34}: {figures['supervisor_messages_by_type']}")
    print(f"{'operator_messages_by_type':>34}: {figures['operator_messages_by_type']}")
    profile = figures.get("profile")
    if profile:
        print("\nserver event loop, busy samples by part (py-spy):")
        for name, share in profile["main_thread_busy_by_part"].items():
            print(f"  {share:6.1%}  {name}")
    if figures["server_died_during_run"]:
        print(f"\n!!! THE SERVER DIED DURING THE RUN (exit {figures['server_exit_status']})")
    latency = figures["update_latency_ms"]
    if latency:
        verdict = "MET" if figures["target_met"] else "MISSED"
        print(
            f"\nwallboard update p99 {latency['p99']} ms over {figures['latency_samples']}"
            f" samples — target ≤ {TARGET_P99_MS:g} ms: {verdict}"
        )
    else:
        print("\n!!! no wallboard change was measured")


def log_problems(workdir: Path, keep: int = 5) -> list[str]:
    """The first error, warning or traceback lines of the server's log."""
    lines = (workdir / "server.log").read_text(errors="replace").splitlines()
    return [
        line[:300] for line in lines if "ERROR" in line or "WARNING" in line or "Traceback" in line
    ][:keep]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=None, help="calls/s (50)")
    parser.add_argument("--supervisors", type=int, default=None, help="(50)")
    parser.add_argument("--operators", type=int, default=None, help="(500)")
    parser.add_argument("--queues", type=int, default=None, help="(10)")
    parser.add_argument("--seconds", type=float, default=None, help="measured window (40)")
    parser.add_argument("--warmup", type=float, default=None, help="uncounted warm-up (5)")
    parser.add_argument(
        "--publish-interval",
        type=float,
        default=None,
        help="CALLCENTER_QUEUES_PUBLISH_INTERVAL_S for the server (default: the product's)",
    )
    parser.add_argument(
        "--no-deflate",
        dest="deflate",
        action="store_false",
        help="clients do not offer permessage-deflate (browsers do)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", choices=["none", "pyspy"], default="none")
    parser.add_argument("--short", action="store_true", help="a CI-sized run")
    parser.add_argument("--result-name", default=None)
    args = parser.parse_args()
    sizes = (
        {"rate": 5.0, "supervisors": 5, "operators": 50, "queues": 5, "seconds": 8.0, "warmup": 3.0}
        if args.short
        else {
            "rate": 50.0,
            "supervisors": 50,
            "operators": 500,
            "queues": 10,
            "seconds": 40.0,
            "warmup": 5.0,
        }
    )
    chosen = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in sizes.items()}
    config = Config(
        rate=float(chosen["rate"]),
        supervisors=int(chosen["supervisors"]),
        operators=int(chosen["operators"]),
        queues=int(chosen["queues"]),
        seconds=float(chosen["seconds"]),
        warmup=float(chosen["warmup"]),
        publish_interval=args.publish_interval,
        deflate=args.deflate,
        seed=args.seed,
        profile=args.profile,
        result_name=args.result_name or ("wallboard_short" if args.short else "wallboard"),
    )
    if config.rate <= 0 or config.supervisors < 1 or config.operators < config.queues:
        parser.error("--rate and --supervisors must be positive, --operators ≥ --queues")
    os.environ.update(FAST_ARGON2)
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="wallboard-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite+aiosqlite:///{workdir}/wallboard.db"
        figures = run_on_migrated_database(workdir, url, lambda log: run(config, workdir, log))
        if isinstance(figures, int):
            return figures
        figures["server_log_problems"] = server_log_problems(workdir)
        if figures["server_log_problems"]:
            figures["server_log_problems_sample"] = log_problems(workdir)
    figures["load_average_1min_before_after"] = [load_before, round(os.getloadavg()[0], 2)]
    report(figures)
    print(f"\nwritten to {write_result(config.result_name, figures)}")
    return 1 if not figures["latency_samples"] or figures["server_died_during_run"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
