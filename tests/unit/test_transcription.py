"""The speech-to-text seam: a plugin named by a setting or an installed entry point."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.recordings.transcription import (
    ENTRY_POINT_GROUP,
    Transcriber,
    TranscriberUnavailable,
    load_transcriber,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"


@pytest.fixture(autouse=True)
def fresh_plugins() -> Iterator[None]:
    load_transcriber.cache_clear()
    yield
    load_transcriber.cache_clear()


def test_given_no_setting_then_there_is_no_transcriber() -> None:
    assert load_transcriber("") is None
    assert load_transcriber("   ") is None


def test_given_a_module_path_then_the_plugin_is_made_once_and_transcribes() -> None:
    transcriber = load_transcriber("tests.fake_transcriber:make")

    assert isinstance(transcriber, Transcriber)
    assert load_transcriber("tests.fake_transcriber:make") is transcriber
    assert transcriber.transcribe(FIXTURES / "1795906372.6.wav").text == (
        "1795906372.6.wav: 1.50 s heard"
    )


def test_given_an_installed_package_declaring_the_entry_point_then_it_is_found_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "local_stt-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: local-stt\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nlocal-stt = tests.fake_transcriber:make\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    transcriber = load_transcriber("local-stt")

    assert transcriber is not None
    assert "s heard" in transcriber.transcribe(FIXTURES / "1795906366.1.wav").text


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("no-such-plugin", "entry point"),
        ("tests.fake_transcriber:fails_to_start", "model files are not installed"),
        ("tests.fake_transcriber:make_nothing_useful", "no transcribe"),
        ("tests.fake_transcriber:nothing_here", "failed to start"),
        ("tests.no_such_module:make", "failed to start"),
    ],
)
def test_given_a_setting_naming_nothing_usable_then_transcriber_unavailable_says_why(
    spec: str, reason: str
) -> None:
    with pytest.raises(TranscriberUnavailable, match=reason):
        load_transcriber(spec)
