"""Cells for files a user opens in a spreadsheet, with formula injection neutralised.

A cell whose text begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a
formula by Excel and LibreOffice (a caller name like `=HYPERLINK(...)` would run on the
reader's machine). Such text is written with a leading `'`, which spreadsheets show as text.
Other values (numbers, dates, None) are never formulas and pass unchanged.
"""

from __future__ import annotations

from typing import Final, TypeVar, overload

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")

_Value = TypeVar("_Value")


@overload
def neutralise(value: str) -> str: ...
@overload
def neutralise(value: _Value) -> _Value: ...
def neutralise(value: object) -> object:
    """`value` safe for a spreadsheet cell: formula-like text gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
