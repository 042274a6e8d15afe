"""Reading uploads: hostile and broken files are refused with a typed code, real exports read."""

from __future__ import annotations

import datetime as dt
import struct
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import pytest

from callcenter.imports.reader import (
    FileErrorCode,
    FileRejected,
    Limits,
    csv_rows,
    detect_delimiter,
    detect_kind,
    open_workbook,
    workbook_rows,
)
from callcenter.imports.service import inspect_file, prepare
from tests.import_generator import write_xlsx

E = FileErrorCode
HEADER = ["ФИО", "Телефон"]


def _consume(call: Callable[..., object], *args: object) -> None:
    result = call(*args)
    if isinstance(result, Iterator):
        list(result)


def _rejected(call: Callable[..., object], *args: object) -> FileErrorCode:
    """The code of the FileRejected that calling (and reading) `call(*args)` raises."""
    with pytest.raises(FileRejected) as caught:
        _consume(call, *args)
    return caught.value.code


def _workbook_rows(path: Path, limits: Limits | None = None) -> list[tuple[str, ...]]:
    book = open_workbook(path, limits or Limits())
    return [row.cells for row in workbook_rows(book, book.sheets[0])]


# -- what the bytes are -------------------------------------------------------------------------


def test_given_a_file_over_the_limit_when_checking_then_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * 2048)

    assert _rejected(detect_kind, path, "big.csv", Limits(max_bytes=1024)) is E.TOO_LARGE


def test_given_text_named_xlsx_when_checking_then_extension_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "clients.xlsx"
    path.write_text("ФИО;Телефон\n", encoding="utf-8")

    assert _rejected(detect_kind, path, "clients.xlsx", Limits()) is E.EXTENSION_MISMATCH


def test_given_a_zip_named_csv_when_checking_then_extension_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    write_xlsx(path, [HEADER])

    assert _rejected(detect_kind, path, "clients.csv", Limits()) is E.EXTENSION_MISMATCH


def test_given_an_old_xls_when_checking_then_legacy_xls(tmp_path: Path) -> None:
    path = tmp_path / "clients.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)

    assert _rejected(detect_kind, path, "clients.xls", Limits()) is E.LEGACY_XLS


def test_given_binary_named_csv_when_checking_then_binary(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00garbage")

    assert _rejected(detect_kind, path, "clients.csv", Limits()) is E.BINARY


def test_given_an_unknown_extension_when_checking_then_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "clients.pdf"
    path.write_bytes(b"%PDF-1.7")

    assert _rejected(detect_kind, path, "clients.pdf", Limits()) is E.UNKNOWN_FORMAT


def test_given_an_empty_file_when_checking_then_empty(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_bytes(b"")

    assert _rejected(detect_kind, path, "clients.csv", Limits()) is E.EMPTY_FILE


# -- zip bombs ----------------------------------------------------------------------------------


def _set_declared_size(path: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size a zip declares for `member` (local and central headers)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.find(b"PK\x03\x04")
    while local != -1:
        name_len = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30 : local + 30 + name_len] == name:
            struct.pack_into("<I", data, local + 22, size)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_len] == name:
            struct.pack_into("<I", data, central + 24, size)
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


def test_given_a_zip_declaring_a_huge_size_when_opening_then_zip_bomb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    write_xlsx(path, [HEADER, ["Иванов", "89161234567"]])
    _set_declared_size(path, "xl/worksheets/sheet1.xml", 4_000_000_000)

    assert _rejected(open_workbook, path, Limits()) is E.ZIP_BOMB


def test_given_highly_compressed_content_when_opening_then_zip_bomb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    write_xlsx(path, [HEADER])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", b"\x00" * (20 * 1024 * 1024))

    assert _rejected(open_workbook, path, Limits()) is E.ZIP_BOMB


def test_given_parts_larger_in_total_than_allowed_when_opening_then_zip_bomb(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.xlsx"
    write_xlsx(path, [HEADER] + [["Иванов", f"8916{i:07d}"] for i in range(3000)])

    assert _rejected(open_workbook, path, Limits(max_unzipped_bytes=50_000)) is E.ZIP_BOMB


def test_given_a_zip_understating_a_size_when_opening_then_refused_on_real_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "liar.xlsx"
    write_xlsx(path, [HEADER] + [["Иванов", f"8916{i:07d}"] for i in range(3000)])
    _set_declared_size(path, "xl/worksheets/sheet1.xml", 100)

    # Reading stops at the declared size, and the checksum then gives the lie away.
    assert _rejected(open_workbook, path, Limits()) is E.BROKEN_FILE


def test_given_a_zip_that_is_no_workbook_when_opening_then_broken(tmp_path: Path) -> None:
    path = tmp_path / "other.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("word/document.xml", "<document/>")

    assert _rejected(open_workbook, path, Limits()) is E.BROKEN_FILE


def test_given_a_truncated_zip_when_opening_then_broken(tmp_path: Path) -> None:
    path = tmp_path / "cut.xlsx"
    write_xlsx(path, [HEADER, ["Иванов", "89161234567"]])
    path.write_bytes(path.read_bytes()[:300])

    assert _rejected(open_workbook, path, Limits()) is E.BROKEN_FILE


# -- XML attacks --------------------------------------------------------------------------------

XXE = '<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(2, 10))
    + '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
)


@pytest.mark.parametrize("prefix", [XXE, BILLION_LAUGHS, "<!DOCTYPE worksheet>"])
def test_given_a_sheet_with_a_dtd_when_opening_then_xml_forbidden(
    tmp_path: Path, prefix: str
) -> None:
    path = tmp_path / "evil.xlsx"
    write_xlsx(path, [HEADER, ["&xxe;", "89161234567"]], sheet_xml_prefix=prefix)

    assert _rejected(open_workbook, path, Limits()) is E.XML_FORBIDDEN


def test_given_broken_xml_when_opening_then_broken(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    write_xlsx(path, [HEADER])
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("xl/extra.xml", "<a><b></a>")

    assert _rejected(open_workbook, path, Limits()) is E.BROKEN_FILE


# -- cells --------------------------------------------------------------------------------------


def test_given_formulas_when_reading_then_cached_values_never_evaluated(tmp_path: Path) -> None:
    path = tmp_path / "formulas.xlsx"
    write_xlsx(path, [HEADER, ["Иванов", "89161234567"]])
    with zipfile.ZipFile(path) as archive:
        parts = {n: archive.read(n) for n in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    formulas = (
        '<row r="3"><c r="A3"><f>CONCATENATE("Пет","ров")</f><v>Петров</v></c>'
        '<c r="B3"><f>WEBSERVICE("http://evil/")</f></c></row>'
    )
    sheet = sheet.replace("</sheetData>", formulas + "</sheetData>")
    sheet = sheet.replace('<c r="A3"><f>', '<c r="A3" t="str"><f>')
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)

    rows = _workbook_rows(path)

    assert rows[-1] == ("Петров", "")


def test_given_a_cell_over_excels_limit_when_reading_then_cell_too_large(tmp_path: Path) -> None:
    path = tmp_path / "huge.xlsx"
    write_xlsx(path, [HEADER, ["И" * 40_000, "89161234567"]])

    assert _rejected(_workbook_rows, path) is E.CELL_TOO_LARGE


def test_given_numbers_and_dates_when_reading_then_text_as_typed(tmp_path: Path) -> None:
    path = tmp_path / "types.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["ФИО", "Телефон", "ИНН", "Дата", "Доля"])
    sheet.append(["Иванов", 79161234567, 7707083893, dt.date(2026, 1, 5), 0.5])
    sheet.append(["Петров", 7.9161234567e10, None, True, None])
    book.save(path)

    rows = _workbook_rows(path)

    assert rows[1] == ("Иванов", "79161234567", "7707083893", "2026-01-05", "0.5")
    assert rows[2] == ("Петров", "79161234567", "", "TRUE", "")


def test_given_merged_cells_when_reading_then_every_cell_takes_the_top_left_value(
    tmp_path: Path,
) -> None:
    path = tmp_path / "merged.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Контрагент", "Контактное лицо", "Телефон"])
    sheet.append(["ООО «Ромашка»", "Иванов Иван", "89161234567"])
    sheet.append([None, "Петров Петр", "89031234567"])
    sheet.append([None, "Сидоров Олег", "89051234567"])
    sheet.append(["ИП Козлов", "Козлов", "89261234567"])
    sheet.merge_cells("A2:A4")
    book.save(path)

    rows = _workbook_rows(path)

    assert [r[0] for r in rows] == ["Контрагент", *["ООО «Ромашка»"] * 3, "ИП Козлов"]


def test_given_an_empty_workbook_when_inspecting_then_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    write_xlsx(path, [], extra_sheets=["Лист2"])

    assert _rejected(inspect_file, path, "empty.xlsx", Limits()) is E.EMPTY_FILE


def test_given_several_sheets_when_inspecting_then_first_non_empty_by_default(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sheets.xlsx"
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "Обложка"
    data = book.create_sheet("Клиенты")
    data.append(["ФИО", "Телефон"])
    data.append(["Иванов", "89161234567"])
    book.save(path)

    info = inspect_file(path, "sheets.xlsx", Limits())

    assert info.sheets == ("Обложка", "Клиенты")
    assert info.sheet == "Клиенты"
    assert info.headers == ["ФИО", "Телефон"]
    assert _rejected(inspect_file, path, "sheets.xlsx", Limits(), "Нет") is E.NO_SUCH_SHEET


def test_given_more_rows_than_allowed_when_reading_then_too_many_rows(tmp_path: Path) -> None:
    path = tmp_path / "rows.xlsx"
    write_xlsx(path, [HEADER] + [["Иванов", "89161234567"]] * 20)

    assert _rejected(_workbook_rows, path, Limits(max_rows=10)) is E.TOO_MANY_ROWS


# -- csv ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp1251", b""), ("utf-16", b"")],
)
def test_given_csv_in_each_encoding_when_reading_then_the_same_rows(
    tmp_path: Path, encoding: str, prefix: bytes
) -> None:
    path = tmp_path / "clients.csv"
    text = "ФИО;Телефон\r\nЁлкина Анна;8 (916) 123-45-67\r\n"
    path.write_bytes(prefix + text.encode(encoding))

    rows = [r.cells for r in csv_rows(path, Limits())]

    assert rows == [("ФИО", "Телефон"), ("Ёлкина Анна", "8 (916) 123-45-67")]


@pytest.mark.parametrize(
    ("sample", "delimiter"),
    [
        ("ФИО;Телефон;Город\nИванов;89161234567;Москва\n", ";"),
        ("ФИО,Телефон,Город\nИванов,89161234567,Москва\n", ","),
        ("ФИО\tТелефон\nИванов\t8 916 123-45-67\n", "\t"),
        ('ФИО;Телефон\n"Иванов, Иван";"8916, 8903"\n', ";"),
        ('ФИО,Телефон\n"Иванов; Иван",89161234567\n', ","),
    ],
)
def test_given_csv_samples_when_detecting_then_their_delimiter(sample: str, delimiter: str) -> None:
    assert detect_delimiter(sample + sample.splitlines()[1] + "\n") == delimiter


def test_given_excels_sep_line_when_reading_then_it_decides_and_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_text("sep=,\nФИО,Телефон\nИванов; Иван,89161234567\n", encoding="utf-8")

    rows = [r.cells for r in csv_rows(path, Limits())]

    assert rows == [("ФИО", "Телефон"), ("Иванов; Иван", "89161234567")]


def test_given_formula_text_in_csv_when_reading_then_it_stays_text(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_text('ФИО;Телефон\n"=HYPERLINK(""http://evil"";""x"")";+79161234567\n', "utf-8")

    rows = [r.cells for r in csv_rows(path, Limits())]

    assert rows[1] == ('=HYPERLINK("http://evil";"x")', "+79161234567")


def test_given_a_huge_csv_field_when_reading_then_cell_too_large(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_text("ФИО;Телефон\n" + '"' + "x" * 200_000 + '";1\n', encoding="utf-8")

    assert _rejected(csv_rows, path, Limits()) is E.CELL_TOO_LARGE


def test_given_bytes_invalid_in_cp1251_when_reading_then_encoding_error(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_bytes("ФИО;Телефон\n".encode("cp1251") + b"\x98\xff;1\n")

    assert _rejected(csv_rows, path, Limits()) is E.ENCODING


def test_given_ragged_csv_rows_when_preparing_then_short_padded_long_rejected(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clients.csv"
    path.write_text(
        "ФИО;Телефон;Должность\nИванов;89161234567\nПетров;89031234567;Инженер;лишнее\n",
        encoding="utf-8",
    )
    info = inspect_file(path, "clients.csv", Limits())

    prepared = prepare(path, "csv", (), None, info.mapping, "RU", "495", Limits())

    short, long_ = prepared.results
    assert not hasattr(short, "reason")
    assert getattr(long_, "reason", None) is not None
    assert long_.reason.value == "ragged_row"  # type: ignore[union-attr]
