"""`callcenter worker` removes the metrics directory it made for its pool when it exits, and
leaves one the deployment chose alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.metrics import MULTIPROC_ENV

RUN = "from callcenter.cli import _count_in_every_pool_process as c; c()"


@pytest.mark.parametrize("made_by_worker", [True, False])
def test_given_a_worker_exits_then_only_a_directory_it_made_is_removed(
    tmp_path: Path, made_by_worker: bool
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"\0" * 16)
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    if made_by_worker:
        env["CALLCENTER_WORKER_METRICS_DIR_MADE"] = str(directory)
    subprocess.run([sys.executable, "-c", RUN], env=env, check=True, timeout=60)

    assert directory.exists() is not made_by_worker
