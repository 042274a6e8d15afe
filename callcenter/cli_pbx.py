"""Composition root for PBX processes: the adapter, the simulator, replay, and the embedded mode.

This is the one place (with `cli.py`) that knows both `callcenter` and `pbx_adapter`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.config import PbxSite, Settings
from callcenter.context import AppContext

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from pbx_adapter.ami import AmiClient
    from pbx_adapter.control import AmiPbxControl
    from pbx_adapter.lease import PbxLease

log = logging.getLogger(__name__)


def add_pbx_commands(commands: Any) -> None:
    replay = commands.add_parser("replay", help="feed a recorded AMI stream into the database")
    replay.add_argument("file", type=Path)
    replay.add_argument("--pbx", default=None, help="PBX name the calls are keyed under")
    replay.set_defaults(handler=_replay)

    adapter = commands.add_parser("pbx-adapter", help="connect to the AMI in settings and run")
    adapter.add_argument(
        "--pbx",
        default=None,
        metavar="NAME",
        help="which PBX of the settings (CALLCENTER_PBXS); default: CALLCENTER_PBX_NAME",
    )
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


def make_adapter(
    ctx: AppContext,
    host: str,
    port: int,
    username: str,
    secret: str,
    *,
    site: PbxSite | None = None,
    lease: PbxLease | None = None,
) -> Any:
    """An AMI adapter that applies its events through this context's call pipeline.

    `site`: which PBX (default: the single-PBX settings). `lease`: the adapter runs only
    while holding it, and its writes are fenced by it (several adapter processes per PBX).
    The first adapter made (or the default PBX's) answers the health and control endpoints.
    """
    from callcenter.phones import phone_identity
    from pbx_adapter.lease import LeaseFence
    from pbx_adapter.runner import AmiAdapter

    settings = ctx.settings
    pbx = site.name if site is not None else settings.pbx_name
    policy = ctx.ingest_policy()
    if site is not None and site.region and site.area_code:
        policy = dataclasses.replace(policy, phones=phone_identity(site.region, site.area_code))
    fence = LeaseFence(lease) if lease is not None else None
    sink = ctx.call_event_sink(policy, fence)
    adapter = AmiAdapter(
        host=host,
        port=port,
        username=username,
        secret=secret,
        pbx=pbx,
        sink=sink,
        open_calls=lambda: _open_calls_of(ctx, pbx),
        live_sink=ctx.live_queues(),
        ping_interval_s=settings.ami_ping_interval_s,
        dead_after_s=settings.ami_dead_after_s,
        registry=ctx.metrics,
        lease=lease,
        observer=sink.early,
    )
    if ctx.pbx_control is None or pbx == settings.pbx_name:
        ctx.pbx_health = adapter.health
        ctx.pbx_control = make_pbx_control(settings, adapter.client)
    return adapter


def make_lease(settings: Settings, redis: Redis, pbx: str) -> PbxLease:
    """The lease an adapter of `pbx` holds while it applies events (scale-out mode)."""
    from pbx_adapter.lease import PbxLease

    return PbxLease(
        redis,
        pbx,
        ttl_s=settings.pbx_lease_ttl_s,
        key_prefix=f"{settings.jobs_key_prefix}callcenter:",
    )


LEASE_COMMAND_TIMEOUT_S = 1.0
"""A lease command (renew, fence check) that takes longer fails: the fence check runs
inside the call records' transaction and under the PBX's write lock."""


def lease_redis(url: str) -> Redis:
    """The Redis client of the PBX lease: short timeouts and one retry on a broken
    connection (a restarted server), so a fence check fails within about two seconds
    instead of holding the write lock through the client's default retries."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Redis.from_url(
        url,
        socket_timeout=LEASE_COMMAND_TIMEOUT_S,
        socket_connect_timeout=LEASE_COMMAND_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1),
    )


def choose_site(settings: Settings, name: str | None) -> PbxSite:
    """The PBX named `name` (default: `pbx_name`, or the only one); ValueError if none."""
    sites = settings.pbx_sites()
    wanted = name or (sites[0].name if len(sites) == 1 else settings.pbx_name)
    for site in sites:
        if site.name == wanted:
            return site
    known = ", ".join(site.name for site in sites) or "none"
    raise ValueError(f"no PBX named {wanted!r} in the settings (configured: {known})")


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

    try:
        site = choose_site(settings, args.pbx)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not site.ami_host or not site.ami_username:
        print(
            f"error: PBX {site.name}: set its AMI host, username and secret"
            " (CALLCENTER_AMI_HOST/USERNAME/SECRET, or CALLCENTER_PBXS)",
            file=sys.stderr,
        )
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def run() -> None:

        ctx = build_context(settings)
        # With Redis (scale-out), several adapter processes may run for one PBX: the lease
        # lets exactly one apply events. Without it this is the only adapter.
        redis = lease_redis(settings.redis_url) if settings.redis_url else None
        adapter = make_adapter(
            ctx,
            site.ami_host,
            site.ami_port,
            site.ami_username,
            site.ami_secret.get_secret_value(),
            site=site,
            lease=make_lease(settings, redis, site.name) if redis is not None else None,
        )
        if args.metrics_port:
            start_http_server(args.metrics_port, addr="127.0.0.1", registry=ctx.metrics)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(adapter.stop()))
        try:
            await adapter.run()
        finally:
            if redis is not None:
                await redis.aclose()
            await ctx.close()

    from callcenter.runtime import run_service

    run_service(run())
    return 0


Stop = Callable[[], Awaitable[None]]


def embedded_pbx(
    settings: Settings, *, simulate_rate: float, callers: Sequence[str] = ()
) -> Callable[[AppContext], Awaitable[Stop]]:
    """The adapters inside the API process, one per PBX of the settings; a PBX with no AMI
    host runs against a built-in simulator of its own."""

    async def start(ctx: AppContext) -> Stop:

        from pbx_adapter.simulator import AmiSimulator

        simulators: list[AmiSimulator] = []
        adapters: list[tuple[Any, asyncio.Task[None]]] = []
        # Several API processes with `--with-pbx` on one Redis: one of them applies each PBX.
        redis = lease_redis(settings.redis_url) if settings.redis_url else None
        for site in settings.pbx_sites():
            host, port = site.ami_host, site.ami_port
            username, secret = site.ami_username, site.ami_secret.get_secret_value()
            if not host:
                username, secret = "crm", secrets.token_urlsafe(12)
                simulator = AmiSimulator(
                    "127.0.0.1", 0, username, secret, rate=simulate_rate, callers=list(callers)
                )
                await simulator.start()
                simulators.append(simulator)
                host, port = simulator.host, simulator.port
                log.info(
                    "PBX %s: built-in AMI simulator on %s:%s, %g calls/s",
                    site.name,
                    host,
                    port,
                    simulate_rate,
                )
            lease = make_lease(settings, redis, site.name) if redis is not None else None
            adapter = make_adapter(ctx, host, port, username, secret, site=site, lease=lease)
            task = asyncio.create_task(adapter.run(), name=f"pbx-adapter-{site.name}")
            adapters.append((adapter, task))

        async def stop() -> None:
            for adapter, task in adapters:
                await adapter.stop()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 10)
            for simulator in simulators:
                await simulator.stop()
            if redis is not None:
                await redis.aclose()

        return stop

    return start
