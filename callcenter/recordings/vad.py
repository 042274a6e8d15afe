"""Speech segments of one channel: WebRTC's voice-activity detector, then smoothing.

The detector decides speech / non-speech per 10 ms frame from the spectrum (a Gaussian
mixture over six sub-band energies), so steady noise and hum are not taken for speech the way
an energy threshold would take them. Its decisions flicker inside words and on clicks, so they
are smoothed: bursts shorter than `min_speech_s` are dropped, then pauses shorter than
`min_silence_s` between two bursts are bridged. The detector keeps its own hangover:
after a burst of speech it goes on saying "speech" for a fixed number of frames (`_HANGOVER`
below, WebRTC's kOverHangMax1/2 for 10 ms frames: 60–140 ms by mode), which would put every
end that much late. Those frames are taken off each burst before smoothing, so ends and starts
both come out within a frame or two of where the voice stops and starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import webrtcvad

FRAME_S: Final = 0.01
"""The detector's decision step. 10 ms gives the finest boundaries; 20 or 30 ms would be
cheaper per second, but the detector costs far less than decoding either way."""
VAD_RATES: Final = frozenset({8000, 16000, 32000, 48000})
"""The rates the detector accepts; anything else is resampled to `RESAMPLE_TO`."""
RESAMPLE_TO: Final = 8000
"""The detector works on 0–4 kHz internally (it decimates 16/32/48 kHz itself), so 8 kHz
loses nothing it would look at."""
VAD_MODES: Final = range(4)
_HANGOVER: Final = {0: (8, 14), 1: (8, 14), 2: (6, 9), 3: (6, 9)}
"""Per mode, the frames of hangover after a short burst and after one of more than
`_LONG_BURST` frames (WebRTC vad_core.c, 10 ms frames)."""
_LONG_BURST: Final = 6
_BLOCKS_PER_BATCH: Final = 256


@dataclass(frozen=True)
class Smoothing:
    """How frame decisions become speech segments."""

    min_speech_s: float = 0.15
    """Shorter bursts are clicks, line noise or the detector settling in; a short word
    ("да", "yes") lasts longer."""
    min_silence_s: float = 0.3
    """Shorter pauses are inside a phrase (between words or syllables), not turns."""


Segment = tuple[float, float]
"""(start, end) in seconds from the start of the recording."""
Mask = npt.NDArray[np.bool_]
"""One boolean per 10 ms frame: speech or not."""


def speech_mask(
    samples: npt.NDArray[np.float32], rate: int, *, mode: int, smoothing: Smoothing
) -> Mask:
    """Smoothed per-frame speech decisions for one channel (full scale = ±1.0)."""
    raw = detector_decisions(samples, rate, mode=mode)
    return smooth(without_hangover(raw, mode), smoothing)


def detector_decisions(samples: npt.NDArray[np.float32], rate: int, *, mode: int) -> Mask:
    """The detector's own decision for every whole 10 ms frame, before any smoothing."""
    if mode not in VAD_MODES:
        raise ValueError(f"VAD mode must be 0–3, not {mode}")
    if rate not in VAD_RATES:
        samples = resample(samples, rate, RESAMPLE_TO)
        rate = RESAMPLE_TO
    return _frame_decisions(_to_pcm16(samples), rate, mode)


def _to_pcm16(samples: npt.NDArray[np.float32]) -> bytes:
    scaled: npt.NDArray[np.int16] = np.clip(np.rint(samples * 32768.0), -32768, 32767).astype("<i2")
    return scaled.tobytes()


def _frame_decisions(pcm: bytes, rate: int, mode: int) -> Mask:
    vad = webrtcvad.Vad(mode)
    step = 2 * round(rate * FRAME_S)
    view = memoryview(pcm)
    is_speech = vad.is_speech
    decisions = [is_speech(view[i : i + step], rate) for i in range(0, len(pcm) - step + 1, step)]
    return np.array(decisions, dtype=np.bool_)


def without_hangover(raw: Mask, mode: int) -> Mask:
    """The detector's decisions with the hangover frames at the end of each burst taken off
    (a burst that reaches the end of the recording keeps them: the voice may go on there)."""
    short, long = _HANGOVER[mode]
    mask = raw.copy()
    for start, end in runs(raw):
        if end == len(raw):
            continue
        hangover = long if end - start - long > _LONG_BURST else short
        mask[max(start, end - hangover) : end] = False
    return mask


def smooth(raw: Mask, smoothing: Smoothing) -> Mask:
    """Drop speech bursts shorter than the minimum, then bridge short pauses between bursts."""
    min_speech = round(smoothing.min_speech_s / FRAME_S)
    min_silence = round(smoothing.min_silence_s / FRAME_S)
    mask = raw.copy()
    for start, end in runs(mask):
        if end - start < min_speech:
            mask[start:end] = False
    for start, end in runs(~mask):
        if end - start < min_silence and start > 0 and end < len(mask):
            mask[start:end] = True
    return mask


def runs(mask: Mask) -> list[tuple[int, int]]:
    """[start, end) frame index pairs of every run of True."""
    edges = np.diff(mask.astype(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def segments(mask: Mask) -> tuple[Segment, ...]:
    """The runs of speech in seconds, rounded to the millisecond."""
    return tuple((round(s * FRAME_S, 3), round(e * FRAME_S, 3)) for s, e in runs(mask))


def resample(samples: npt.NDArray[np.float32], rate: int, target: int) -> npt.NDArray[np.float32]:
    """Band-limit to below `target`/2 (FFT convolution with a windowed sinc), then
    interpolate linearly at the new instants: after the filter, linear interpolation adds
    only small errors in the band the detector uses."""
    if rate == target:
        return samples
    filtered = _fft_filter(samples, _lowpass(rate, cutoff_hz=0.45 * min(rate, target)))
    n_out = int(len(samples) * target // rate)
    instants = np.arange(n_out, dtype=np.float64) * (rate / target)
    return np.interp(instants, np.arange(len(samples)), filtered).astype(np.float32)


def _lowpass(rate: int, cutoff_hz: float) -> npt.NDArray[np.float64]:
    transition_hz = 0.1 * cutoff_hz
    taps = int(5.5 * rate / transition_hz) | 1  # Blackman window: width ≈ 5.5 · rate / taps
    centre = np.arange(taps) - (taps - 1) / 2
    kernel = np.sinc(2 * cutoff_hz / rate * centre) * np.blackman(taps)
    result: npt.NDArray[np.float64] = kernel / kernel.sum()
    return result


def _fft_filter(
    samples: npt.NDArray[np.float32], kernel: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """`samples` convolved with `kernel` (centred, same length): overlap-add over fixed
    blocks, transformed `_BLOCKS_PER_BATCH` at a time so memory stays small on long files."""
    taps = len(kernel)
    size = 1 << int(np.ceil(np.log2(4 * taps)))
    block = size - taps + 1
    n = len(samples)
    count = -(-(n + taps - 1) // block)  # the padding after the signal holds the last tail
    padded = np.zeros(count * block, dtype=np.float32)
    padded[:n] = samples
    kernel_spectrum = np.fft.rfft(kernel, n=size)
    out = np.empty(count * block, dtype=np.float32)
    carry = np.zeros(taps - 1)
    for first in range(0, count, _BLOCKS_PER_BATCH):
        blocks = padded[first * block : (first + _BLOCKS_PER_BATCH) * block].reshape(-1, block)
        spectra = np.fft.rfft(blocks, n=size, axis=1) * kernel_spectrum
        pieces = np.fft.irfft(spectra, n=size, axis=1)
        # Each block's tail (taps - 1 < block samples) spills into the start of the next one.
        joined = pieces[:, :block].copy()
        joined[1:, : taps - 1] += pieces[:-1, block:]
        joined[0, : taps - 1] += carry
        carry = pieces[-1, block:]
        out[first * block : first * block + joined.size] = joined.reshape(-1)
    delay = (taps - 1) // 2
    return out[delay : delay + n]
