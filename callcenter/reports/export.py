"""Report tables as CSV and Excel files, with spreadsheet formula injection neutralised
(`callcenter.spreadsheets`). Numbers are written as numbers: they are never formulas.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO

from openpyxl import Workbook

from callcenter.spreadsheets import neutralise

Cell = str | int | float | date | datetime | None

_SPOOL_IN_MEMORY = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Table:
    """A report as rows: a title (the sheet name), headers, then rows of plain cells."""

    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Cell]]


def csv_chunks(table: Table, rows_per_chunk: int = 2000) -> Iterator[bytes]:
    """The table as UTF-8 CSV (with a BOM so Excel reads Cyrillic), in chunks for streaming."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow([neutralise(h) for h in table.headers])
    pending = 0
    for row in table.rows:
        writer.writerow([_csv_text(neutralise(c)) for c in row])
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode("utf-8")


def _csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def xlsx_file(table: Table) -> IO[bytes]:
    """The table as an .xlsx workbook (write-only mode: rows never pile up in memory).

    Returned rewound; small files stay in memory, big ones spill to a temporary file.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_sheet_title(table.title))
    sheet.append([neutralise(h) for h in table.headers])
    for row in table.rows:
        sheet.append([_xlsx_value(neutralise(c)) for c in row])
    out = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 (returned)
    workbook.save(out)
    out.seek(0)
    return out


def _xlsx_value(value: Cell) -> Cell:
    # Excel has no timezones: write the local wall-clock time the report is in.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if c in "[]:*?/\\" else c for c in title).strip()
    return (cleaned or "report")[:31]
