"""The task table, shared by the Celery app and the in-process queue, and the periodic jobs.

No Celery here: the embedded default runs these same coroutines as asyncio tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from callcenter.calls.auto_close import rule_config
from callcenter.calls.followups import ANALYSIS_JOB, SWEEP_JOB, WRONG_NUMBER_JOB, sweep_job
from callcenter.config import Settings
from callcenter.imports.jobs import IMPORT_JOB, run_import_job, sweep_imports
from callcenter.imports.jobs import SWEEP_JOB as IMPORT_SWEEP_JOB
from callcenter.imports.jobs import sweep_job as import_sweep_job
from callcenter.jobs.runner import JobSpec, Periodic
from callcenter.phones import phone_identity
from workers.recordings import analyse_recording
from workers.reminders import REMINDERS_EVERY_S, REMINDERS_JOB, reminders_job, send_reminders
from workers.wrong_numbers import apply_wrong_number_rules, sweep_followups

if TYPE_CHECKING:
    from callcenter.jobs import JobQueue

TASKS: Mapping[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(WRONG_NUMBER_JOB, apply_wrong_number_rules),
        JobSpec(ANALYSIS_JOB, analyse_recording, long=True),
        JobSpec(SWEEP_JOB, sweep_followups),
        JobSpec(REMINDERS_JOB, send_reminders),
        JobSpec(IMPORT_JOB, run_import_job, long=True),
        JobSpec(IMPORT_SWEEP_JOB, sweep_imports),
    )
}


def periodic_jobs(settings: Settings) -> Sequence[Periodic]:
    """What beat sends (Celery beat, or the in-process beat of `callcenter serve`).

    Reminders go with beat when the API process does not send them itself
    (`reminders_interval_s = 0`, the setting for a deployment with workers).
    """
    jobs = [
        Periodic(sweep_job(), settings.jobs_sweep_interval_s),
        Periodic(import_sweep_job(), settings.jobs_sweep_interval_s),
    ]
    if settings.reminders_interval_s <= 0:
        jobs.append(Periodic(reminders_job(), REMINDERS_EVERY_S))
    return jobs


def check_settings(settings: Settings) -> None:
    """Refuse, at start, settings every job would fail on (a typo in the wrong-number list)."""
    rule_config(settings, phone_identity(settings.default_region, settings.default_area_code))


def build_job_queue(settings: Settings) -> JobQueue:
    """Celery on the Redis broker when `redis_url` is set; asyncio tasks in this process if not."""
    check_settings(settings)
    if settings.redis_url:
        from workers.celery_app import CeleryJobs, create_celery

        return CeleryJobs(create_celery(settings))
    from callcenter.jobs.runner import InProcessJobs, retry_policy

    return InProcessJobs(TASKS, retry_policy(settings))
