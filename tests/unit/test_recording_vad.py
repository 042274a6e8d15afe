"""The pieces between the detector and the segments: resampling, hangover, smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from callcenter.recordings.vad import (
    Smoothing,
    _fft_filter,
    _lowpass,
    resample,
    runs,
    segments,
    smooth,
    without_hangover,
)


def _mask(pattern: str) -> np.ndarray:
    """ "#" = speech frame, "." = not."""
    return np.array([c == "#" for c in pattern], dtype=np.bool_)


def _pattern(mask: np.ndarray) -> str:
    return "".join("#" if v else "." for v in mask)


def _tone(hz: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_given_a_tone_in_the_speech_band_when_resampled_then_it_keeps_its_level() -> None:
    out = resample(_tone(1000, 44100), 44100, 8000)

    assert len(out) == 8000
    assert _rms(out[400:-400]) == pytest.approx(_rms(_tone(1000, 8000)), rel=0.02)


def test_given_a_tone_above_the_new_band_when_resampled_then_it_does_not_fold_back() -> None:
    # 10 kHz at 8 kHz would alias to 2 kHz, right where speech is.
    out = resample(_tone(10_000, 44100), 44100, 8000)

    assert _rms(out[400:-400]) < 0.01 * _rms(_tone(1000, 8000))


def test_given_any_length_then_the_block_filter_equals_a_direct_convolution() -> None:
    rng = np.random.default_rng(0)
    kernel = _lowpass(22050, 3600.0)
    for n in (1, 500, 200_000):
        x = rng.standard_normal(n).astype(np.float32)
        centre = (len(kernel) - 1) // 2
        direct = np.convolve(x.astype(np.float64), kernel)[centre : centre + n]

        assert np.max(np.abs(_fft_filter(x, kernel) - direct)) < 1e-5


def test_given_a_long_burst_then_the_detectors_long_hangover_is_taken_off() -> None:
    # Mode 2 holds "speech" 9 frames after more than 6 speech frames, 6 after fewer.
    raw = _mask("." * 5 + "#" * 30 + "." * 10 + "#" * 10 + "." * 5)

    trimmed = without_hangover(raw, mode=2)

    assert _pattern(trimmed) == "." * 5 + "#" * 21 + "." * 19 + "#" * 4 + "." * 11


def test_given_speech_running_to_the_end_then_its_frames_are_kept() -> None:
    raw = _mask("." * 5 + "#" * 30)

    assert _pattern(without_hangover(raw, mode=2)) == _pattern(raw)


def test_given_clicks_and_short_pauses_then_smoothing_drops_clicks_and_bridges_pauses() -> None:
    rules = Smoothing(min_speech_s=0.15, min_silence_s=0.3)
    click, word, pause, long_pause = "#" * 5, "#" * 40, "." * 20, "." * 50
    raw = _mask(long_pause + click + long_pause + word + pause + word + long_pause)

    smoothed = smooth(raw, rules)

    assert runs(smoothed) == [(105, 205)]
    assert segments(smoothed) == ((1.05, 2.05),)
