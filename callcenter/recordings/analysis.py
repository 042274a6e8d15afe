"""What happened in a call recording, measured: speech per side, silence, overlaps, clipping.

Pure: a file in, a `RecordingAnalysis` (or a `RecordingError`) out; no database, no settings.

Sides. A stereo MixMonitor file holds the caller on the left and the agent on the right
(`stereo_left` flips that for a dialplan that records the other way round). A mono file has
caller and agent mixed, so it has one side, "overall"; overlaps and interruptions cannot be
told apart there and are None.

Definitions (all in seconds, on the 10 ms frame grid of the detector):
- speech of a side: its smoothed speech segments (see `vad.py`);
- talk ratio of a side: its speech / the recording's duration (0–1; sides may add up to
  more than 1 when they talk over each other);
- speech total: time when at least one side speaks; silence (dead air) is the rest,
  including any silence before the first and after the last speech;
- overlap: time when both sides speak;
- an interruption: a side starts speaking while the other is speaking, and both go on
  together for at least `MIN_INTERRUPTION_OVERLAP_S` (a short "yes" or "mm" over the other
  side is back-channel, not an interruption);
- first speech delay: from the start of the recording to the first speech of a side, and
  to the first speech of anyone (None when there is none);
- clipping: the share of samples at or above `CLIP_LEVEL` of full scale, on every channel;
  the recording counts as clipped from `CLIPPED_RATIO` on.

An empty recording (a header and no audio, as MixMonitor leaves for a caller who hung up
before being bridged) is the `empty` error, not an analysis with zero speech: there was no
conversation to measure, and "no caller speech" must not be read into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from callcenter.recordings.vad import (
    FRAME_S,
    Mask,
    Segment,
    Smoothing,
    runs,
    segments,
    speech_mask,
)
from callcenter.recordings.wav import ErrorCode, PcmAudio, RecordingError, read_wav

__all__ = [
    "CLIPPED_RATIO",
    "CLIP_LEVEL",
    "DEFAULT_VAD_MODE",
    "MIN_INTERRUPTION_OVERLAP_S",
    "ErrorCode",
    "RecordingAnalysis",
    "RecordingError",
    "Side",
    "SideAnalysis",
    "Smoothing",
    "analyse_audio",
    "analyse_wav",
]

DEFAULT_VAD_MODE: Final = 2
"""The WebRTC detector's mode: 0 takes the most for speech, 3 the least. 2 ignores the line
noise of the recordings we have and still catches quiet speech."""
MIN_INTERRUPTION_OVERLAP_S: Final = 0.5
CLIP_LEVEL: Final = 0.99
CLIPPED_RATIO: Final = 0.001


class Side(StrEnum):
    OVERALL = "overall"
    CALLER = "caller"
    AGENT = "agent"


@dataclass(frozen=True)
class SideAnalysis:
    side: Side
    segments: tuple[Segment, ...]
    speech_s: float
    talk_ratio: float
    first_speech_delay_s: float | None
    interruptions: int
    """How often this side started speaking over the other (always 0 for mono)."""


@dataclass(frozen=True)
class RecordingAnalysis:
    duration_s: float
    channels: int
    sample_rate: int
    sample_format: str
    """e.g. "pcm16", "float32"."""
    sides: tuple[SideAnalysis, ...]
    """(overall,) for mono; (caller, agent) for stereo."""
    speech_s_total: float
    talk_ratio_total: float
    total_silence_s: float
    longest_silence_s: float
    overlap_s: float | None
    interruptions: int | None
    first_speech_delay_s: float | None
    clipping_ratio: float
    clipped: bool
    vad_mode: int

    def side(self, side: Side) -> SideAnalysis | None:
        return next((s for s in self.sides if s.side is side), None)


def analyse_wav(
    path: Path,
    *,
    max_bytes: int,
    max_seconds: float,
    vad_mode: int = DEFAULT_VAD_MODE,
    stereo_left: Side = Side.CALLER,
    smoothing: Smoothing | None = None,
) -> RecordingAnalysis:
    """Analyse the WAV file at `path`; `RecordingError` says why a file cannot be."""
    try:
        audio = read_wav(path, max_bytes=max_bytes, max_seconds=max_seconds)
    except FileNotFoundError as exc:
        raise RecordingError(ErrorCode.MISSING, f"no file {path.name}") from exc
    except (PermissionError, IsADirectoryError) as exc:
        raise RecordingError(ErrorCode.UNREADABLE, f"{path.name}: {exc.strerror}") from exc
    return analyse_audio(
        audio, vad_mode=vad_mode, stereo_left=stereo_left, smoothing=smoothing or Smoothing()
    )


def analyse_audio(
    audio: PcmAudio, *, vad_mode: int, stereo_left: Side, smoothing: Smoothing
) -> RecordingAnalysis:
    """The measurements of decoded audio (mono or stereo)."""
    rate = audio.format.sample_rate
    names = _side_names(audio.format.channels, stereo_left)
    masks = [
        speech_mask(channel, rate, mode=vad_mode, smoothing=smoothing) for channel in audio.samples
    ]
    duration = audio.duration_s
    anyone = np.logical_or.reduce(masks)
    interruptions = _interruptions(masks) if len(masks) == 2 else [0] * len(masks)
    sides = tuple(
        _side(name, mask, duration, count)
        for name, mask, count in zip(names, masks, interruptions, strict=True)
    )
    speech_total = _seconds(anyone)
    silences = _silences(anyone, duration)
    clipping = _clipping_ratio(audio.samples)
    return RecordingAnalysis(
        duration_s=round(duration, 3),
        channels=audio.format.channels,
        sample_rate=rate,
        sample_format=audio.format.label,
        sides=sides,
        speech_s_total=speech_total,
        talk_ratio_total=_ratio(speech_total, duration),
        total_silence_s=round(max(duration - speech_total, 0.0), 3),
        longest_silence_s=round(max(silences, default=0.0), 3),
        overlap_s=_seconds(np.logical_and(*masks)) if len(masks) == 2 else None,
        interruptions=sum(interruptions) if len(masks) == 2 else None,
        first_speech_delay_s=_first(anyone),
        clipping_ratio=round(clipping, 6),
        clipped=clipping >= CLIPPED_RATIO,
        vad_mode=vad_mode,
    )


def _side_names(channels: int, stereo_left: Side) -> tuple[Side, ...]:
    if channels == 1:
        return (Side.OVERALL,)
    if stereo_left is Side.AGENT:
        return (Side.AGENT, Side.CALLER)
    return (Side.CALLER, Side.AGENT)


def _side(side: Side, mask: Mask, duration: float, interruptions: int) -> SideAnalysis:
    speech = _seconds(mask)
    return SideAnalysis(
        side=side,
        segments=segments(mask),
        speech_s=speech,
        talk_ratio=_ratio(speech, duration),
        first_speech_delay_s=_first(mask),
        interruptions=interruptions,
    )


def _interruptions(masks: list[Mask]) -> list[int]:
    """For each of two sides: how often it started speaking over the other for long enough."""
    min_frames = round(MIN_INTERRUPTION_OVERLAP_S / FRAME_S)
    together = {start: end - start for start, end in runs(np.logical_and(*masks))}
    counts = []
    for me, other in ((masks[0], masks[1]), (masks[1], masks[0])):
        counts.append(
            sum(
                1
                for start, _ in runs(me)
                if start > 0 and other[start - 1] and together.get(start, 0) >= min_frames
            )
        )
    return counts


def _silences(anyone: Mask, duration: float) -> list[float]:
    """Lengths of the stretches where nobody speaks; the last partial frame is silence."""
    tail = max(duration - len(anyone) * FRAME_S, 0.0)
    found = [
        (end - start) * FRAME_S + (tail if end == len(anyone) else 0.0)
        for start, end in runs(~anyone)
    ]
    if tail > 0 and (len(anyone) == 0 or anyone[-1]):
        found.append(tail)
    return found


def _clipping_ratio(samples: npt.NDArray[np.float32]) -> float:
    return float(np.count_nonzero(np.abs(samples) >= CLIP_LEVEL)) / max(samples.size, 1)


def _seconds(mask: Mask) -> float:
    return round(int(np.count_nonzero(mask)) * FRAME_S, 3)


def _first(mask: Mask) -> float | None:
    hits = np.flatnonzero(mask)
    return round(int(hits[0]) * FRAME_S, 3) if len(hits) else None


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole > 0 else 0.0
