"""A Celery worker's `/metrics`: task runs by outcome, durations and dead letters."""

from __future__ import annotations

import socket
import urllib.request
from dataclasses import dataclass

from celery import Celery, signals
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from callcenter.config import Settings
from workers.celery_app import create_celery
from workers.metrics import WorkerMetrics, connect
from workers.tasks import TASKS


@dataclass(eq=False)
class _Worker:
    """What Celery sends `worker_init` with: the WorkController, which knows its app."""

    app: Celery


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(task: object, task_id: str, state: str) -> None:
    signals.task_prerun.send(sender=task, task_id=task_id, task=task, args=(), kwargs={})
    signals.task_postrun.send(
        sender=task, task_id=task_id, task=task, args=(), kwargs={}, retval=None, state=state
    )


def test_given_a_worker_with_a_metrics_port_when_tasks_run_then_its_endpoint_counts_them() -> None:
    port = _free_port()
    settings = Settings(
        redis_url="redis://127.0.0.1:6379/14",
        worker_metrics_port=port,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_celery(settings)
    name = next(iter(TASKS))
    task = app.tasks[name]
    signals.worker_init.send(sender=_Worker(app))
    _run(task, "t-1", "SUCCESS")
    _run(task, "t-2", "RETRY")
    _run(task, "t-3", "SUCCESS")

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("callcenter_worker_tasks_total", (("outcome", "success"), ("task", name)))] == 2
    assert samples[("callcenter_worker_tasks_total", (("outcome", "retry"), ("task", name)))] == 1
    assert samples[("callcenter_worker_task_seconds_count", (("task", name),))] == 3
    assert {f.name for f in text_string_to_metric_families(text)} >= {
        "callcenter_worker_dead_letters"
    }


def test_given_another_apps_task_when_it_runs_then_this_worker_does_not_count_it() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:6379/14", _env_file=None)  # type: ignore[call-arg]
    ours, theirs = create_celery(settings), create_celery(settings)
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    connect(ours, metrics)
    name = next(iter(TASKS))
    _run(theirs.tasks[name], "t-1", "SUCCESS")
    _run(ours.tasks[name], "t-2", "FAILURE")
    metrics.dead_letter(name)
    count = registry.get_sample_value
    assert count("callcenter_worker_tasks_total", {"task": name, "outcome": "success"}) is None
    assert count("callcenter_worker_tasks_total", {"task": name, "outcome": "failure"}) == 1
    assert count("callcenter_worker_dead_letters_total", {"task": name}) == 1
