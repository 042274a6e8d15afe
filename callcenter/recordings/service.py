"""A call's recording analysed and stored: the one entry point for the worker. Never commits.

A file that cannot be analysed (missing, empty, truncated, not a WAV, too large...) is a
final outcome: it is stored as a `failed` row with its code and returned, never raised, so a
job queue does not retry it. Only transient trouble (the database, an I/O error other than
"not there" or "not allowed") raises.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import Call
from callcenter.config import Settings
from callcenter.db import utcnow
from callcenter.recordings import repository
from callcenter.recordings.analysis import (
    ErrorCode,
    RecordingAnalysis,
    RecordingError,
    Side,
    analyse_wav,
)
from callcenter.recordings.models import AnalysisStatus, RecordingAnalysisRecord
from callcenter.recordings.transcription import TranscriberUnavailable, load_transcriber

log = logging.getLogger(__name__)


class OutcomeStatus(StrEnum):
    DONE = "done"
    """Analysed and stored."""
    FAILED = "failed"
    """The file cannot be analysed; stored as such (`error_code`)."""
    NO_CALL = "no_call"
    """No such call (deleted since the job was sent); nothing stored."""
    NO_RECORDING = "no_recording"
    """The call was not recorded; nothing stored."""


@dataclass(frozen=True)
class RecordingOutcome:
    call_id: int
    status: OutcomeStatus
    analysis: RecordingAnalysis | None = None
    error_code: ErrorCode | None = None
    error_message: str | None = None
    transcript: str | None = None


def recording_path(root: Path, name: str) -> Path:
    """The file `name` (as the call stores it) under `root`; a name that would lead out of
    `root` (absolute, "..", a symlink pointing elsewhere) is `bad_name`."""
    relative = PurePosixPath(name)
    if (
        not name.strip()
        or "\\" in name
        or "\x00" in name
        or relative.is_absolute()
        or ".." in relative.parts
    ):
        raise RecordingError(ErrorCode.BAD_NAME, f"refused recording name {name[:100]!r}")
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise RecordingError(ErrorCode.BAD_NAME, f"{name[:100]!r} leads outside the folder")
    return path


async def analyse_call_recording(
    session: AsyncSession, settings: Settings, call_id: int
) -> RecordingOutcome:
    """Analyse the call's recording and store the result (one row per call, replaced on a
    re-run). The caller commits."""
    call = await session.get(Call, call_id)
    if call is None:
        return RecordingOutcome(call_id, OutcomeStatus.NO_CALL)
    if not call.recording:
        return RecordingOutcome(call_id, OutcomeStatus.NO_RECORDING)
    try:
        path = recording_path(settings.recordings_dir, call.recording)
        analysis = await asyncio.to_thread(
            analyse_wav,
            path,
            max_bytes=settings.recording_max_bytes,
            max_seconds=settings.recording_max_seconds,
            vad_mode=settings.recording_vad_mode,
            stereo_left=Side(settings.recording_stereo_left),
        )
    except RecordingError as exc:
        log.info("recording of call %s not analysed: %s", call_id, exc)
        await repository.upsert_analysis(session, _failed_values(call, exc))
        return RecordingOutcome(
            call_id, OutcomeStatus.FAILED, error_code=exc.code, error_message=exc.message
        )
    transcript = await _transcript(settings, path, analysis)
    await repository.upsert_analysis(session, _done_values(call, analysis, transcript))
    return RecordingOutcome(call_id, OutcomeStatus.DONE, analysis=analysis, transcript=transcript)


async def stored_analysis(session: AsyncSession, call_id: int) -> RecordingAnalysisRecord | None:
    """The call's stored analysis, if it has been analysed."""
    return await repository.analysis_of_call(session, call_id)


def caller_speech_seconds(analysis: RecordingAnalysis | RecordingAnalysisRecord) -> float | None:
    """Seconds of caller speech, for the rule "the recording has no caller speech".

    Stereo: the caller's channel. Mono: caller and agent are mixed, so this is everyone's
    speech: 0 still means nobody spoke, but any speech may be the agent's alone (the rule
    then does not fire, which is the safe side). None when it is not known (a failed row).
    """
    if isinstance(analysis, RecordingAnalysisRecord):
        if analysis.status is not AnalysisStatus.DONE:
            return None
        if analysis.speech_s_caller is not None:
            return analysis.speech_s_caller
        return analysis.speech_s_total
    side = analysis.side(Side.CALLER) or analysis.side(Side.OVERALL)
    return side.speech_s if side is not None else None


async def _transcript(settings: Settings, path: Path, analysis: RecordingAnalysis) -> str | None:
    """Text from the configured plugin; a plugin that fails leaves the analysis stored
    without text (it is logged, not retried: the plugin is not the analysis)."""
    if not settings.transcriber or analysis.speech_s_total == 0:
        return None
    try:
        transcriber = load_transcriber(settings.transcriber)
        if transcriber is None:
            return None
        result = await asyncio.to_thread(transcriber.transcribe, path)
    except TranscriberUnavailable as exc:
        log.error("no transcript: %s", exc)
        return None
    except Exception:  # a third-party plugin may fail in any way; the analysis stands
        log.exception("transcriber %r failed on %s", settings.transcriber, path.name)
        return None
    return result.text


def _base_values(call: Call, status: AnalysisStatus) -> dict[str, Any]:
    return {
        "call_id": call.id,
        "file": (call.recording or "")[:255],
        "status": status,
        "analysed_at": utcnow(),
    }


def _failed_values(call: Call, error: RecordingError) -> dict[str, Any]:
    measurements = {name: None for name in _MEASUREMENT_COLUMNS}
    return {
        **_base_values(call, AnalysisStatus.FAILED),
        **measurements,
        "error_code": error.code.value,
        "error_message": error.message[:500],
        "segments": {},
        "transcript": None,
    }


def _done_values(call: Call, analysis: RecordingAnalysis, transcript: str | None) -> dict[str, Any]:
    caller, agent = analysis.side(Side.CALLER), analysis.side(Side.AGENT)
    return {
        **_base_values(call, AnalysisStatus.DONE),
        "error_code": None,
        "error_message": None,
        "duration_s": analysis.duration_s,
        "channels": analysis.channels,
        "sample_rate": analysis.sample_rate,
        "sample_format": analysis.sample_format,
        "vad_mode": analysis.vad_mode,
        "speech_s_caller": caller.speech_s if caller else None,
        "speech_s_agent": agent.speech_s if agent else None,
        "speech_s_total": analysis.speech_s_total,
        "talk_ratio_caller": caller.talk_ratio if caller else None,
        "talk_ratio_agent": agent.talk_ratio if agent else None,
        "talk_ratio_total": analysis.talk_ratio_total,
        "total_silence_s": analysis.total_silence_s,
        "longest_silence_s": analysis.longest_silence_s,
        "overlap_s": analysis.overlap_s,
        "interruptions": analysis.interruptions,
        "interruptions_caller": caller.interruptions if caller else None,
        "interruptions_agent": agent.interruptions if agent else None,
        "first_speech_delay_s": analysis.first_speech_delay_s,
        "first_speech_delay_caller_s": caller.first_speech_delay_s if caller else None,
        "first_speech_delay_agent_s": agent.first_speech_delay_s if agent else None,
        "clipping_ratio": analysis.clipping_ratio,
        "clipped": analysis.clipped,
        "segments": {
            side.side.value: [[start, end] for start, end in side.segments]
            for side in analysis.sides
        },
        "transcript": transcript,
    }


_MEASUREMENT_COLUMNS = (
    "duration_s",
    "channels",
    "sample_rate",
    "sample_format",
    "vad_mode",
    "speech_s_caller",
    "speech_s_agent",
    "speech_s_total",
    "talk_ratio_caller",
    "talk_ratio_agent",
    "talk_ratio_total",
    "total_silence_s",
    "longest_silence_s",
    "overlap_s",
    "interruptions",
    "interruptions_caller",
    "interruptions_agent",
    "first_speech_delay_s",
    "first_speech_delay_caller_s",
    "first_speech_delay_agent_s",
    "clipping_ratio",
    "clipped",
)
