"""Composition root for PBX processes: the adapter, the simulator, replay, and the embedded mode.

This is the one place (with `cli.py`) that knows both `callcenter` and `pbx_adapter`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from callcenter.config import Settings


def add_pbx_commands(commands: Any) -> None:
    replay = commands.add_parser("replay", help="feed a recorded AMI stream into the database")
    replay.add_argument("file", type=Path)
    replay.add_argument("--pbx", default=None, help="PBX name the calls are keyed under")
    replay.set_defaults(handler=_replay)


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
        finally:
            await ctx.close()
        print(
            f"replayed {stats.frames} AMI frames → {stats.events} call events"
            f" ({stats.rejected} malformed frames set aside)"
        )

    asyncio.run(run())
    return 0
