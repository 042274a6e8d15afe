"""Column mapping: guessed from Russian, English and 1C headers; validated when given."""

from __future__ import annotations

import pytest

from callcenter.imports.mapping import (
    Field,
    MappingError,
    MappingErrorCode,
    column_samples,
    find_header,
    guess_field,
    guess_mapping,
    parse_cli_mapping,
    parse_mapping,
    unique_headers,
)
from callcenter.imports.reader import SourceRow

F = Field


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("ФИО", F.FULL_NAME),
        ("Ф.И.О.", F.FULL_NAME),
        ("Контактное лицо", F.FULL_NAME),
        ("Фамилия", F.LAST_NAME),
        ("Имя", F.FIRST_NAME),
        ("Отчество", F.MIDDLE_NAME),
        ("Должность", F.POSITION),
        ("Телефон", F.PHONE),
        ("Тел.", F.PHONE),
        ("Моб.", F.MOBILE),
        ("Мобильный телефон", F.MOBILE),
        ("Сотовый", F.MOBILE),
        ("Рабочий телефон", F.WORK_PHONE),
        ("E-mail", F.EMAIL),
        ("Эл. почта", F.EMAIL),
        ("Почта", F.EMAIL),
        ("Организация", F.ORG_NAME),
        ("Контрагент", F.ORG_NAME),
        ("Наименование", F.ORG_NAME),
        ("ИНН", F.INN),
        ("ИНН контрагента", F.INN),
        ("Телефон организации", F.ORG_PHONE),
        ("Телефон контрагента", F.ORG_PHONE),
        ("Комментарий", F.NOTES),
        ("Примечание", F.NOTES),
        ("Full name", F.FULL_NAME),
        ("First Name", F.FIRST_NAME),
        ("Last Name", F.LAST_NAME),
        ("Job Title", F.POSITION),
        ("Mobile Phone", F.MOBILE),
        ("Business Phone", F.WORK_PHONE),
        ("Email Address", F.EMAIL),
        ("Company", F.ORG_NAME),
        ("Account Name", F.ORG_NAME),
        ("Company Phone", F.ORG_PHONE),
        ("Notes", F.NOTES),
        # fuzzy rules
        ("Телефон (доп.)", F.PHONE),
        ("Е-mail контрагента", F.ORG_EMAIL),
        ("Моб. тел. руководителя", F.MOBILE),
        ("Наименование полное организации", F.ORG_NAME),
        ("ИНН/КПП", F.INN),
    ],
)
def test_given_a_header_when_guessing_then_the_field_it_means(header: str, field: Field) -> None:
    assert guess_field(header) is field


@pytest.mark.parametrize("header", ["", "Дата", "Сумма", "Код", "Город", "ID"])
def test_given_an_unrelated_header_when_guessing_then_no_field(header: str) -> None:
    assert guess_field(header) is None


def test_given_a_1c_counterparty_export_when_guessing_then_org_and_contact_columns() -> None:
    headers = [
        "Контрагент",
        "ИНН",
        "Телефон организации",
        "Контактное лицо",
        "Должность",
        "Телефон",
        "Доп. телефон",
        "E-mail",
        "Комментарий",
    ]

    mapping = guess_mapping(headers)

    assert mapping == {
        F.ORG_NAME: ["Контрагент"],
        F.INN: ["ИНН"],
        F.ORG_PHONE: ["Телефон организации"],
        F.FULL_NAME: ["Контактное лицо"],
        F.POSITION: ["Должность"],
        F.PHONE: ["Телефон", "Доп. телефон"],
        F.EMAIL: ["E-mail"],
        F.NOTES: ["Комментарий"],
    }


def test_given_split_name_columns_when_guessing_then_each_part_is_mapped() -> None:
    mapping = guess_mapping(["Фамилия", "Имя", "Отчество", "Моб. телефон", "Почта"])

    assert mapping == {
        F.LAST_NAME: ["Фамилия"],
        F.FIRST_NAME: ["Имя"],
        F.MIDDLE_NAME: ["Отчество"],
        F.MOBILE: ["Моб. телефон"],
        F.EMAIL: ["Почта"],
    }


def test_given_two_columns_for_a_single_field_when_guessing_then_the_first_wins() -> None:
    assert guess_mapping(["Должность", "Должность (2)"]) == {F.POSITION: ["Должность"]}


def test_given_blank_and_repeated_headers_when_naming_then_unique_names() -> None:
    assert unique_headers(["Телефон", "", "Телефон", " Имя  клиента "]) == [
        "Телефон",
        "#2",
        "Телефон (2)",
        "Имя клиента",
    ]


def test_given_title_lines_above_the_header_when_finding_it_then_they_are_skipped() -> None:
    rows = [
        SourceRow(1, ("Выгрузка контрагентов", "", "")),
        SourceRow(2, ("на 29.11.2026", "", "")),
        SourceRow(4, ("ФИО", "Телефон", "Город")),
        SourceRow(5, ("Иванов", "89161234567", "Москва")),
    ]

    index, seen = find_header(iter(rows))

    assert seen[index].line == 4


def test_given_no_known_header_when_finding_it_then_the_first_row() -> None:
    rows = [SourceRow(1, ("a", "b")), SourceRow(2, ("c", "d"))]

    index, _ = find_header(iter(rows))

    assert index == 0


def test_given_a_mapping_with_unknown_parts_when_parsing_then_clear_errors() -> None:
    headers = ["ФИО", "Телефон", "Телефон (2)"]

    with pytest.raises(MappingError, match="unknown field"):
        parse_mapping({"surname": "ФИО"}, headers)
    with pytest.raises(MappingError, match="no column named"):
        parse_mapping({"full_name": "Имя"}, headers)
    with pytest.raises(MappingError, match="takes one column"):
        parse_mapping({"full_name": ["ФИО", "Телефон"]}, headers)
    with pytest.raises(MappingError, match="name column"):
        parse_mapping({"phone": "Телефон"}, headers)


@pytest.mark.parametrize(
    ("raw", "code", "field", "column"),
    [
        ({"surname": "ФИО"}, MappingErrorCode.UNKNOWN_FIELD, "surname", ""),
        ({"full_name": "Имя"}, MappingErrorCode.NO_SUCH_COLUMN, "full_name", "Имя"),
        ({"full_name": ["ФИО", "Телефон"]}, MappingErrorCode.ONE_COLUMN_ONLY, "full_name", ""),
        ({"phone": "Телефон"}, MappingErrorCode.NO_NAME_COLUMN, "", ""),
    ],
)
def test_given_a_bad_mapping_when_parsing_then_a_typed_code_with_its_field_and_column(
    raw: dict[str, str | list[str]], code: MappingErrorCode, field: str, column: str
) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(raw, ["ФИО", "Телефон"])

    assert (caught.value.code, caught.value.field, caught.value.column) == (code, field, column)


def test_given_rows_when_sampling_then_first_three_non_empty_values_of_each_column() -> None:
    rows = [
        SourceRow(2, ("Иванов", "", "")),
        SourceRow(3, ("  Петров \n Пётр ", "8916", "")),
        SourceRow(4, ("Сидоров", "", "x")),
        SourceRow(5, ("Козлов", "8495")),
        SourceRow(6, ("Лишний", "8800", "", "за краем")),
    ]

    samples = column_samples(["ФИО", "Телефон", "Город"], rows)

    assert samples == {
        "ФИО": ["Иванов", "Петров Пётр", "Сидоров"],
        "Телефон": ["8916", "8495", "8800"],
        "Город": ["x"],
    }


def test_given_a_valid_mapping_when_parsing_then_fields_and_columns() -> None:
    headers = ["ФИО", "Телефон", "Телефон (2)"]

    mapping = parse_mapping({"full_name": "ФИО", "phone": ["Телефон", "Телефон (2)"]}, headers)

    assert mapping == {F.FULL_NAME: ["ФИО"], F.PHONE: ["Телефон", "Телефон (2)"]}


def test_given_a_command_line_mapping_when_parsing_then_repeated_fields_collect() -> None:
    parsed = parse_cli_mapping("full_name=ФИО, phone=Телефон,phone=Доп. телефон")

    assert parsed == {"full_name": ["ФИО"], "phone": ["Телефон", "Доп. телефон"]}
    with pytest.raises(MappingError) as caught:
        parse_cli_mapping("full_name")
    assert caught.value.code is MappingErrorCode.BAD_SYNTAX
