"""Benchmark: CPU per job of sending Celery jobs, `app.send_task` against CeleryJobs' path
(`TaskMessages.build` + one pipelined LPUSH round trip per wake-up of its sender task).

Run from the repository root, with Redis on 127.0.0.1:6379:

    .venv/bin/python bench/celery_send.py [--jobs 2000] [--redis redis://127.0.0.1:6379/14]

Rows (CPU of this process, `time.process_time`, per job; best of 3 rounds):
- ``send_task``: `app.send_task` per job, as the old thread did;
- ``build``: building the message only;
- ``pipeline_1``: CeleryJobs, one job per send and a drain after each (one round trip per
  job: the quietest adapter);
- ``pipeline_10``: the same with 10 jobs per send (a commit that ended 10 calls);
- ``pipeline_batched``: CeleryJobs, one job per send, drained at the end (a burst: the sender
  pushes up to 100 per round trip).
Everything goes to a throwaway key prefix, deleted afterwards. Figures are printed and written
to ``bench/results/celery_send.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections.abc import Callable

import redis
from _common import write_result

from callcenter.config import Settings
from callcenter.jobs import Job
from workers.celery_app import CeleryJobs, create_celery
from workers.task_messages import TaskMessages

ROUNDS = 3


def _jobs(count: int) -> list[Job]:
    return [
        Job("calls.apply_wrong_number_rules", f"wrong_number:{i}", {"call_id": i})
        for i in range(count)
    ]


def _cpu_per_job_us(run: Callable[[], None], count: int) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    options = parser.parse_args()
    prefix = f"bench-{secrets.token_hex(4)}:"
    settings = Settings(redis_url=options.redis, jobs_key_prefix=prefix, _env_file=None)  # type: ignore[call-arg]
    app = create_celery(settings)
    jobs = _jobs(options.jobs)
    messages = TaskMessages(app)
    app.send_task(jobs[0].name, kwargs=jobs[0].wire())  # connect and declare outside the timing

    def send_task() -> None:
        for job in jobs:
            app.send_task(job.name, kwargs=job.wire())

    def build() -> None:
        for job in jobs:
            messages.build(job.name, job.wire())

    def pipelined(per_round_trip: int | None) -> Callable[[], None]:
        async def run() -> None:
            queue = CeleryJobs(app)
            step = per_round_trip or 1
            for start in range(0, len(jobs), step):
                queue.send(jobs[start : start + step])
                if per_round_trip:
                    await queue.drain()
            await queue.close()

        return lambda: asyncio.run(run())

    figures = {
        "jobs": options.jobs,
        "cpu_us_per_job": {
            "send_task": _cpu_per_job_us(send_task, len(jobs)),
            "build": _cpu_per_job_us(build, len(jobs)),
            "pipeline_1": _cpu_per_job_us(pipelined(1), len(jobs)),
            "pipeline_10": _cpu_per_job_us(pipelined(10), len(jobs)),
            "pipeline_batched": _cpu_per_job_us(pipelined(None), len(jobs)),
        },
    }
    client = redis.Redis.from_url(options.redis)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()
    for name, value in figures["cpu_us_per_job"].items():
        print(f"{name:>18}: {value:7.1f} µs CPU per job")
    print(write_result("celery_send", figures))


if __name__ == "__main__":
    main()
