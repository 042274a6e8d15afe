"""Benchmark: recording analysis speed, in seconds of audio per second of wall time.

Run from the repository root:

    .venv/bin/python bench/recordings.py [--files 10] [--minutes 10] [--rounds 3]

(a) ``shared``: every recording in ``../shared/recordings`` (or its copy in
    ``tests/fixtures/recordings``; real MixMonitor files, 8 kHz), best of at least 20 rounds.
(b) ``long``: ``--files`` generated calls of ``--minutes`` each at 8 kHz, half mono and half
    stereo: two synthetic voices taking turns, talking over each other now and then, with
    stretches of dead air (see ``_conversation``).
(c) ``rates``: one generated mono call of ``--minutes`` at 16 kHz (the detector's own rate)
    and at 44.1 kHz (resampled before detection), to show what other rates cost.

Each figure is the whole `analyse_wav` (read, decode, clipping, detection, smoothing,
measures) on files written to a temporary folder beforehand; generation is not timed.
Target: at least 200x. Figures are printed and written to ``bench/results/recordings.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, write_result  # also puts the repository root on sys.path

from callcenter.recordings.analysis import RecordingError, analyse_wav
from tests.recording_synth import speech_like, write_wav

SHARED = ROOT.parent / "shared" / "recordings"
if not SHARED.is_dir():  # a checkout without shared/: the same files, copied for the tests
    SHARED = ROOT / "tests" / "fixtures" / "recordings"
TARGET = 200.0
LIMITS: dict[str, Any] = {"max_bytes": 1 << 31, "max_seconds": 24 * 3600.0}


def _utterances(rate: int, rng: np.random.Generator, f0: float, count: int = 16) -> list[Any]:
    """A pool of phrases of one voice (0.4–6 s), reused to build long calls quickly."""
    return [speech_like(rng.uniform(0.4, 6.0), rate, rng, f0=f0) for _ in range(count)]


def _voices(rate: int, rng: np.random.Generator) -> list[list[Any]]:
    return [_utterances(rate, rng, 130.0), _utterances(rate, rng, 210.0)]


def _conversation(
    seconds: float, rate: int, pools: list[list[Any]], rng: np.random.Generator
) -> list[Any]:
    """Caller and agent channels: turns with short gaps, some overlaps, some dead air."""
    n = round(seconds * rate)
    sides = [rng.standard_normal(n) * 10 ** (-60 / 20) for _ in range(2)]
    at, speaker = rng.uniform(0.5, 2.0), 1  # the agent greets first
    while True:
        phrase = pools[speaker][int(rng.integers(len(pools[speaker])))]
        start = round(at * rate)
        if start + len(phrase) >= n:
            break
        sides[speaker][start : start + len(phrase)] += phrase
        roll = rng.random()
        if roll < 0.15:  # the other side cuts in before this phrase ends
            at += len(phrase) / rate * rng.uniform(0.4, 0.9)
        elif roll < 0.22:  # dead air
            at += len(phrase) / rate + rng.uniform(3.0, 9.0)
        else:
            at += len(phrase) / rate + rng.uniform(0.2, 1.2)
        speaker = 1 - speaker if rng.random() < 0.8 else speaker
    return sides


def _timed(paths: list[Path], rounds: int) -> dict[str, Any]:
    audio_s, best_wall, errors = 0.0, float("inf"), 0
    for _ in range(rounds):
        audio_s, errors = 0.0, 0
        started = time.perf_counter()
        for path in paths:
            try:
                audio_s += analyse_wav(path, **LIMITS).duration_s
            except RecordingError:
                errors += 1
        best_wall = min(best_wall, time.perf_counter() - started)
    return {
        "files": len(paths),
        "failed_files": errors,
        "audio_s": round(audio_s, 2),
        "wall_s": round(best_wall, 4),
        "audio_s_per_wall_s": round(audio_s / best_wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(20261129)
    seconds = args.minutes * 60
    figures: dict[str, Any] = {"target_audio_s_per_wall_s": TARGET}

    shared = sorted(SHARED.glob("*.wav"))
    if shared:
        figures["shared"] = _timed(shared, max(args.rounds, 20))

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        long_files = []
        voices = _voices(8000, rng)
        for i in range(args.files):
            caller, agent = _conversation(seconds, 8000, voices, rng)
            channels = [caller, agent] if i % 2 else [caller + agent]
            long_files.append(write_wav(tmp / f"long{i}.wav", channels, 8000))
        figures["long"] = {
            "minutes_each": args.minutes,
            "mono_files": (args.files + 1) // 2,
            "stereo_files": args.files // 2,
            **_timed(long_files, args.rounds),
        }
        figures["rates"] = {}
        for rate in (16000, 44100):
            caller, agent = _conversation(seconds, rate, _voices(rate, rng), rng)
            path = write_wav(tmp / f"rate{rate}.wav", [caller + agent], rate)
            figures["rates"][str(rate)] = _timed([path], args.rounds)

    long_speed = figures["long"]["audio_s_per_wall_s"]
    figures["meets_target"] = long_speed >= TARGET
    for name in ("shared", "long"):
        if name in figures:
            print(f"{name:>8}: {figures[name]['audio_s_per_wall_s']:>9.1f} x  {figures[name]}")
    for rate, found in figures["rates"].items():
        print(f"{rate + ' Hz':>8}: {found['audio_s_per_wall_s']:>9.1f} x  {found}")
    print(f"target {TARGET:.0f} x: {'met' if figures['meets_target'] else 'NOT met'}")
    print(f"written to {write_result('recordings', figures)}")


if __name__ == "__main__":
    main()
