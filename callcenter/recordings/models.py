"""The stored analysis of a call's recording: one row per call, replaced when re-analysed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import Base, str_enum


class AnalysisStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"
    """The file cannot be analysed (see `error_code`); final, never retried by itself."""


class RecordingAnalysisRecord(Base):
    """Measurements of `file` (see `callcenter.recordings.analysis` for their meaning).

    Per-side columns are None where the side does not exist: a mono recording has only the
    overall figures. Every measurement is None on a failed row.
    """

    __tablename__ = "recording_analyses"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    file: Mapped[str] = mapped_column(String(255))
    status: Mapped[AnalysisStatus] = mapped_column(
        str_enum(AnalysisStatus, "recording_analysis_status", length=16)
    )
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    error_message: Mapped[str | None] = mapped_column(String(500), default=None)
    analysed_at: Mapped[datetime]

    duration_s: Mapped[float | None] = mapped_column(default=None)
    channels: Mapped[int | None] = mapped_column(default=None)
    sample_rate: Mapped[int | None] = mapped_column(default=None)
    sample_format: Mapped[str | None] = mapped_column(String(16), default=None)
    vad_mode: Mapped[int | None] = mapped_column(default=None)
    speech_s_caller: Mapped[float | None] = mapped_column(default=None)
    speech_s_agent: Mapped[float | None] = mapped_column(default=None)
    speech_s_total: Mapped[float | None] = mapped_column(default=None)
    talk_ratio_caller: Mapped[float | None] = mapped_column(default=None)
    talk_ratio_agent: Mapped[float | None] = mapped_column(default=None)
    talk_ratio_total: Mapped[float | None] = mapped_column(default=None)
    total_silence_s: Mapped[float | None] = mapped_column(default=None)
    longest_silence_s: Mapped[float | None] = mapped_column(default=None)
    overlap_s: Mapped[float | None] = mapped_column(default=None)
    interruptions: Mapped[int | None] = mapped_column(default=None)
    interruptions_caller: Mapped[int | None] = mapped_column(default=None)
    interruptions_agent: Mapped[int | None] = mapped_column(default=None)
    first_speech_delay_s: Mapped[float | None] = mapped_column(default=None)
    first_speech_delay_caller_s: Mapped[float | None] = mapped_column(default=None)
    first_speech_delay_agent_s: Mapped[float | None] = mapped_column(default=None)
    clipping_ratio: Mapped[float | None] = mapped_column(default=None)
    clipped: Mapped[bool | None] = mapped_column(default=None)
    segments: Mapped[dict[str, list[list[float]]]] = mapped_column(JSON, default=dict)
    """Speech segments per side ("overall" for mono; "caller" and "agent" for stereo):
    {"caller": [[start, end], ...], ...} in seconds."""
    transcript: Mapped[str | None] = mapped_column(Text, default=None)
    """Text from the optional speech-to-text plugin, when one is configured."""
