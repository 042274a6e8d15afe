"""Reading WAV files into normalised samples, with every way a file can be bad named.

Our own RIFF chunk walker instead of the stdlib `wave` module: `wave` reads PCM only, trusts
the declared data size (a truncated file silently comes out short) and says little about why
a file is refused. Here every refusal is a `RecordingError` with a stable code that is stored
and shown, and nothing beyond the size limit is ever read.

Accepted: RIFF/WAVE, mono or stereo, 8 000–192 000 Hz, integer PCM of 8 (unsigned), 16, 24 or
32 bits, IEEE float of 32 or 64 bits, plain or WAVE_FORMAT_EXTENSIBLE. A data chunk whose size
is 0 or 0xFFFFFFFF while audio follows (a writer that died before finishing the header, or a
streaming writer) is read to the end of the file; a data chunk declaring more bytes than the
file holds is `truncated`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

MIN_RATE = 8000
MAX_RATE = 192_000
MAX_CHANNELS = 2

_PCM = 0x0001
_IEEE_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
_UNSIZED = 0xFFFFFFFF
_FORMAT_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0006: "G.711 A-law",
    0x0007: "G.711 µ-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10 (Asterisk's 'WAV' format)",
    0x0055: "MP3",
}


class ErrorCode(StrEnum):
    """Why a recording has no analysis; stored with the call and shown on its card."""

    EMPTY = "empty"
    NOT_WAV = "not_wav"
    CORRUPT = "corrupt"
    TRUNCATED = "truncated"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_LARGE = "too_large"
    TOO_LONG = "too_long"
    MISSING = "missing"
    UNREADABLE = "unreadable"
    BAD_NAME = "bad_name"


class RecordingError(Exception):
    """A recording that cannot be analysed: a final outcome, never worth a retry."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class WavFormat:
    """What the `fmt ` chunk says, after the checks that it is self-consistent."""

    encoding: str
    """"pcm" (integer) or "float"."""
    channels: int
    sample_rate: int
    bytes_per_sample: int

    @property
    def block_align(self) -> int:
        return self.channels * self.bytes_per_sample

    @property
    def label(self) -> str:
        """For messages and the stored result, e.g. "pcm16" or "float32"."""
        return f"{self.encoding}{8 * self.bytes_per_sample}"


@dataclass(frozen=True)
class PcmAudio:
    """Decoded audio: one float32 row per channel, full scale = ±1.0."""

    format: WavFormat
    samples: npt.NDArray[np.float32]
    """Shape (channels, frames)."""

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.frames / self.format.sample_rate


def read_wav(path: Path, *, max_bytes: int, max_seconds: float) -> PcmAudio:
    """Read and decode `path`, or raise `RecordingError` saying exactly what is wrong with it."""
    size = path.stat().st_size
    if size == 0:
        raise RecordingError(ErrorCode.EMPTY, "the file is empty (0 bytes)")
    if size > max_bytes:
        raise RecordingError(
            ErrorCode.TOO_LARGE, f"the file has {size} bytes; the limit is {max_bytes}"
        )
    return decode_wav(path.read_bytes(), max_seconds=max_seconds)


def decode_wav(blob: bytes, *, max_seconds: float) -> PcmAudio:
    """Decode a whole WAV file held in memory (see the module docstring for what is accepted)."""
    fmt, data = _chunks(blob)
    frames = len(data) // fmt.block_align
    if frames == 0:
        raise RecordingError(ErrorCode.EMPTY, "the recording holds no audio (header only)")
    seconds = frames / fmt.sample_rate
    if seconds > max_seconds:
        limit = f"{max_seconds:g}"
        raise RecordingError(
            ErrorCode.TOO_LONG, f"the recording lasts {seconds:.0f} s; the limit is {limit} s"
        )
    samples = _decode_samples(data[: frames * fmt.block_align], fmt)
    return PcmAudio(format=fmt, samples=samples)


def _chunks(blob: bytes) -> tuple[WavFormat, memoryview]:
    """The format and the audio bytes of a RIFF/WAVE file."""
    if len(blob) < 12 or blob[8:12] != b"WAVE" or blob[:4] not in (b"RIFF", b"RIFX", b"RF64"):
        raise RecordingError(ErrorCode.NOT_WAV, f"not a WAV file (it starts with {blob[:4]!r})")
    if blob[:4] != b"RIFF":
        kind = blob[:4].decode("ascii")
        raise RecordingError(ErrorCode.UNSUPPORTED_FORMAT, f"{kind} WAV files are not supported")
    view = memoryview(blob)
    fmt: WavFormat | None = None
    offset = 12
    while offset + 8 <= len(blob):
        chunk_id = bytes(view[offset : offset + 4])
        (declared,) = struct.unpack_from("<I", blob, offset + 4)
        body = offset + 8
        available = len(blob) - body
        if chunk_id == b"data":
            if fmt is None:
                raise RecordingError(ErrorCode.CORRUPT, "the audio comes before its format chunk")
            if declared in (0, _UNSIZED):
                return fmt, view[body:]
            if declared > available:
                raise RecordingError(
                    ErrorCode.TRUNCATED,
                    f"the header declares {declared} bytes of audio but only {available} "
                    "are present (the file was cut short)",
                )
            return fmt, view[body : body + declared]
        if declared > available:
            raise RecordingError(
                ErrorCode.TRUNCATED, f"the {chunk_id!r} chunk runs past the end of the file"
            )
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(view[body : body + declared])
        offset = body + declared + (declared & 1)  # chunks are padded to an even length
    if fmt is None:
        raise RecordingError(ErrorCode.CORRUPT, "the file has no format chunk")
    raise RecordingError(
        ErrorCode.TRUNCATED, "the file has no audio data chunk (it ends after the header)"
    )


def _parse_fmt(chunk: memoryview) -> WavFormat:
    if len(chunk) < 16:
        raise RecordingError(ErrorCode.CORRUPT, f"the format chunk is {len(chunk)} bytes long")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == _EXTENSIBLE:
        if len(chunk) < 40:
            raise RecordingError(ErrorCode.CORRUPT, "the extensible format chunk is too short")
        (tag,) = struct.unpack_from("<H", chunk, 24)  # the sub-format GUID starts with the tag
    if tag == _PCM:
        encoding = "pcm"
    elif tag == _IEEE_FLOAT:
        encoding = "float"
    else:
        name = _FORMAT_NAMES.get(tag, f"format tag 0x{tag:04x}")
        raise RecordingError(
            ErrorCode.UNSUPPORTED_FORMAT, f"{name} audio is not supported; record as PCM WAV"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise RecordingError(
            ErrorCode.UNSUPPORTED_FORMAT, f"{channels} channels; only mono and stereo are analysed"
        )
    if not MIN_RATE <= rate <= MAX_RATE:
        raise RecordingError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"a sample rate of {rate} Hz; {MIN_RATE}–{MAX_RATE} Hz are analysed",
        )
    if block_align == 0 or block_align % channels:
        raise RecordingError(
            ErrorCode.CORRUPT, f"a block of {block_align} bytes cannot hold {channels} channels"
        )
    width = block_align // channels
    supported = {1, 2, 3, 4} if encoding == "pcm" else {4, 8}
    if width not in supported or bits > 8 * width:
        raise RecordingError(
            ErrorCode.UNSUPPORTED_FORMAT, f"{bits}-bit {encoding} samples in {width} bytes"
        )
    if byte_rate != rate * block_align:
        raise RecordingError(
            ErrorCode.CORRUPT,
            f"the header's byte rate {byte_rate} does not match {rate} Hz × {block_align} bytes",
        )
    return WavFormat(encoding=encoding, channels=channels, sample_rate=rate, bytes_per_sample=width)


def _decode_samples(data: memoryview, fmt: WavFormat) -> npt.NDArray[np.float32]:
    """Interleaved sample bytes → float32 array of shape (channels, frames)."""
    width = fmt.bytes_per_sample
    values: npt.NDArray[np.float32]
    if fmt.encoding == "float":
        raw = np.frombuffer(data, dtype="<f4" if width == 4 else "<f8")
        values = np.nan_to_num(raw.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    elif width == 1:  # 8-bit WAV is unsigned, centred on 128
        values = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        triples = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        joined = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        signed = np.where(joined >= 1 << 23, joined - (1 << 24), joined)
        values = signed.astype(np.float32) / float(1 << 23)
    else:
        dtype = "<i2" if width == 2 else "<i4"
        values = np.frombuffer(data, dtype=dtype).astype(np.float32) / float(1 << (8 * width - 1))
    return np.ascontiguousarray(values.reshape(-1, fmt.channels).T)
