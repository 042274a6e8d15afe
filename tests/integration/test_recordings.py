"""A call's recording analysed and stored once, shown to who may see the call, and every
listen written to the audit log."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select

from callcenter.auth.models import AuditEntry, Role
from callcenter.calls.models import Call
from callcenter.calls.state import CallStatus
from callcenter.config import Settings
from callcenter.context import AppContext
from callcenter.events import Direction, EndReason
from callcenter.recordings.analysis import ErrorCode, Side
from callcenter.recordings.models import AnalysisStatus, RecordingAnalysisRecord
from callcenter.recordings.service import (
    OutcomeStatus,
    analyse_call_recording,
    caller_speech_seconds,
    stored_analysis,
)
from callcenter.recordings.transcription import load_transcriber
from tests.factories import login_as, make_user

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
STEREO = "1795906382.19.wav"
MONO = "1795906366.1.wav"
EMPTY = "1795906388.30.wav"
BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name in (STEREO, MONO, EMPTY):
        shutil.copy(FIXTURES / name, folder / name)
    return settings.model_copy(update={"recordings_dir": folder})


async def _call(ctx: AppContext, recording: str | None, agent_user_id: int | None = None) -> int:
    started = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    async with ctx.sessionmaker() as session:
        row = Call(
            pbx="default",
            call_key=f"k-{recording}-{agent_user_id}-{datetime.now(UTC).timestamp()}",
            direction=Direction.INBOUND,
            status=CallStatus.ENDED,
            started_at=started,
            answered_at=started + timedelta(seconds=4),
            ended_at=started + timedelta(seconds=20),
            end_reason=EndReason.COMPLETED,
            agent_user_id=agent_user_id,
            recording=recording,
        )
        session.add(row)
        await session.commit()
        return row.id


async def _analyse(ctx: AppContext, call_id: int) -> OutcomeStatus:
    async with ctx.sessionmaker() as session:
        outcome = await analyse_call_recording(session, ctx.settings, call_id)
        await session.commit()
        return outcome.status


async def _rows(ctx: AppContext, call_id: int) -> list[RecordingAnalysisRecord]:
    async with ctx.sessionmaker() as session:
        query = select(RecordingAnalysisRecord).where(RecordingAnalysisRecord.call_id == call_id)
        return list((await session.scalars(query)).all())


def _measurements(row: RecordingAnalysisRecord) -> dict[str, object]:
    return {
        column: getattr(row, column)
        for column in RecordingAnalysisRecord.__table__.columns.keys()  # noqa: SIM118
        if column not in {"id", "analysed_at"}
    }


@BOTH
async def test_given_a_stereo_recording_when_analysed_twice_then_one_row_with_the_same_values(
    ctx: AppContext,
) -> None:
    call_id = await _call(ctx, STEREO)

    assert await _analyse(ctx, call_id) is OutcomeStatus.DONE
    first = await _rows(ctx, call_id)
    assert await _analyse(ctx, call_id) is OutcomeStatus.DONE
    second = await _rows(ctx, call_id)

    assert len(first) == len(second) == 1
    assert _measurements(first[0]) == _measurements(second[0])
    row = second[0]
    assert row.status is AnalysisStatus.DONE
    assert row.duration_s == pytest.approx(10.28, abs=0.05)
    assert row.channels == 2
    assert row.speech_s_caller is not None
    assert row.speech_s_caller > 0
    assert row.speech_s_agent is not None
    assert row.speech_s_agent > 0
    assert row.overlap_s is not None
    assert set(row.segments) == {"caller", "agent"}
    assert row.error_code is None


@BOTH
async def test_given_bad_recordings_when_analysed_then_failed_rows_with_their_codes_no_exception(
    ctx: AppContext,
) -> None:
    folder = ctx.settings.recordings_dir
    (folder / "cut.wav").write_bytes((FIXTURES / MONO).read_bytes()[:3000])
    (folder / "text.wav").write_text("this is a voicemail transcript, not audio")
    cases = {
        "cut.wav": ErrorCode.TRUNCATED,
        "text.wav": ErrorCode.NOT_WAV,
        EMPTY: ErrorCode.EMPTY,
        "gone.wav": ErrorCode.MISSING,
        "../../etc/passwd": ErrorCode.BAD_NAME,
    }
    calls = {name: await _call(ctx, name) for name in cases}

    for call_id in calls.values():
        assert await _analyse(ctx, call_id) is OutcomeStatus.FAILED

    for name, code in cases.items():
        [row] = await _rows(ctx, calls[name])
        assert row.status is AnalysisStatus.FAILED
        assert row.error_code == code.value
        assert row.error_message
        assert row.duration_s is None
        assert row.segments == {}


async def test_given_a_failed_analysis_when_the_file_is_fixed_and_analysed_again_then_done(
    ctx: AppContext,
) -> None:
    call_id = await _call(ctx, "late.wav")
    assert await _analyse(ctx, call_id) is OutcomeStatus.FAILED

    shutil.copy(FIXTURES / MONO, ctx.settings.recordings_dir / "late.wav")
    assert await _analyse(ctx, call_id) is OutcomeStatus.DONE

    [row] = await _rows(ctx, call_id)
    assert row.status is AnalysisStatus.DONE
    assert row.error_code is None
    assert row.error_message is None
    assert row.segments.keys() == {"overall"}


async def test_given_no_recording_or_no_call_then_nothing_is_stored(ctx: AppContext) -> None:
    call_id = await _call(ctx, None)

    assert await _analyse(ctx, call_id) is OutcomeStatus.NO_RECORDING
    assert await _analyse(ctx, call_id + 1000) is OutcomeStatus.NO_CALL
    assert await _rows(ctx, call_id) == []


async def test_given_analyses_then_caller_speech_is_the_caller_side_or_everyone_on_mono(
    ctx: AppContext,
) -> None:
    stereo, mono, empty = [await _call(ctx, name) for name in (STEREO, MONO, EMPTY)]
    async with ctx.sessionmaker() as session:
        stereo_outcome = await analyse_call_recording(session, ctx.settings, stereo)
        mono_outcome = await analyse_call_recording(session, ctx.settings, mono)
        empty_outcome = await analyse_call_recording(session, ctx.settings, empty)
        await session.commit()
        stored = {i: await stored_analysis(session, i) for i in (stereo, mono, empty)}

    assert stereo_outcome.analysis is not None
    assert mono_outcome.analysis is not None
    assert empty_outcome.analysis is None
    caller = stereo_outcome.analysis.side(Side.CALLER)
    assert caller is not None
    assert caller_speech_seconds(stereo_outcome.analysis) == caller.speech_s
    assert caller_speech_seconds(mono_outcome.analysis) == mono_outcome.analysis.speech_s_total
    stored_stereo, stored_mono, stored_empty = stored[stereo], stored[mono], stored[empty]
    assert stored_stereo is not None
    assert stored_mono is not None
    assert stored_empty is not None
    assert caller_speech_seconds(stored_stereo) == caller.speech_s
    assert caller_speech_seconds(stored_mono) == mono_outcome.analysis.speech_s_total
    assert caller_speech_seconds(stored_empty) is None


async def test_given_a_local_transcriber_plugin_then_the_transcript_is_stored(
    ctx: AppContext,
) -> None:
    load_transcriber.cache_clear()
    ctx.settings.transcriber = "tests.fake_transcriber:make"
    call_id = await _call(ctx, STEREO)

    await _analyse(ctx, call_id)

    [row] = await _rows(ctx, call_id)
    assert row.transcript == f"{STEREO}: 10.28 s heard"


async def test_given_a_transcriber_that_cannot_start_then_the_analysis_is_stored_without_text(
    ctx: AppContext,
) -> None:
    load_transcriber.cache_clear()
    ctx.settings.transcriber = "tests.fake_transcriber:fails_to_start"
    call_id = await _call(ctx, MONO)

    assert await _analyse(ctx, call_id) is OutcomeStatus.DONE

    [row] = await _rows(ctx, call_id)
    assert row.status is AnalysisStatus.DONE
    assert row.transcript is None


# --- HTTP ------------------------------------------------------------------------------


async def _users(ctx: AppContext) -> dict[str, int]:
    async with ctx.sessionmaker() as session:
        users = {
            login: (await make_user(session, login=login, role=role)).id
            for login, role in (
                ("anna", Role.OPERATOR),
                ("boris", Role.OPERATOR),
                ("sveta", Role.SUPERVISOR),
            )
        }
        await session.commit()
    return users


async def _listens(ctx: AppContext) -> list[AuditEntry]:
    async with ctx.sessionmaker() as session:
        query = select(AuditEntry).where(AuditEntry.action == "recording.listened")
        return list((await session.scalars(query.order_by(AuditEntry.id))).all())


@BOTH
async def test_given_an_analysed_call_when_its_operator_asks_then_the_card_gets_the_analysis(
    ctx: AppContext, client: AsyncClient
) -> None:
    users = await _users(ctx)
    call_id = await _call(ctx, STEREO, agent_user_id=users["anna"])
    await login_as(client, "anna")

    pending = (await client.get(f"/api/calls/{call_id}/analysis")).json()
    await _analyse(ctx, call_id)
    response = await client.get(f"/api/calls/{call_id}/analysis")

    assert pending["status"] == "pending"
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "done"
    assert [side["side"] for side in body["sides"]] == ["caller", "agent"]
    assert body["duration_s"] == pytest.approx(10.28, abs=0.05)
    assert body["sides"][0]["segments"]
    assert body["overlap_s"] is not None


async def test_given_calls_without_recording_or_with_a_bad_one_then_the_card_says_so(
    ctx: AppContext, client: AsyncClient
) -> None:
    users = await _users(ctx)
    unrecorded = await _call(ctx, None, agent_user_id=users["anna"])
    empty = await _call(ctx, EMPTY, agent_user_id=users["anna"])
    await _analyse(ctx, empty)
    await login_as(client, "anna")

    none = (await client.get(f"/api/calls/{unrecorded}/analysis")).json()
    failed = (await client.get(f"/api/calls/{empty}/analysis")).json()

    assert none["status"] == "no_recording"
    assert failed["status"] == "failed"
    assert failed["error_code"] == "empty"
    assert failed["sides"] == []


@BOTH
async def test_given_a_recording_when_streamed_whole_and_by_range_then_each_listen_is_audited(
    ctx: AppContext, client: AsyncClient
) -> None:
    users = await _users(ctx)
    call_id = await _call(ctx, MONO, agent_user_id=users["anna"])
    original = (FIXTURES / MONO).read_bytes()
    await login_as(client, "anna")

    whole = await client.get(f"/api/calls/{call_id}/recording")
    part = await client.get(f"/api/calls/{call_id}/recording", headers={"Range": "bytes=44-143"})

    assert whole.status_code == 200
    assert whole.headers["content-type"] == "audio/wav"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.content == original
    assert part.status_code == 206
    assert part.content == original[44:144]
    assert part.headers["content-range"] == f"bytes 44-143/{len(original)}"
    listens = await _listens(ctx)
    assert [(e.user_id, e.entity, e.entity_id) for e in listens] == [
        (users["anna"], "call", str(call_id))
    ] * 2
    assert [e.details["range"] for e in listens] == [None, "bytes=44-143"]


async def test_given_another_operators_call_then_no_recording_no_analysis_and_no_listen(
    ctx: AppContext, client: AsyncClient
) -> None:
    users = await _users(ctx)
    call_id = await _call(ctx, MONO, agent_user_id=users["anna"])
    await _analyse(ctx, call_id)

    await login_as(client, "boris")
    refused_audio = await client.get(f"/api/calls/{call_id}/recording")
    refused_analysis = await client.get(f"/api/calls/{call_id}/analysis")
    await login_as(client, "sveta")
    supervisor = await client.get(f"/api/calls/{call_id}/recording")

    assert refused_audio.status_code == 403
    assert refused_analysis.status_code == 403
    assert supervisor.status_code == 200
    assert [e.user_id for e in await _listens(ctx)] == [users["sveta"]]


async def test_given_a_recording_missing_on_disk_or_a_hostile_name_then_404_and_no_listen(
    ctx: AppContext, client: AsyncClient
) -> None:
    users = await _users(ctx)
    gone = await _call(ctx, "gone.wav", agent_user_id=users["anna"])
    hostile = await _call(ctx, "../../../etc/passwd", agent_user_id=users["anna"])
    unrecorded = await _call(ctx, None, agent_user_id=users["anna"])
    await login_as(client, "anna")

    for call_id in (gone, hostile, unrecorded):
        assert (await client.get(f"/api/calls/{call_id}/recording")).status_code == 404
    async with ctx.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "recording.listened")
        )
    assert count == 0
