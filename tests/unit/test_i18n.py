"""The UI's message catalogues: the same keys in every language, and every key the UI uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from callcenter.calls.models import Outcome
from callcenter.calls.state import CallStatus
from callcenter.config import Settings
from callcenter.control.api import ERROR_CODES as CONTROL_ERROR_CODES
from callcenter.events import Direction, EndReason, StopRingReason
from callcenter.recordings.analysis import ErrorCode as RecordingErrorCode
from callcenter.recordings.analysis import Side as RecordingSide

UI = Path(__file__).resolve().parents[2] / "ui"
LOCALES = ["ru", "en"]
PLACEHOLDER = re.compile(r"\{(\w+)\}")
HTML_KEY = re.compile(r'data-i18n(?:-placeholder|-title|-aria-label)?="([^"]+)"')
JS_KEY = re.compile(r"""\bt\(\s*["']([\w.]+)["']""")
JS_ATTR_KEY = re.compile(r'"data-i18n(?:-aria-label)?",\s*"([\w.]+)"')

# Keys the UI builds at run time from a value the server sends: every value needs a message.
DYNAMIC_KEYS = {
    "outcome": [o.value for o in Outcome],
    "call.withdrawn": [r.value for r in StopRingReason] + ["other"],
    "end_reason": [r.value for r in EndReason] + [s.value for s in CallStatus] + ["unknown"],
    "call.direction": [d.value for d in Direction],
    "call.state": ["ringing", "connected", "ended", "withdrawn"],
    "conn": ["connected", "reconnecting", "offline"],
    "recording.side": [s.value for s in RecordingSide],
    "recording.error": [c.value for c in RecordingErrorCode],
    "control.presence": ["available", "paused_plain", "no_queue", "unknown"],
    "control.error": list(CONTROL_ERROR_CODES),
    "pause_reason": Settings(_env_file=None).pause_reasons,  # type: ignore[call-arg]
}


PARTS = ["", "supervisor", "crm", "imports", "reports"]
"""The catalogue parts ui/shared/i18n.js loads and merges (keep the two lists equal)."""


def _part(locale: str, part: str) -> dict[str, str]:
    path = UI / "i18n" / part / f"{locale}.json" if part else UI / "i18n" / f"{locale}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _catalogue(locale: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for part in PARTS:
        merged.update(_part(locale, part))
    return merged


def test_given_the_script_then_it_loads_the_same_parts() -> None:
    script = (UI / "shared" / "i18n.js").read_text(encoding="utf-8")
    listed = re.search(r"export const PARTS = \[([^\]]*)\]", script)
    assert listed is not None
    assert re.findall(r'"([^"]*)"', listed.group(1)) == PARTS


@pytest.mark.parametrize("part", PARTS)
def test_given_a_part_then_every_language_has_the_same_keys_and_no_part_repeats_a_key(
    part: str,
) -> None:
    ru, en = _part("ru", part), _part("en", part)
    assert set(ru) == set(en), {"only in ru": set(ru) - set(en), "only in en": set(en) - set(ru)}
    for other in PARTS:
        if other != part:
            assert not set(ru) & set(_part("ru", other)), (part, other)


def _ui_files(suffix: str) -> list[Path]:
    return sorted(p for p in UI.rglob(f"*{suffix}") if p.is_file())


def test_given_the_catalogues_then_every_language_has_the_same_keys() -> None:
    ru, en = _catalogue("ru"), _catalogue("en")
    assert set(ru) == set(en), {"only in ru": set(ru) - set(en), "only in en": set(en) - set(ru)}


@pytest.mark.parametrize("locale", LOCALES)
def test_given_a_catalogue_then_every_message_is_a_non_empty_string(locale: str) -> None:
    for key, text in _catalogue(locale).items():
        assert isinstance(text, str), key
        assert text.strip(), key


def test_given_a_message_then_every_language_uses_the_same_placeholders() -> None:
    ru, en = _catalogue("ru"), _catalogue("en")
    for key in ru:
        assert set(PLACEHOLDER.findall(ru[key])) == set(PLACEHOLDER.findall(en[key])), key


def test_given_russian_as_the_default_then_its_texts_are_really_russian() -> None:
    ru = _catalogue("ru")
    cyrillic = [k for k, v in ru.items() if re.search(r"[а-яё]", v, re.IGNORECASE)]
    assert len(cyrillic) > len(ru) * 0.8


def test_given_the_pages_then_every_key_they_use_is_in_the_catalogue() -> None:
    keys = set(_catalogue("ru"))
    used: set[str] = set()
    for page in _ui_files(".html"):
        used |= set(HTML_KEY.findall(page.read_text(encoding="utf-8")))
    for script in _ui_files(".js"):
        text = script.read_text(encoding="utf-8")
        used |= set(JS_KEY.findall(text)) | set(JS_ATTR_KEY.findall(text))
    assert used, "no keys found: the patterns are out of date"
    assert used <= keys, sorted(used - keys)


def test_given_values_the_server_sends_then_each_has_a_message() -> None:
    keys = set(_catalogue("ru"))
    missing = [
        f"{prefix}.{value}"
        for prefix, values in DYNAMIC_KEYS.items()
        for value in values
        if f"{prefix}.{value}" not in keys
    ]
    assert not missing


def test_given_the_strict_csp_then_pages_have_no_inline_scripts_or_styles() -> None:
    for page in _ui_files(".html"):
        text = page.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, (page.name, tag)
        assert "<style" not in text, page.name
        assert not re.search(r"\sstyle=", text), page.name
        assert not re.search(r"\son[a-z]+=", text), page.name
    for script in _ui_files(".js"):
        text = script.read_text(encoding="utf-8")
        assert ".innerHTML" not in text, script.name
        assert 'setAttribute("style"' not in text, script.name
