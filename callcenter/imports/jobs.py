"""The background run of an import: a job of the process's job queue (in-process tasks on the
embedded default, a Celery worker when scaled out; the worker needs the same data dir)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from callcenter.imports import service
from callcenter.imports.models import ImportBatch
from callcenter.jobs import Job
from callcenter.realtime.streams import user_topic

if TYPE_CHECKING:
    from callcenter.context import AppContext

IMPORT_JOB: Final = "imports.run_batch"
PROGRESS_EVENT: Final = "import.progress"


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
