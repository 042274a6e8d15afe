"""Shared bits of the benchmarks: result files, percentiles, and running the app's server
against a freshly migrated database."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def write_result(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        **figures,
    }
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    return path


def callcenter_command() -> list[str]:
    """The app's CLI in this environment (the installed script, else `python -m`)."""
    script = Path(sys.executable).with_name("callcenter")
    return [str(script)] if script.exists() else [sys.executable, "-m", "callcenter.cli"]


Figures = dict[str, Any]


def run_on_migrated_database(
    workdir: Path,
    database_url: str,
    run: Callable[[IO[bytes]], Coroutine[Any, Any, Figures]],
) -> Figures | int:
    """Migrate `database_url` with the app's own CLI, then `run(log)` with the server's output
    going to `workdir/server.log`. The run's figures, or an exit status: 1 when the migration
    failed, 130 when interrupted. A failed run prints the log's tail and raises again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    migrated = subprocess.run(
        [*callcenter_command(), "migrate"],
        env={**env, "CALLCENTER_DATABASE_URL": database_url},
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if migrated.returncode:
        print(f"migrate failed:\n{migrated.stdout}{migrated.stderr}", file=sys.stderr)
        return 1
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        try:
            return asyncio.run(run(log))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted: the server and the simulator were stopped", file=sys.stderr)
            return 130
        except BaseException as exc:
            log.flush()
            tail = log_path.read_text(errors="replace")[-3000:]
            print(f"run failed: {exc!r}\n--- server log (tail) ---\n{tail}", file=sys.stderr)
            raise


def server_log_problems(workdir: Path) -> int:
    """The lines of `workdir/server.log` that are errors, warnings or tracebacks."""
    return sum(
        1
        for line in (workdir / "server.log").read_text(errors="replace").splitlines()
        if "ERROR" in line or "WARNING" in line or "Traceback" in line
    )
