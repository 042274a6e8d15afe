"""API shape of a call's recording analysis, as the call card shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from callcenter.calls.models import Call
from callcenter.recordings.analysis import Side
from callcenter.recordings.models import AnalysisStatus, RecordingAnalysisRecord

ViewStatus = Literal["no_recording", "pending", "done", "failed"]
"""`pending`: the call has a recording that has not been analysed (yet)."""


class SideOut(BaseModel):
    side: Side
    speech_s: float | None
    talk_ratio: float | None
    first_speech_delay_s: float | None
    interruptions: int | None
    segments: list[tuple[float, float]]


class AnalysisOut(BaseModel):
    call_id: int
    status: ViewStatus
    file: str | None = None
    analysed_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    duration_s: float | None = None
    channels: int | None = None
    sample_rate: int | None = None
    sides: list[SideOut] = []
    """[overall] for mono; [caller, agent] for stereo; [] unless done."""
    speech_s_total: float | None = None
    talk_ratio_total: float | None = None
    total_silence_s: float | None = None
    longest_silence_s: float | None = None
    overlap_s: float | None = None
    """Stereo only: both sides speaking at once."""
    interruptions: int | None = None
    first_speech_delay_s: float | None = None
    clipping_ratio: float | None = None
    clipped: bool | None = None
    transcript: str | None = None

    @classmethod
    def of(cls, call: Call, record: RecordingAnalysisRecord | None) -> AnalysisOut:
        if record is None:
            return cls(call_id=call.id, status="pending" if call.recording else "no_recording")
        common = {
            "call_id": call.id,
            "file": record.file,
            "analysed_at": record.analysed_at,
        }
        if record.status is AnalysisStatus.FAILED:
            return cls(
                **common,
                status="failed",
                error_code=record.error_code,
                error_message=record.error_message,
            )
        return cls(
            **common,
            status="done",
            duration_s=record.duration_s,
            channels=record.channels,
            sample_rate=record.sample_rate,
            sides=_sides(record),
            speech_s_total=record.speech_s_total,
            talk_ratio_total=record.talk_ratio_total,
            total_silence_s=record.total_silence_s,
            longest_silence_s=record.longest_silence_s,
            overlap_s=record.overlap_s,
            interruptions=record.interruptions,
            first_speech_delay_s=record.first_speech_delay_s,
            clipping_ratio=record.clipping_ratio,
            clipped=record.clipped,
            transcript=record.transcript,
        )


def _sides(record: RecordingAnalysisRecord) -> list[SideOut]:
    def segments(side: Side) -> list[tuple[float, float]]:
        return [(start, end) for start, end in record.segments.get(side.value, [])]

    if record.channels != 2:
        return [
            SideOut(
                side=Side.OVERALL,
                speech_s=record.speech_s_total,
                talk_ratio=record.talk_ratio_total,
                first_speech_delay_s=record.first_speech_delay_s,
                interruptions=None,
                segments=segments(Side.OVERALL),
            )
        ]
    return [
        SideOut(
            side=Side.CALLER,
            speech_s=record.speech_s_caller,
            talk_ratio=record.talk_ratio_caller,
            first_speech_delay_s=record.first_speech_delay_caller_s,
            interruptions=record.interruptions_caller,
            segments=segments(Side.CALLER),
        ),
        SideOut(
            side=Side.AGENT,
            speech_s=record.speech_s_agent,
            talk_ratio=record.talk_ratio_agent,
            first_speech_delay_s=record.first_speech_delay_agent_s,
            interruptions=record.interruptions_agent,
            segments=segments(Side.AGENT),
        ),
    ]
