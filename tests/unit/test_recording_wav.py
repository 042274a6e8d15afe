"""Bad recordings give one clear, stored error each; odd but intact ones are still read."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.recordings.analysis import ErrorCode, RecordingError, analyse_wav
from callcenter.recordings.wav import PcmAudio, decode_wav, read_wav
from tests.recording_synth import channel, encode, wav_header, write_wav

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"


def _pcm(seconds: float = 1.0, rate: int = 8000) -> bytes:
    samples = channel(seconds, rate, [(0.2 * seconds, 0.8 * seconds)], np.random.default_rng(0))
    return encode(samples.reshape(-1, 1), encoding="pcm", bits=16)


def _error(path: Path, max_bytes: int = 10_000_000, max_seconds: float = 600.0) -> RecordingError:
    with pytest.raises(RecordingError) as caught:
        analyse_wav(path, max_bytes=max_bytes, max_seconds=max_seconds)
    return caught.value


def test_given_a_header_promising_more_audio_than_the_file_holds_then_truncated(
    tmp_path: Path,
) -> None:
    data = _pcm()
    path = tmp_path / "cut.wav"
    path.write_bytes(
        wav_header(tag=1, channels=1, rate=8000, width=2, data_size=len(data))
        + data[: len(data) // 2]
    )

    error = _error(path)

    assert error.code is ErrorCode.TRUNCATED
    assert str(len(data)) in error.message


@pytest.mark.parametrize(
    "content",
    [b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff" * 200, b"hello, I am not audio\n" * 10],
    ids=["mp3", "text"],
)
def test_given_a_file_named_wav_that_is_not_a_wav_then_not_wav(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "1795906366.1.wav"
    path.write_bytes(content)

    assert _error(path).code is ErrorCode.NOT_WAV


def test_given_a_file_over_the_size_limit_then_too_large_without_reading_it(
    tmp_path: Path,
) -> None:
    path = write_wav(tmp_path / "big.wav", [channel(2.0, 8000, [], np.random.default_rng(0))], 8000)

    error = _error(path, max_bytes=path.stat().st_size - 1)

    assert error.code is ErrorCode.TOO_LARGE


def test_given_a_recording_longer_than_the_limit_then_too_long(tmp_path: Path) -> None:
    path = write_wav(
        tmp_path / "long.wav", [channel(3.0, 8000, [], np.random.default_rng(0))], 8000
    )

    assert _error(path, max_seconds=2.0).code is ErrorCode.TOO_LONG


def test_given_a_zero_byte_file_then_empty(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")

    error = _error(path)

    assert error.code is ErrorCode.EMPTY
    assert "0 bytes" in error.message


def test_given_the_header_only_file_mixmonitor_leaves_then_empty() -> None:
    error = _error(FIXTURES / "1795906388.30.wav")

    assert error.code is ErrorCode.EMPTY
    assert "header only" in error.message


def test_given_no_file_or_a_folder_then_missing_or_unreadable(tmp_path: Path) -> None:
    assert _error(tmp_path / "nothing.wav").code is ErrorCode.MISSING
    (tmp_path / "folder.wav").mkdir()
    assert _error(tmp_path / "folder.wav").code is ErrorCode.UNREADABLE


@pytest.mark.parametrize(
    ("tag", "channels", "rate", "width", "fragment"),
    [
        (0x31, 1, 8000, 2, "GSM"),
        (0x07, 1, 8000, 1, "µ-law"),
        (1, 3, 8000, 2, "3 channels"),
        (1, 1, 4000, 2, "4000 Hz"),
        (3, 1, 8000, 2, "float"),
    ],
)
def test_given_a_format_that_is_not_analysed_then_unsupported_format_naming_it(
    tmp_path: Path, tag: int, channels: int, rate: int, width: int, fragment: str
) -> None:
    data = bytes(channels * width * rate // 10)
    path = tmp_path / "odd.wav"
    path.write_bytes(
        wav_header(tag=tag, channels=channels, rate=rate, width=width, data_size=len(data)) + data
    )

    error = _error(path)

    assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    assert fragment in error.message


def test_given_a_big_endian_rifx_file_then_unsupported_format(tmp_path: Path) -> None:
    path = tmp_path / "rifx.wav"
    path.write_bytes(b"RIFX" + bytes(4) + b"WAVE" + bytes(40))

    assert _error(path).code is ErrorCode.UNSUPPORTED_FORMAT


def test_given_a_header_whose_byte_rate_contradicts_the_format_then_corrupt(
    tmp_path: Path,
) -> None:
    data = _pcm()
    header = bytearray(wav_header(tag=1, channels=1, rate=8000, width=2, data_size=len(data)))
    struct.pack_into("<I", header, 28, 12345)  # byte rate
    path = tmp_path / "liar.wav"
    path.write_bytes(bytes(header) + data)

    assert _error(path).code is ErrorCode.CORRUPT


def test_given_audio_before_any_format_chunk_then_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "nofmt.wav"
    path.write_bytes(
        b"RIFF" + struct.pack("<I", 12) + b"WAVE" + b"data" + struct.pack("<I", 4) + bytes(4)
    )

    assert _error(path).code is ErrorCode.CORRUPT


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_given_a_data_size_never_filled_in_then_the_audio_to_the_end_is_read(
    tmp_path: Path, declared: int
) -> None:
    # A writer that stopped before finishing the header (or a streaming one) leaves 0 or
    # 0xFFFFFFFF; the audio itself is intact.
    data = _pcm(seconds=2.0)
    path = tmp_path / "unsized.wav"
    path.write_bytes(wav_header(tag=1, channels=1, rate=8000, width=2, data_size=declared) + data)

    audio = read_wav(path, max_bytes=10_000_000, max_seconds=600.0)

    assert audio.duration_s == pytest.approx(2.0)


def test_given_chunks_after_the_audio_then_only_the_declared_audio_is_read(
    tmp_path: Path,
) -> None:
    data = _pcm(seconds=1.0)
    trailer = b"LIST" + struct.pack("<I", 6) + b"INFOab"
    path = tmp_path / "list.wav"
    path.write_bytes(
        wav_header(tag=1, channels=1, rate=8000, width=2, data_size=len(data)) + data + trailer
    )

    assert read_wav(path, max_bytes=10_000_000, max_seconds=600.0).frames == 8000


_VALID = wav_header(tag=1, channels=2, rate=8000, width=2, data_size=3200) + _pcm(0.2) * 2


def _decoded_or_refused(blob: bytes) -> PcmAudio | RecordingError:
    """Any exception other than RecordingError escapes and fails the test."""
    try:
        return decode_wav(blob, max_seconds=600.0)
    except RecordingError as error:
        return error


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(_VALID)), noise=st.binary(max_size=64))
def test_given_any_cut_or_garbled_file_then_a_result_or_a_recording_error_never_a_crash(
    cut: int, noise: bytes
) -> None:
    for blob in (_VALID[:cut], _VALID[:cut] + noise, noise + _VALID[cut:]):
        outcome = _decoded_or_refused(blob)

        if isinstance(outcome, RecordingError):
            assert outcome.code in set(ErrorCode)
        else:
            assert outcome.samples.shape[0] in (1, 2)
            assert np.isfinite(outcome.samples).all()
