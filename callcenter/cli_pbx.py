"""Composition root for PBX processes: the adapter, the simulator, replay, and the embedded mode.

This is the one place (with `cli.py`) that knows both `callcenter` and `pbx_adapter`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.config import Settings
from callcenter.context import AppContext

if TYPE_CHECKING:
    from pbx_adapter.ami import AmiClient
    from pbx_adapter.control import AmiPbxControl

log = logging.getLogger(__name__)


def add_pbx_commands(commands: Any) -> None:
    replay = commands.add_parser("replay", help="feed a recorded AMI stream into the database")
    replay.add_argument("file", type=Path)
    replay.add_argument("--pbx", default=None, help="PBX name the calls are keyed under")
    replay.set_defaults(handler=_replay)

    adapter = commands.add_parser("pbx-adapter", help="connect to the AMI in settings and run")
    adapter.add_argument(
        "--metrics-port",
        type=int,
        default=9105,
        help="serve /metrics (Prometheus) on this port; 0 to disable",
    )
    adapter.set_defaults(handler=_pbx_adapter)

    commands.add_parser(
        "simulate-pbx", help="run the built-in AMI simulator (see simulate-pbx --help)"
    )


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from callcenter.context import build_context
    from pbx_adapter.replay import replay_bytes

    if not args.file.is_file():
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 1

    async def run() -> None:
        ctx = build_context(settings)
        try:
            stats = await replay_bytes(
                args.file.read_bytes(), ctx.call_event_sink(), pbx=args.pbx or settings.pbx_name
            )
            await ctx.jobs.drain()  # in-process: the ended calls' jobs finish before we exit
        finally:
            await ctx.close()
        print(
            f"replayed {stats.frames} AMI frames → {stats.events} call events"
            f" ({stats.rejected} malformed frames set aside)"
        )

    asyncio.run(run())
    return 0


async def _open_calls_of(ctx: AppContext, pbx: str) -> list[Any]:
    from callcenter.calls.service import open_call_states

    async with ctx.sessionmaker() as session:
        return await open_call_states(session, pbx)


def make_adapter(ctx: AppContext, host: str, port: int, username: str, secret: str) -> Any:
    """An AMI adapter that applies its events through this context's call pipeline."""
    from pbx_adapter.runner import AmiAdapter

    pbx = ctx.settings.pbx_name
    adapter = AmiAdapter(
        host=host,
        port=port,
        username=username,
        secret=secret,
        pbx=pbx,
        sink=ctx.call_event_sink(),
        open_calls=lambda: _open_calls_of(ctx, pbx),
        live_sink=ctx.live_queues(),
        ping_interval_s=ctx.settings.ami_ping_interval_s,
        dead_after_s=ctx.settings.ami_dead_after_s,
        registry=ctx.metrics,
    )
    ctx.pbx_health = adapter.health
    ctx.pbx_control = make_pbx_control(ctx.settings, adapter.client)
    return adapter


def make_pbx_control(settings: Settings, client: AmiClient) -> AmiPbxControl:
    """Supervisor and operator actions over `client`, phones named as the settings say."""
    from pbx_adapter.control import AmiPbxControl, DeviceNaming

    naming = DeviceNaming(
        channel_template=settings.agent_channel_template,
        dialout_context=settings.dialout_context,
        ring_timeout_s=settings.originate_ring_timeout_s,
    )
    return AmiPbxControl(client, naming)


def _pbx_adapter(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import start_http_server

    from callcenter.context import build_context

    if not settings.ami_host or not settings.ami_username:
        print("error: set CALLCENTER_AMI_HOST and CALLCENTER_AMI_USERNAME/SECRET", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def run() -> None:
        ctx = build_context(settings)
        adapter = make_adapter(
            ctx,
            settings.ami_host,
            settings.ami_port,
            settings.ami_username,
            settings.ami_secret.get_secret_value(),
        )
        if args.metrics_port:
            start_http_server(args.metrics_port, addr="127.0.0.1", registry=ctx.metrics)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(adapter.stop()))
        try:
            await adapter.run()
        finally:
            await ctx.close()

    asyncio.run(run())
    return 0


Stop = Callable[[], Awaitable[None]]


def embedded_pbx(
    settings: Settings, *, simulate_rate: float, callers: Sequence[str] = ()
) -> Callable[[AppContext], Awaitable[Stop]]:
    """The adapter inside the API process; with no AMI host, against the built-in simulator."""

    async def start(ctx: AppContext) -> Stop:
        simulator = None
        host, port = settings.ami_host, settings.ami_port
        username, secret = settings.ami_username, settings.ami_secret.get_secret_value()
        if not host:
            from pbx_adapter.simulator import AmiSimulator

            username, secret = "crm", secrets.token_urlsafe(12)
            simulator = AmiSimulator(
                "127.0.0.1", 0, username, secret, rate=simulate_rate, callers=list(callers)
            )
            await simulator.start()
            host, port = simulator.host, simulator.port
            log.info("built-in AMI simulator on %s:%s, %g calls/s", host, port, simulate_rate)
        adapter = make_adapter(ctx, host, port, username, secret)
        task = asyncio.create_task(adapter.run(), name="pbx-adapter")

        async def stop() -> None:
            await adapter.stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
            if simulator is not None:
                await simulator.stop()

        return stop

    return start
