"""Files an import keeps beside the upload: the preview, the rejected rows, and their exports.

The upload is stored as ``<data_dir>/imports/<random name>.<kind>``; the name the uploader
gave is never used as a path.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape

from callcenter.imports.plan import Plan, RowPlan
from callcenter.spreadsheets import neutralise


def imports_dir(data_dir: Path) -> Path:
    path = data_dir / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_stored_name(kind: str) -> str:
    return f"{secrets.token_hex(16)}.{kind}"


def upload_path(data_dir: Path, stored_name: str) -> Path:
    return imports_dir(data_dir) / stored_name


def preview_path(data_dir: Path, stored_name: str) -> Path:
    return imports_dir(data_dir) / f"{stored_name}.preview.jsonl"


def rejected_path(data_dir: Path, stored_name: str) -> Path:
    return imports_dir(data_dir) / f"{stored_name}.rejected.jsonl"


def stored_name_of(file_name: str) -> str | None:
    """The batch's stored name a file in the imports folder belongs to (``<hex>.<kind>``
    and what is kept beside it), None for anything else (an upload still arriving)."""
    stem, dot, rest = file_name.partition(".")
    kind = rest.split(".", 1)[0]
    if not dot or len(stem) != 32 or kind not in ("csv", "xlsx"):
        return None
    return f"{stem}.{kind}"


def kept_files(data_dir: Path) -> dict[str, list[Path]]:
    """Stored name → the files kept for it."""
    found: dict[str, list[Path]] = {}
    for path in imports_dir(data_dir).iterdir():
        stored = stored_name_of(path.name)
        if stored is not None and path.is_file():
            found.setdefault(stored, []).append(path)
    return found


def remove_working_files(data_dir: Path, stored_name: str) -> None:
    """The upload and its preview: nothing reads them once a batch is done, failed or undone
    (the rejected rows stay for the report's download)."""
    for path in (upload_path(data_dir, stored_name), preview_path(data_dir, stored_name)):
        path.unlink(missing_ok=True)


# -- preview --------------------------------------------------------------------------------


def row_view(row: RowPlan) -> dict[str, Any]:
    """One row's decision as the preview and the API show it."""
    client = row.client
    org = row.organization
    return {
        "line": row.line,
        "decision": row.decision.value,
        "reason": row.reason.value if row.reason else None,
        "message": row.message,
        "target_line": row.target_line,
        "target_id": row.target_id,
        "client_id": client.existing_id if client else None,
        "name": client.label if client else None,
        "organization_id": org.existing_id if org else None,
        "organization": org.label if org else None,
    }


_SHOWN_CELL_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class ShownCells:
    """The cells of a rejected row the preview shows: those of the mapped columns."""

    columns: tuple[tuple[str, int], ...]
    """(header, position) of each mapped column, in the mapping's order."""
    source: Mapping[int, Sequence[str]]
    """Line → the row's cells."""

    @classmethod
    def of(
        cls,
        headers: Sequence[str],
        mapping: Mapping[Any, Sequence[str]],
        source: Mapping[int, Sequence[str]],
    ) -> ShownCells:
        position = {h: i for i, h in enumerate(headers)}
        mapped = dict.fromkeys(c for cols in mapping.values() for c in cols if c in position)
        return cls(tuple((h, position[h]) for h in mapped), source)

    def of_line(self, line: int) -> dict[str, str]:
        cells = self.source.get(line, ())
        return {
            header: cells[i][:_SHOWN_CELL_CHARS] if i < len(cells) else ""
            for header, i in self.columns
        }


def write_preview(path: Path, plan: Plan, shown: ShownCells | None = None) -> None:
    """Every row's decision; rejected rows also with their cells (`shown`), so the preview
    shows what was refused."""
    with path.open("w", encoding="utf-8") as f:
        for row in plan.rows:
            view = row_view(row)
            if shown is not None and row.reason is not None:
                view["cells"] = shown.of_line(row.line)
            f.write(json.dumps(view, ensure_ascii=False))
            f.write("\n")


def read_preview(
    path: Path, offset: int, limit: int, decision: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """A page of the preview (optionally of one decision) and how many rows match in all."""
    if not path.exists():
        return [], 0
    page: list[dict[str, Any]] = []
    total = 0
    marker = f'"decision": "{decision}"' if decision else None
    with path.open(encoding="utf-8") as f:
        for line in f:
            if marker is not None and marker not in line:
                continue
            if offset <= total < offset + limit:
                page.append(json.loads(line))
            total += 1
    return page, total


# -- rejected rows ------------------------------------------------------------------------------


def write_rejected(path: Path, plan: Plan, source: Mapping[int, Sequence[str]], width: int) -> int:
    """The rejected rows with their original cells and the reason; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for row in plan.rows:
            if row.reason is None:
                continue
            cells = list(source.get(row.line, ()))[:width]
            item = {
                "line": row.line,
                "cells": cells + [""] * (width - len(cells)),
                "reason": row.reason.value,
                "message": row.message,
            }
            f.write(json.dumps(item, ensure_ascii=False))
            f.write("\n")
            count += 1
    return count


@dataclass(frozen=True, slots=True)
class RejectedTexts:
    """The words of the rejected-rows file in the reader's language."""

    line: str = "line"
    reason: str = "reason"
    message: str = "message"
    sheet: str = "rejected"
    reasons: Mapping[str, str] | None = None
    """Reject reason code → its text; None: the codes themselves."""

    def reason_text(self, code: str) -> str:
        return self.reasons.get(code, code) if self.reasons is not None else code


def _rejected_records(
    path: Path, headers: Sequence[str], texts: RejectedTexts
) -> Iterator[list[str]]:
    yield [texts.line, *headers, texts.reason, texts.message]
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for raw in f:
            item = json.loads(raw)
            reason = texts.reason_text(item["reason"])
            yield [str(item["line"]), *item["cells"], reason, item["message"]]


def rejected_csv(path: Path, headers: Sequence[str], texts: RejectedTexts | None = None) -> bytes:
    """UTF-8 with a BOM and ``;`` (what Excel opens directly in a Russian locale)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    for record in _rejected_records(path, headers, texts or RejectedTexts()):
        writer.writerow([neutralise(c) for c in record])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def rejected_xlsx(path: Path, headers: Sequence[str], texts: RejectedTexts | None = None) -> bytes:
    texts = texts or RejectedTexts()
    records = _rejected_records(path, headers, texts)
    return xlsx_bytes(texts.sheet[:31], ([neutralise(c) for c in record] for record in records))


# -- a minimal .xlsx writer (text cells only) ------------------------------------------------------

_CONTENT_TYPES: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_ROOT_RELS: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK_RELS: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>'
)


def _column_name(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _clean(text: str) -> str:
    """Characters XML 1.0 cannot hold are dropped."""
    return "".join(c for c in text if c in "\t\n\r" or c >= " ")


def xlsx_bytes(sheet_name: str, rows: Iterable[Sequence[str]]) -> bytes:
    """A one-sheet workbook of text cells (inline strings: never formulas)."""
    body = io.StringIO()
    body.write(
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<sheetData>"
    )
    for r, row in enumerate(rows, start=1):
        body.write(f'<row r="{r}">')
        for c, value in enumerate(row):
            if value == "":
                continue
            ref = f"{_column_name(c)}{r}"
            text = escape(_clean(value))
            body.write(
                f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
            )
        body.write("</row>")
    body.write("</sheetData></worksheet>")
    workbook = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name="{escape(sheet_name)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", workbook)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", body.getvalue())
    return out.getvalue()
