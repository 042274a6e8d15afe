"""Recording analysis on generated calls of known speech and silence, and on real recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from callcenter.recordings.analysis import (
    MIN_INTERRUPTION_OVERLAP_S,
    ErrorCode,
    RecordingAnalysis,
    RecordingError,
    Side,
    analyse_wav,
)
from callcenter.recordings.vad import detector_decisions
from tests.recording_synth import Burst, channel, speech_like, write_wav

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
LIMITS = {"max_bytes": 50_000_000, "max_seconds": 3600.0}
TOLERANCE_S = 0.1


def _analyse(path: Path) -> RecordingAnalysis:
    return analyse_wav(path, **LIMITS)


def _assert_segments_match(found: tuple[tuple[float, float], ...], bursts: list[Burst]) -> None:
    assert len(found) == len(bursts), (found, bursts)
    for (start, end), (true_start, true_end) in zip(found, bursts, strict=True):
        assert abs(start - true_start) <= TOLERANCE_S, (found, bursts)
        assert abs(end - true_end) <= TOLERANCE_S, (found, bursts)


def test_given_the_synthetic_voice_then_the_detector_itself_calls_it_speech_and_hiss_not() -> None:
    rng = np.random.default_rng(7)
    voice = speech_like(2.0, 8000, rng).astype(np.float32)
    hiss = (rng.standard_normal(16000) * 10 ** (-60 / 20)).astype(np.float32)

    on_voice = detector_decisions(voice, 8000, mode=2)
    on_hiss = detector_decisions(hiss, 8000, mode=2)

    assert on_voice.mean() > 0.9
    assert on_hiss.mean() < 0.05


@pytest.mark.parametrize("rate", [8000, 16000, 11025, 44100])
def test_given_mono_speech_with_known_boundaries_when_analysed_then_segments_within_100ms(
    tmp_path: Path, rate: int
) -> None:
    bursts = [(0.62, 2.4), (3.35, 4.1), (5.5, 8.25)]
    samples = channel(9.5, rate, bursts, np.random.default_rng(rate))
    path = write_wav(tmp_path / "mono.wav", [samples], rate)

    result = _analyse(path)

    assert result.channels == 1
    assert result.sample_rate == rate
    assert [s.side for s in result.sides] == [Side.OVERALL]
    overall = result.sides[0]
    _assert_segments_match(overall.segments, bursts)
    spoken = sum(end - start for start, end in bursts)
    assert overall.speech_s == pytest.approx(spoken, abs=0.2)
    assert overall.talk_ratio == pytest.approx(spoken / 9.5, abs=0.03)
    assert result.duration_s == pytest.approx(9.5, abs=0.001)
    assert result.total_silence_s == pytest.approx(9.5 - spoken, abs=0.2)
    assert result.longest_silence_s == pytest.approx(5.5 - 4.1, abs=0.2)
    assert result.first_speech_delay_s == pytest.approx(0.62, abs=TOLERANCE_S)
    assert result.overlap_s is None
    assert result.interruptions is None
    assert not result.clipped


def test_given_a_stereo_call_with_overlaps_when_analysed_then_each_side_overlap_and_interruptions(
    tmp_path: Path,
) -> None:
    agent = [(0.5, 2.5), (6.0, 7.0), (10.3, 12.0)]
    caller = [(3.0, 6.8), (7.6, 10.9)]
    # The agent cuts in twice: at 6.0 (both speak 0.8 s) and at 10.3 (0.6 s). The caller
    # starts only when the agent is silent.
    rng = np.random.default_rng(42)
    left = channel(13.0, 8000, caller, rng, f0=120.0)
    right = channel(13.0, 8000, agent, rng, f0=220.0)
    path = write_wav(tmp_path / "stereo.wav", [left, right], 8000)

    result = _analyse(path)

    assert result.channels == 2
    found_caller, found_agent = result.side(Side.CALLER), result.side(Side.AGENT)
    assert found_caller is not None
    assert found_agent is not None
    assert result.side(Side.OVERALL) is None
    _assert_segments_match(found_caller.segments, caller)
    _assert_segments_match(found_agent.segments, agent)
    assert result.overlap_s == pytest.approx(0.8 + 0.6, abs=0.2)
    assert found_agent.interruptions == 2
    assert found_caller.interruptions == 0
    assert result.interruptions == 2
    assert found_agent.first_speech_delay_s == pytest.approx(0.5, abs=TOLERANCE_S)
    assert found_caller.first_speech_delay_s == pytest.approx(3.0, abs=TOLERANCE_S)
    assert result.first_speech_delay_s == pytest.approx(0.5, abs=TOLERANCE_S)
    assert result.longest_silence_s == pytest.approx(1.0, abs=TOLERANCE_S)  # 12.0 to the end
    assert result.total_silence_s == pytest.approx(0.5 + 0.5 + 0.6 + 1.0, abs=0.2)


def test_given_a_short_back_channel_over_the_other_side_then_it_is_no_interruption(
    tmp_path: Path,
) -> None:
    caller = [(1.0, 5.0)]
    agent = [(2.5, 2.5 + MIN_INTERRUPTION_OVERLAP_S - 0.2)]  # a quick "mm-hm"
    rng = np.random.default_rng(3)
    path = write_wav(
        tmp_path / "backchannel.wav",
        [channel(6.0, 8000, caller, rng), channel(6.0, 8000, agent, rng, f0=210.0)],
        8000,
    )

    result = _analyse(path)

    assert result.interruptions == 0
    assert result.overlap_s == pytest.approx(0.3, abs=0.15)


def test_given_stereo_recorded_the_other_way_round_then_the_sides_are_swapped(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(5)
    path = write_wav(
        tmp_path / "flipped.wav",
        [channel(4.0, 8000, [(0.5, 1.5)], rng), channel(4.0, 8000, [(2.0, 3.5)], rng)],
        8000,
    )

    result = analyse_wav(path, **LIMITS, stereo_left=Side.AGENT)

    agent = result.side(Side.AGENT)
    assert agent is not None
    _assert_segments_match(agent.segments, [(0.5, 1.5)])


def test_given_only_hiss_then_no_speech_and_all_silence(tmp_path: Path) -> None:
    path = write_wav(
        tmp_path / "hiss.wav", [channel(5.0, 8000, [], np.random.default_rng(1))], 8000
    )

    result = _analyse(path)

    assert result.speech_s_total == 0
    assert result.sides[0].segments == ()
    assert result.first_speech_delay_s is None
    assert result.total_silence_s == pytest.approx(5.0)
    assert result.longest_silence_s == pytest.approx(5.0)


def test_given_a_clipped_recording_then_clipping_is_reported(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    loud = channel(3.0, 8000, [(0.5, 2.5)], rng) * 12.0  # peaks far past full scale
    clean = channel(3.0, 8000, [(0.5, 2.5)], rng)

    clipped = _analyse(write_wav(tmp_path / "loud.wav", [loud], 8000))
    unclipped = _analyse(write_wav(tmp_path / "clean.wav", [clean], 8000))

    assert clipped.clipped
    assert clipped.clipping_ratio > 0.01
    assert not unclipped.clipped
    assert unclipped.clipping_ratio == 0


@pytest.mark.parametrize(
    ("encoding", "bits", "label"),
    [("pcm", 8, "pcm8"), ("pcm", 24, "pcm24"), ("pcm", 32, "pcm32"), ("float", 32, "float32")],
)
def test_given_other_sample_formats_then_the_same_speech_is_found(
    tmp_path: Path, encoding: str, bits: int, label: str
) -> None:
    bursts = [(0.7, 2.2)]
    samples = channel(3.5, 16000, bursts, np.random.default_rng(11), noise_dbfs=-45)
    path = write_wav(tmp_path / "fmt.wav", [samples], 16000, encoding=encoding, bits=bits)

    result = _analyse(path)

    assert result.sample_format == label
    _assert_segments_match(result.sides[0].segments, bursts)


# --- the recordings MixMonitor made (tests/fixtures/recordings) ----------------------------


def _catalogue() -> list[dict[str, object]]:
    entries = json.loads((FIXTURES / "recordings.json").read_text(encoding="utf-8"))
    assert isinstance(entries, list)
    return entries


@pytest.mark.parametrize("entry", _catalogue(), ids=lambda e: str(e["file"]))
def test_given_a_real_recording_then_it_is_analysed_as_its_catalogue_says(
    entry: dict[str, object],
) -> None:
    path = FIXTURES / str(entry["file"])
    if entry["seconds"] == 0.0:
        with pytest.raises(RecordingError) as caught:
            _analyse(path)
        assert caught.value.code is ErrorCode.EMPTY
        return

    result = _analyse(path)

    assert result.duration_s == pytest.approx(float(str(entry["seconds"])), abs=0.05)
    assert result.channels == entry["channels"]
    assert result.sample_rate == entry["rate"]
    if entry["channels"] == 2:
        assert [s.side for s in result.sides] == [Side.CALLER, Side.AGENT]
        assert result.overlap_s is not None
    else:
        assert [s.side for s in result.sides] == [Side.OVERALL]
    if entry["outcome"] == "answered":
        assert all(side.speech_s > 0 for side in result.sides)
        assert result.speech_s_total > 0.5 * result.duration_s
