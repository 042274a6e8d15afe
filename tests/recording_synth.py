"""Synthetic call audio with known speech boundaries, and a WAV writer for every sample format.

The "speech" is a voiced source the way a voice makes one: a glottal pulse train (a harmonic
series whose fundamental wanders like intonation) shaped by three formant resonances that
move from syllable to syllable, with syllables 4–6 per second whose loudness dips between
them but does not stop. WebRTC's detector takes it for speech (the tests check that it does)
and takes the low hiss around it for silence.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Burst = tuple[float, float]

_VOWEL_FORMANTS = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480)]


def speech_like(seconds: float, rate: int, rng: np.random.Generator, f0: float = 140.0) -> Floats:
    """`seconds` of voiced, syllable-modulated sound at about -12 dBFS peak."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    drift = np.cumsum(rng.standard_normal(n)) / np.sqrt(rate) * 0.5
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.8 * t + rng.uniform(0, 6)) + 0.05 * drift)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    syllable_rate = rng.uniform(4.0, 6.0)
    syllable = np.floor(t * syllable_rate).astype(int)
    vowels = rng.integers(0, len(_VOWEL_FORMANTS), size=syllable.max(initial=0) + 1)[syllable]
    formants = np.array(_VOWEL_FORMANTS, dtype=np.float64)[vowels]
    signal = np.zeros(n)
    for k in range(1, int(min(0.45 * rate, 4000.0) / f0)):  # telephone band
        harmonic = k * pitch
        gain = sum(
            np.exp(-(((harmonic - formants[:, i]) / (80 + 40 * i)) ** 2)) / (1 + i)
            for i in range(3)
        )
        signal += (gain + 0.02) / np.sqrt(k) * np.sin(k * phase)
    envelope = 0.35 + 0.65 * np.sin(np.pi * (t * syllable_rate % 1.0)) ** 2
    signal *= envelope
    signal *= 0.25 / max(np.max(np.abs(signal)), 1e-9)
    ramp = min(round(0.01 * rate), n // 2)
    if ramp:
        signal[:ramp] *= np.linspace(0, 1, ramp)
        signal[-ramp:] *= np.linspace(1, 0, ramp)
    return signal


def channel(
    seconds: float,
    rate: int,
    bursts: Sequence[Burst],
    rng: np.random.Generator,
    *,
    noise_dbfs: float = -60.0,
    f0: float = 140.0,
) -> Floats:
    """Hiss at `noise_dbfs` with speech in each (start, end) burst."""
    n = round(seconds * rate)
    out = rng.standard_normal(n) * 10 ** (noise_dbfs / 20)
    for start, end in bursts:
        a, b = round(start * rate), round(end * rate)
        out[a:b] += speech_like((b - a) / rate, rate, rng, f0=f0)
    return out


def write_wav(
    path: Path, channels: Sequence[Floats], rate: int, *, encoding: str = "pcm", bits: int = 16
) -> Path:
    """Write float channels (full scale ±1) as a canonical 44-byte-header WAV file."""
    frames = np.stack([np.clip(c, -1.0, 1.0) for c in channels], axis=1)
    data = encode(frames, encoding=encoding, bits=bits)
    width = bits // 8
    tag = 3 if encoding == "float" else 1
    header = wav_header(
        tag=tag, channels=len(channels), rate=rate, width=width, data_size=len(data)
    )
    path.write_bytes(header + data)
    return path


def wav_header(*, tag: int, channels: int, rate: int, width: int, data_size: int) -> bytes:
    block = channels * width
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, 8 * width)
    return (
        b"RIFF"
        + struct.pack("<I", min(36 + data_size, 0xFFFFFFFF))
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_size)
    )


def encode(frames: Floats, *, encoding: str, bits: int) -> bytes:
    """Interleaved little-endian sample bytes of (frames, channels) floats."""
    flat = frames.reshape(-1)
    if encoding == "float":
        return flat.astype("<f4" if bits == 32 else "<f8").tobytes()
    if bits == 8:
        return np.clip(np.rint(flat * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    top = float(1 << (bits - 1))
    ints = np.clip(np.rint(flat * top), -top, top - 1).astype(np.int64)
    if bits == 24:
        as_bytes = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        return as_bytes.tobytes()
    return ints.astype("<i2" if bits == 16 else "<i4").tobytes()
