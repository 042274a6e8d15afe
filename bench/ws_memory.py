"""Memory per idle operator websocket in one API process.

N operators (users with extensions) log in, then each opens its authenticated `/ws`, sends
`resume` and waits for `ready`; the sockets then stay idle (the server's heartbeats still
flow). The server's VmRSS and Pss (/proc/PID/status, /proc/PID/smaps_rollup) are read
after the logins and after every `--step` sockets; the figure is the slope from the first
step to the last (the first sockets also pay one-off costs: lazy imports, pools), and the
plain (after - before) / N beside it.

The server is `callcenter serve` on a fresh migrated SQLite file (the embedded default) or,
with `--redis-url`, on Redis streams under a key prefix of its own (deleted afterwards).
The client is this one asyncio process (the `websockets` library); the open-file limit is
raised to the hard limit here and the server inherits it.

`--tracemalloc`: the server runs with tracemalloc on (through this file, no product change)
and writes a snapshot on SIGUSR1; the allocations that grew between the first and the last
step are printed by source line: what each connection holds.

    .venv/bin/python bench/ws_memory.py [--connections 5000] [--step 1000]
        [--redis-url redis://127.0.0.1:6379/0] [--tracemalloc] [--result-name ws_memory]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pickle
import resource
import secrets
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import IO, Any

from _common import ROOT, callcenter_command, run_on_migrated_database, write_result
from screen_pop import (
    FAST_ARGON2,
    FIRST_EXTENSION,
    HOST,
    Operator,
    Server,
    delete_redis_keys,
    free_port,
    gather_limited,
    git_head,
    log_in,
    open_stream,
    seed,
)

TARGET_KIB = 30.0
SNAPSHOT_SIGNAL = signal.SIGUSR1


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards `wanted` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (status) and Pss (smaps_rollup) of `pid`, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "Pss":
                out["Pss"] = int(value.split()[0])
    return out


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --------------------------------------------------------------------------- traced server


def traced_server(out: Path) -> int:
    """`callcenter serve` with tracemalloc on; SIGUSR1 writes `out/snapshot-<n>.pickle`."""
    from callcenter import cli

    tracemalloc.start(1)
    taken = 0

    def snapshot(*_: Any) -> None:
        nonlocal taken
        taken += 1
        path = out / f"snapshot-{taken}.pickle"
        partial = path.with_suffix(".part")
        with partial.open("wb") as file:
            pickle.dump(tracemalloc.take_snapshot(), file)
        partial.rename(path)

    signal.signal(SNAPSHOT_SIGNAL, snapshot)
    return cli.main(["serve"])


async def take_snapshot(pid: int, workdir: Path, number: int) -> Path:
    path = workdir / f"snapshot-{number}.pickle"
    os.kill(pid, SNAPSHOT_SIGNAL)
    deadline = time.monotonic() + 300
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the traced server wrote no snapshot")
        await asyncio.sleep(0.2)
    return path


def growth(
    first: Path, last: Path, connections: int, top: int = 40
) -> tuple[int, list[dict[str, Any]]]:
    """What grew between two snapshots per socket: in all, and by the innermost
    product/library line (the `top` largest)."""
    before = pickle.loads(first.read_bytes())
    after = pickle.loads(last.read_bytes())
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    total = round(sum(stat.size_diff for stat in stats) / connections)
    rows = []
    for stat in stats[:top]:
        frame = stat.traceback[0]
        rows.append(
            {
                "where": f"{_short(frame.filename)}:{frame.lineno}",
                "kib_total": round(stat.size_diff / 1024, 1),
                "bytes_per_connection": round(stat.size_diff / connections),
                "blocks_per_connection": round(stat.count_diff / connections, 2),
            }
        )
    return total, rows


def _short(filename: str) -> str:
    for marker in ("site-packages/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.removeprefix(str(ROOT) + "/")


# --------------------------------------------------------------------------- the run


async def run(args: argparse.Namespace, workdir: Path, url: str, log: IO[bytes]) -> dict[str, Any]:
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    operators = [
        Operator(FIRST_EXTENSION + i, f"op{FIRST_EXTENSION + i}") for i in range(args.connections)
    ]
    started = time.perf_counter()
    await seed(url, operators, [])
    seeded_s = time.perf_counter() - started

    port = free_port()
    base_url = f"http://{HOST}:{port}"
    prefix = f"bench-wsmem-{secrets.token_hex(4)}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(FAST_ARGON2)
    env.update(
        CALLCENTER_DATABASE_URL=url,
        CALLCENTER_HOST=HOST,
        CALLCENTER_PORT=str(port),
        CALLCENTER_ALLOWED_ORIGINS=f'["{base_url}"]',
        CALLCENTER_LOGIN_ATTEMPTS_PER_MINUTE="1000000",
        PYTHONUNBUFFERED="1",
    )
    if args.redis_url:
        env.update(CALLCENTER_REDIS_URL=args.redis_url, CALLCENTER_JOBS_KEY_PREFIX=prefix)
    command = [*callcenter_command(), "serve"]
    if args.tracemalloc:
        command = [sys.executable, str(Path(__file__).resolve()), "--traced-server", str(workdir)]
    server = Server(command, env, workdir, log)
    points: list[dict[str, Any]] = []
    snapshots: list[Path] = []
    try:
        await server.start(base_url, within_s=300 if args.tracemalloc else 60)
        await gather_limited([log_in(base_url, op) for op in operators], 16)
        await asyncio.sleep(args.settle)
        baseline = {"connections": 0, "fds": open_fds(server.pid), **memory_kib(server.pid)}
        print(f"  {baseline}", flush=True)
        opened = 0
        for target in [*range(args.step, args.connections, args.step), args.connections]:
            batch = operators[opened:target]
            await gather_limited([open_stream(base_url, op) for op in batch], 64)
            opened = target
            await asyncio.sleep(args.settle)
            if args.tracemalloc and (not snapshots or target == args.connections):
                snapshots.append(await take_snapshot(server.pid, workdir, len(snapshots) + 1))
            points.append(
                {"connections": opened, "fds": open_fds(server.pid), **memory_kib(server.pid)}
            )
            print(f"  {points[-1]}", flush=True)
        alive = sum(1 for op in operators if op.ws is not None and op.ws.close_code is None)
    finally:
        closing = [op.ws.close() for op in operators if op.ws is not None]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), 30)
        code = await server.stop()
        if args.redis_url:
            await delete_redis_keys(args.redis_url, prefix)
    first, last = points[0], points[-1]
    span = last["connections"] - first["connections"]
    slope = {
        key: round((last[key] - first[key]) / span, 2) if span else None
        for key in ("VmRSS", "Pss")
        if key in first
    }
    overall = {
        key: round((last[key] - baseline[key]) / last["connections"], 2)
        for key in ("VmRSS", "Pss")
        if key in baseline
    }
    figures: dict[str, Any] = {
        "streams": "redis" if args.redis_url else "memory (embedded)",
        "connections": args.connections,
        "connections_alive_at_end": alive,
        "memory_kib_after_logins": baseline,
        "memory_kib_by_connections": points,
        "kib_per_connection_overall": overall,
        "kib_per_connection_slope": slope,
        "target_kib_per_connection": TARGET_KIB,
        "target_met": bool(slope.get("VmRSS")) and (slope["VmRSS"] or 0) <= TARGET_KIB,
        "seeded_s": round(seeded_s, 1),
        "server_exit_status": code,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "git_head": git_head(),
    }
    if len(snapshots) >= 2:
        total, rows = growth(snapshots[0], snapshots[-1], span)
        figures["tracemalloc_bytes_per_connection"] = total
        figures["tracemalloc_growth_first_to_last_step"] = rows
    return figures


def main() -> int:
    if sys.argv[1:2] == ["--traced-server"]:
        return traced_server(Path(sys.argv[2]))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--step", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after each step")
    parser.add_argument("--redis-url", default="", help="Redis streams (default: in memory)")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--result-name", default="ws_memory")
    args = parser.parse_args()
    if args.connections < 2 or not 0 < args.step < args.connections:
        parser.error("--connections must be at least 2 and --step between 1 and it")
    limit = raise_fd_limit(args.connections + 1024)
    if limit < args.connections + 256:
        parser.error(f"the open-file limit ({limit}) is too low for {args.connections} sockets")
    os.environ.update(FAST_ARGON2)
    with tempfile.TemporaryDirectory(prefix="ws_memory-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite+aiosqlite:///{workdir}/ws_memory.db"
        figures = run_on_migrated_database(workdir, url, lambda log: run(args, workdir, url, log))
    if isinstance(figures, int):
        return figures
    for key, value in figures.items():
        if key not in ("memory_kib_by_connections", "tracemalloc_growth_first_to_last_step"):
            print(f"{key:>28}: {value}")
    for row in figures.get("tracemalloc_growth_first_to_last_step", []):
        print(
            f"  {row['bytes_per_connection']:>7} B/conn  {row['kib_total']:>9} KiB  {row['where']}"
        )
    print(f"\nwritten to {write_result(args.result_name, figures)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
