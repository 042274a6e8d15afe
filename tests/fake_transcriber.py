"""A speech-to-text plugin as a local package would provide one (for the seam's tests only)."""

from __future__ import annotations

import wave
from pathlib import Path

from callcenter.recordings.transcription import Transcript


class FrameCountingTranscriber:
    """Says how much audio it was given: enough to show the file reached the plugin."""

    def transcribe(self, path: Path) -> Transcript:
        with wave.open(str(path), "rb") as audio:
            seconds = audio.getnframes() / audio.getframerate()
        return Transcript(text=f"{path.name}: {seconds:.2f} s heard", language="en")


def make() -> FrameCountingTranscriber:
    return FrameCountingTranscriber()


def fails_to_start() -> FrameCountingTranscriber:
    raise RuntimeError("the model files are not installed")


def make_nothing_useful() -> object:
    return object()
