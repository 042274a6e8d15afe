"""Prometheus metrics of a Celery worker: tasks by outcome, their durations, dead letters.

Counted through Celery's task signals in the process that runs the task, and served by the
worker's main process on `worker_metrics_port` (`/metrics`, any path answers). A prefork
pool runs tasks in child processes: their counts reach the main process through
prometheus_client's multiprocess mode, which must be chosen before any metric exists, by
`PROMETHEUS_MULTIPROC_DIR` in the environment (`callcenter worker` sets it for itself).
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery, signals
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OUTCOMES = {"SUCCESS": "success", "RETRY": "retry", "FAILURE": "failure"}
"""Celery's end states of one run of a task, as the `outcome` label."""


class WorkerMetrics:
    """The worker's counters; `registry` None registers nowhere (multiprocess mode)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.tasks = Counter(
            "callcenter_worker_tasks",
            "Runs of a task that ended, by task and outcome (success, retry, failure).",
            ["task", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "callcenter_worker_task_seconds",
            "How long one run of a task took.",
            ["task"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
            registry=registry,
        )
        self.dead_letters = Counter(
            "callcenter_worker_dead_letters",
            "Jobs given up on and kept as dead letters, by task.",
            ["task"],
            registry=registry,
        )
        self._started: dict[str, float] = {}

    def started(self, task_id: str) -> None:
        self._started[task_id] = time.perf_counter()

    def finished(self, task_id: str, task: str, state: str | None) -> None:
        began = self._started.pop(task_id, None)
        if began is not None:
            self.duration.labels(task).observe(time.perf_counter() - began)
        self.tasks.labels(task, OUTCOMES.get(state or "", "failure")).inc()

    def dead_letter(self, task: str) -> None:
        self.dead_letters.labels(task).inc()


def connect(app: Celery, metrics: WorkerMetrics) -> None:
    """Count the runs of `app`'s tasks (other apps in the process are left alone)."""

    def on_prerun(task_id: str = "", task: Any = None, **_: Any) -> None:
        if task is not None and task.app is app:
            metrics.started(task_id)

    def on_postrun(task_id: str = "", task: Any = None, state: str | None = None, **_: Any) -> None:
        if task is not None and task.app is app:
            metrics.finished(task_id, str(task.name), state)

    signals.task_prerun.connect(on_prerun, weak=False)
    signals.task_postrun.connect(on_postrun, weak=False)


def serve_on_worker_start(app: Celery, port: int, registry: CollectorRegistry) -> None:
    """Serve `registry` on `port` once this process becomes `app`'s worker (not in senders,
    beat, or tests that only build the app)."""

    def on_worker_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app:
            start_http_server(port, addr="127.0.0.1", registry=registry)

    signals.worker_init.connect(on_worker_init, weak=False)


def install(app: Celery, port: int) -> WorkerMetrics:
    """`app`'s worker metrics, counted from now on and served on `port` once it runs."""
    served = CollectorRegistry()
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        MultiProcessCollector(served, path=directory)  # type: ignore[no-untyped-call]
        metrics = WorkerMetrics(None)
    else:
        metrics = WorkerMetrics(served)
    connect(app, metrics)
    serve_on_worker_start(app, port, served)
    return metrics
