"""The import page words every code the import API can send: a refused file, a reject reason,
a decision, a status, a field, a count. The page builds those keys at run time
(`imports.error.<code>` ...), so tests/unit/test_i18n.py cannot see them in the scripts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from callcenter.imports import api, service, upload
from callcenter.imports.mapping import Field, MappingErrorCode
from callcenter.imports.models import BatchStatus
from callcenter.imports.normalize import RejectReason
from callcenter.imports.plan import Decision, Plan
from callcenter.imports.reader import FileErrorCode

UI = Path(__file__).resolve().parents[2] / "ui"


def _source_codes(module: object, pattern: str) -> set[str]:
    path = getattr(module, "__file__", None)
    assert path is not None
    return set(re.findall(pattern, Path(path).read_text(encoding="utf-8")))


def _error_codes() -> set[str]:
    """Every `code` an import answer or a failed batch can carry."""
    codes = {c.value for c in FileErrorCode}
    codes |= _source_codes(upload, r'UploadError\(\s*"(\w+)"') | {upload.UploadTooLarge(1).code}
    codes |= _source_codes(api, r'body\(\s*"(\w+)"') | _source_codes(api, r'"code":\s*"(\w+)"')
    codes |= _source_codes(service, r'batch_id,\s*"(\w+)",') | {service.RUN_LOST, service.EXPIRED}
    return codes


EXPECTED = {
    "imports.error": _error_codes(),
    "imports.reason": {r.value for r in RejectReason},
    "imports.decision": {d.value for d in Decision},
    "imports.status": {s.value for s in BatchStatus},
    "imports.field": {f.value for f in Field},
    "imports.count": set(Plan([], [], []).counts()),
    "imports.mapping_error": {c.value for c in MappingErrorCode},
}


def test_given_the_sources_then_the_codes_are_found() -> None:
    assert {"too_large", "zip_bomb", "xml_forbidden", "bad_mapping", "undo_conflict"} <= (
        EXPECTED["imports.error"]
    )
    assert "write_failed" in EXPECTED["imports.error"]


@pytest.mark.parametrize("locale", ["ru", "en"])
@pytest.mark.parametrize("prefix", sorted(EXPECTED))
def test_given_a_code_the_api_sends_then_the_import_page_has_words_for_it(
    locale: str, prefix: str
) -> None:
    catalogue = json.loads((UI / "i18n" / "imports" / f"{locale}.json").read_text("utf-8"))
    missing = sorted(
        f"{prefix}.{code}" for code in EXPECTED[prefix] if f"{prefix}.{code}" not in catalogue
    )
    assert not missing
