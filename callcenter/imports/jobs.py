"""The background run of an import: a job of the process's job queue (in-process tasks on the
embedded default, a Celery worker when scaled out; the worker needs the same data dir)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from callcenter.db import utcnow
from callcenter.imports import service
from callcenter.imports.models import ImportBatch
from callcenter.jobs import Job
from callcenter.realtime.streams import user_topic

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from callcenter.context import AppContext

IMPORT_JOB: Final = "imports.run_batch"
SWEEP_JOB: Final = "imports.sweep"
PROGRESS_EVENT: Final = "import.progress"
RUN_GRACE: Final = timedelta(minutes=2)
"""Beyond the job's time limit, before a run still marked running counts as lost."""


def job_key(batch_id: int) -> str:
    return f"import:{batch_id}"


def progress_payload(batch: ImportBatch) -> dict[str, object]:
    return {
        "batch_id": batch.id,
        "status": batch.status.value,
        "done": batch.progress_done,
        "total": batch.progress_total,
        "counts": batch.counts,
    }


async def run_import_job(ctx: AppContext, job: Job) -> None:
    """Run one queued batch, publishing its progress to the uploader after each commit."""
    batch_id = job.int_arg("batch_id")
    user_id = job.args.get("user_id")
    uploader = user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None

    async def publish(done: int, total: int) -> None:
        if uploader is not None:
            await ctx.streams.publish(
                user_topic(uploader),
                PROGRESS_EVENT,
                {"batch_id": batch_id, "status": "running", "done": done, "total": total},
            )

    batch = await service.run_batch(
        ctx.sessionmaker,
        batch_id,
        ctx.settings.data_dir,
        service.limits_from(ctx.settings),
        user_id=uploader,
        on_progress=publish,
    )
    if batch is not None and uploader is not None:
        await ctx.streams.publish(user_topic(uploader), PROGRESS_EVENT, progress_payload(batch))


def sweep_job() -> Job:
    return Job(SWEEP_JOB, "imports:sweep")


async def sweep_imports(ctx: AppContext, job: Job) -> None:
    """`imports.sweep` (periodic): runs whose process died are undone and marked failed (a run
    lasts at most the long-job time limit); old files of imports are deleted."""
    settings = ctx.settings
    result = await service.sweep(
        ctx.sessionmaker,
        settings.data_dir,
        now=utcnow(),
        run_limit=timedelta(seconds=settings.jobs_long_time_limit_s) + RUN_GRACE,
        keep_files=timedelta(days=settings.import_keep_files_days),
    )
    if result.lost_runs:
        log.warning("imports given up (their run died) and undone: %s", result.lost_runs)
