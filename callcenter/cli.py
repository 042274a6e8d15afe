"""`callcenter` command line: the composition root that wires processes together."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence

from callcenter.config import Settings, get_settings


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["simulate-pbx"]:
        # The simulator parses its own options (`callcenter simulate-pbx --help`).
        from pbx_adapter.simulator import main as simulator_main

        code: int = simulator_main(arguments[1:])
        return code
    parser = _parser()
    args = parser.parse_args(arguments)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    result: int = args.handler(args, get_settings())
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcenter", description=__doc__)
    commands = parser.add_subparsers(title="commands")

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(handler=_migrate)

    serve = commands.add_parser("serve", help="run the API and UI")
    serve.add_argument(
        "--with-pbx",
        action="store_true",
        help="also run the PBX adapter in this process (simulator if no AMI host)",
    )
    serve.add_argument(
        "--simulate-rate",
        type=float,
        default=0.2,
        help="calls/s the built-in simulator generates (with --with-pbx)",
    )
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser("demo", help="migrate, seed demo users and clients, serve all")
    demo.add_argument("--simulate-rate", type=float, default=0.2)
    demo.set_defaults(handler=_demo)

    user = commands.add_parser("user", help="manage users").add_subparsers(title="user commands")
    add = user.add_parser("add", help="add a user")
    add.add_argument("--login", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", choices=["operator", "supervisor", "admin"], default="operator")
    add.add_argument(
        "--extension",
        action="append",
        default=[],
        help="an AMI interface or extension that rings this user (repeatable)",
    )
    add.add_argument("--queue", action="append", default=[])
    add.add_argument("--locale", choices=["ru", "en"], default="ru")
    add.add_argument(
        "--password-env",
        metavar="VAR",
        help="read the password from this environment variable instead of a prompt",
    )
    add.set_defaults(handler=_user_add)

    worker = commands.add_parser(
        "worker", help="run a Celery worker for the background jobs (needs a Redis URL)"
    )
    worker.add_argument("--concurrency", "-c", type=int, default=None)
    worker.add_argument("--pool", choices=["prefork", "solo", "threads"], default="prefork")
    worker.add_argument(
        "--queues", "-Q", default=None, help="comma-separated queues (default: all of them)"
    )
    worker.add_argument("--loglevel", "-l", default="INFO")
    worker.set_defaults(handler=_worker)

    beat = commands.add_parser("beat", help="run Celery beat: sends the periodic jobs")
    beat.add_argument("--loglevel", "-l", default="INFO")
    beat.set_defaults(handler=_beat)

    from callcenter.cli_pbx import add_pbx_commands

    add_pbx_commands(commands)

    from callcenter.imports.cli import add_import_command

    add_import_command(commands)
    return parser


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from callcenter.migrate import upgrade

    asyncio.run(upgrade(settings.database_url))
    print(f"database is at the latest schema: {_safe_url(settings.database_url)}")
    return 0


def _safe_url(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    return f"{head.split('://')[0]}://***@{tail}" if sep else url


def _user_add(args: argparse.Namespace, settings: Settings) -> int:
    from callcenter.auth import service
    from callcenter.auth.models import Role
    from callcenter.context import build_context

    password = os.environ.get(args.password_env, "") if args.password_env else ""
    if not password:
        password = getpass.getpass("password: ")

    async def run() -> None:
        ctx = build_context(settings)
        try:
            async with ctx.sessionmaker() as session:
                await service.create_user(
                    session,
                    login=args.login,
                    name=args.name,
                    password=password,
                    role=Role(args.role),
                    extensions=args.extension,
                    queues=args.queue,
                    locale=args.locale,
                )
                await session.commit()
        finally:
            await ctx.close()

    try:
        asyncio.run(run())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"user {args.login} added")
    return 0


def _needs_redis(settings: Settings, what: str) -> bool:
    if settings.redis_url:
        return False
    print(
        f"error: {what} needs CALLCENTER_REDIS_URL (the Celery broker); without it the jobs"
        " run inside `callcenter serve`",
        file=sys.stderr,
    )
    return True


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if _needs_redis(settings, "a worker"):
        return 1
    if settings.worker_metrics_port and args.pool == "prefork":
        _count_in_every_pool_process()
    from workers.celery_app import DEFAULT_QUEUE, LONG_QUEUE, create_celery

    argv = [
        "worker",
        f"--loglevel={args.loglevel}",
        f"--pool={args.pool}",
        f"--queues={args.queues or ','.join((DEFAULT_QUEUE, LONG_QUEUE))}",
    ]
    if args.concurrency:
        argv.append(f"--concurrency={args.concurrency}")
    create_celery(settings).worker_main(argv)
    return 0


def _count_in_every_pool_process() -> None:
    """Restart this command with prometheus_client's multiprocess mode chosen: it must be
    set before the first metric is made, and this process has made some already."""
    import tempfile

    from workers.metrics import MULTIPROC_ENV

    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        if os.environ.get(_METRICS_DIR_MADE_ENV) == directory:
            _remove_at_exit(directory)
        return
    directory = tempfile.mkdtemp(prefix="callcenter-worker-metrics-")
    os.execve(  # noqa: S606 (the same command again, with two more variables)
        sys.executable,
        [sys.executable, "-m", "callcenter.cli", *sys.argv[1:]],
        {**os.environ, MULTIPROC_ENV: directory, _METRICS_DIR_MADE_ENV: directory},
    )


_METRICS_DIR_MADE_ENV = "CALLCENTER_WORKER_METRICS_DIR_MADE"
"""Set (to the directory) when `callcenter worker` made the metrics directory itself: it
removes it again when the worker exits. A directory the deployment chose is left alone."""


def _remove_at_exit(directory: str) -> None:
    import atexit
    import shutil

    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # not in a pool process that inherited the hook
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)


def _beat(args: argparse.Namespace, settings: Settings) -> int:
    if _needs_redis(settings, "beat"):
        return 1
    from workers.celery_app import create_celery

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    create_celery(settings).start(["beat", f"--loglevel={args.loglevel}"])
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from callcenter.main import create_app

    background = []
    if args.with_pbx:
        from callcenter.cli_pbx import embedded_pbx
        from callcenter.demo import DEMO_CALLER_NUMBERS

        background.append(
            embedded_pbx(settings, simulate_rate=args.simulate_rate, callers=DEMO_CALLER_NUMBERS)
        )
    if not settings.redis_url:
        # The embedded default has no Celery beat: this process sends the periodic jobs.
        from callcenter.jobs.runner import in_process_beat
        from workers.tasks import periodic_jobs

        background.append(in_process_beat(periodic_jobs))
    from callcenter.runtime import tune_gc

    app = create_app(settings, background=background)
    tune_gc()
    # No permessage-deflate: it would compress every event once per socket (small JSON on a
    # LAN gains little, and the fan-out to every supervisor's socket pays it N times).
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        ws_ping_interval=None,
        ws_per_message_deflate=False,
    )
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from callcenter.demo import read_logins, save_logins, seed_demo

    _migrate(args, settings)
    logins_file = Path("var/demo-logins.txt")
    logins = asyncio.run(seed_demo(settings))
    if logins is None:
        logins = read_logins(logins_file)
    else:
        save_logins(logins_file, logins)
    url = f"http://{settings.host}:{settings.port}/"
    print("\n" + "=" * 64)
    print(f"callcenter demo: open {url}")
    for login, password, role, extension in logins:
        print(f"  {role:<10} login {login:<12} password {password:<20} phone {extension}")
    print("calls from the built-in AMI simulator ring the demo operators' phones")
    print("=" * 64 + "\n", flush=True)
    args.with_pbx = True
    return _serve(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
