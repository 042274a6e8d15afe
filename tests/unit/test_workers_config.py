"""The Celery app's reliability settings, and the worker commands of the command line."""

from __future__ import annotations

import pytest

from callcenter.calls.followups import ANALYSIS_JOB, SWEEP_JOB, WRONG_NUMBER_JOB
from callcenter.cli import main
from callcenter.config import Settings
from callcenter.imports.jobs import SWEEP_JOB as IMPORT_SWEEP_JOB
from workers.celery_app import DEFAULT_QUEUE, LONG_QUEUE, create_celery
from workers.reminders import REMINDERS_JOB
from workers.tasks import TASKS, build_job_queue


def _settings(**changes: object) -> Settings:
    values: dict[str, object] = {"redis_url": "redis://127.0.0.1:6379/14", **changes}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg,arg-type]


def test_given_settings_then_celery_acks_late_prefetches_one_and_outwaits_every_task() -> None:
    app = create_celery(
        _settings(
            jobs_visibility_timeout_s=4000, jobs_long_time_limit_s=900, jobs_key_prefix="cc1:"
        )
    )
    conf = app.conf
    assert conf.broker_transport_options["global_keyprefix"] == "cc1:"
    assert conf.broker_url == "redis://127.0.0.1:6379/14"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 4000
    assert conf.task_default_queue == DEFAULT_QUEUE
    assert conf.task_routes == {n: {"queue": LONG_QUEUE} for n, spec in TASKS.items() if spec.long}
    assert ANALYSIS_JOB in conf.task_routes
    assert {entry["task"] for entry in conf.beat_schedule.values()} == {SWEEP_JOB, IMPORT_SWEEP_JOB}
    assert set(TASKS) <= set(app.tasks)
    for name in TASKS:
        task = app.tasks[name]
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True
        assert task.soft_time_limit < task.time_limit < 4000
    assert app.tasks[ANALYSIS_JOB].time_limit > app.tasks[WRONG_NUMBER_JOB].time_limit


@pytest.mark.parametrize(
    "changes",
    [
        {"jobs_visibility_timeout_s": 60, "jobs_time_limit_s": 60.0},
        {"jobs_visibility_timeout_s": 3600, "jobs_long_time_limit_s": 3600.0},
        {"jobs_visibility_timeout_s": 600, "jobs_retry_backoff_max_s": 900.0},
    ],
)
def test_given_visibility_timeout_below_a_task_or_retry_then_the_app_refuses_to_start(
    changes: dict[str, object],
) -> None:
    with pytest.raises(ValueError, match="jobs_visibility_timeout_s"):
        create_celery(_settings(**changes))


@pytest.mark.parametrize("command", [["worker", "--help"], ["beat", "--help"]])
def test_given_worker_commands_when_asked_for_help_then_they_answer(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(command)
    assert done.value.code == 0
    assert "usage" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_given_no_redis_url_when_starting_a_worker_then_it_refuses_and_says_why(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from callcenter.config import get_settings

    monkeypatch.delenv("CALLCENTER_REDIS_URL", raising=False)
    get_settings.cache_clear()
    assert main([command]) == 1
    error = capsys.readouterr().err
    assert "CALLCENTER_REDIS_URL" in error
    assert "callcenter serve" in error


def test_given_api_process_leaves_reminders_to_workers_then_beat_sends_them() -> None:
    app = create_celery(_settings(reminders_interval_s=0))
    assert {entry["task"] for entry in app.conf.beat_schedule.values()} == {
        SWEEP_JOB,
        IMPORT_SWEEP_JOB,
        REMINDERS_JOB,
    }


@pytest.mark.parametrize("entry", ["re:[", "not a number"])
def test_given_a_bad_wrong_number_list_then_neither_queue_starts(entry: str) -> None:
    with pytest.raises(ValueError, match="wrong-number"):
        create_celery(_settings(wrong_number_patterns=[entry]))
    with pytest.raises(ValueError, match="wrong-number"):
        build_job_queue(_settings(redis_url="", wrong_number_patterns=[entry]))
