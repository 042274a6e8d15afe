"""Formula injection: no cell of an exported file is one a spreadsheet would run."""

from __future__ import annotations

from datetime import date

import pytest

from callcenter.spreadsheets import neutralise


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("=1+2", "'=1+2"),
        ("+79161234567", "'+79161234567"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
    ],
)
def test_given_formula_like_text_then_it_is_written_as_text(cell: str, written: str) -> None:
    assert neutralise(cell) == written


@pytest.mark.parametrize("value", ["Мария", "a=b", "", 5, -5, 1.5, date(2026, 11, 29), None])
def test_given_plain_values_then_they_are_left_alone(value: object) -> None:
    assert neutralise(value) == value
