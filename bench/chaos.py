"""The fault tests of `tests/faults/` at full size, with their figures.

Runs, on a fresh SQLite database each: 300 simulated calls while the AMI link is cut 50 times
(half resets, half silent stalls), a run with PBX restarts, and 1,000 websocket drops;
prints and writes `bench/results/chaos_<scale>.json`: lost and duplicate records, stall
detection times, resync times.
Run: `python bench/chaos.py [--scale full|ci] [--seed N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from _common import ROOT, write_result

from callcenter.config import Settings
from callcenter.context import build_context
from callcenter.migrate import upgrade
from tests.faults.harness import SCALES, fault_plan, run_with_faults


async def one_run(name: str, scale_name: str, seed: int) -> dict[str, Any]:
    scale = SCALES[scale_name]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/chaos.db"
        await upgrade(url)
        ctx = build_context(Settings(database_url=url, redis_url="", _env_file=None))
        try:
            began = time.perf_counter()
            if name == "ami_link":
                half = scale.link_faults // 2
                plan = fault_plan({"reset": scale.link_faults - half, "stall": half}, seed)
                result = await run_with_faults(ctx, calls=scale.calls, faults=plan, seed=seed)
            else:
                restarts = max(1, scale.link_faults // 10)
                result = await run_with_faults(
                    ctx,
                    calls=scale.calls,
                    faults=["restart"] * restarts,
                    seed=seed,
                    fault_gap_s=(2.5, 3.5),
                )
            figures = result.figures()
            figures["dropped_by_restart"] = len(result.alive_at_restart)
            figures["wall_s"] = round(time.perf_counter() - began, 1)
            return figures
        finally:
            await ctx.close()


def websocket_drops(scale_name: str) -> dict[str, Any]:
    """The websocket drop test at this size (it needs the browser tests' live server, so it
    runs under pytest); its summary line."""
    began = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "tests/faults/test_websocket_drops.py",
        ],
        cwd=ROOT,
        env={**os.environ, "CALLCENTER_CHAOS_SCALE": scale_name},
        capture_output=True,
        text=True,
        check=False,
    )
    summary = [line for line in done.stdout.splitlines() if " drops, " in line]
    return {
        "passed": done.returncode == 0,
        "summary": summary[0] if summary else done.stdout[-2000:],
        "wall_s": round(time.perf_counter() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ["CALLCENTER_CHAOS_SCALE"] = args.scale
    figures: dict[str, Any] = {"scale": args.scale, "seed": args.seed}
    for name in ("ami_link", "pbx_restart"):
        figures[name] = asyncio.run(one_run(name, args.scale, args.seed))
        print(name, json.dumps(figures[name], ensure_ascii=False))
    figures["websocket_drops"] = websocket_drops(args.scale)
    print("websocket_drops", json.dumps(figures["websocket_drops"], ensure_ascii=False))
    path = write_result(f"chaos_{args.scale}", figures)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
