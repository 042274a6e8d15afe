"""Which column holds what: fields of a card, guessed from Russian and English headers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Final

from callcenter.imports.reader import SourceRow


class Field(StrEnum):
    # the person (contact)
    FULL_NAME = "full_name"
    LAST_NAME = "last_name"
    FIRST_NAME = "first_name"
    MIDDLE_NAME = "middle_name"
    POSITION = "position"
    EMAIL = "email"
    PHONE = "phone"
    MOBILE = "mobile"
    WORK_PHONE = "work_phone"
    NOTES = "notes"
    # the organisation
    ORG_NAME = "org_name"
    INN = "inn"
    ORG_PHONE = "org_phone"
    ORG_EMAIL = "org_email"


MULTI_COLUMN_FIELDS: Final = frozenset(
    {Field.PHONE, Field.MOBILE, Field.WORK_PHONE, Field.ORG_PHONE, Field.NOTES}
)
"""Fields that may take several columns (``Телефон``, ``Доп. телефон``, ...)."""

ColumnMapping = dict[Field, list[str]]
"""Field → the (unique) header names of the columns it takes, in order."""


def header_key(header: str) -> str:
    """Lower case, ё → е, punctuation as spaces: ``E-mail:`` → ``e mail``."""
    text = header.casefold().replace("ё", "е")
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


_SYNONYMS: Final[dict[Field, tuple[str, ...]]] = {
    Field.FULL_NAME: (
        "фио",
        "ф и о",
        "фамилия имя отчество",
        "контактное лицо",
        "контакт",
        "имя контакта",
        "фио контактного лица",
        "представитель",
        "full name",
        "fullname",
        "name",
        "contact",
        "contact name",
        "contact person",
        "person",
    ),
    Field.LAST_NAME: ("фамилия", "last name", "lastname", "surname", "family name"),
    Field.FIRST_NAME: ("имя", "first name", "firstname", "given name"),
    Field.MIDDLE_NAME: ("отчество", "middle name", "middlename", "patronymic"),
    Field.POSITION: ("должность", "должность контактного лица", "position", "job title", "title"),
    Field.EMAIL: (
        "email",
        "e mail",
        "почта",
        "эл почта",
        "электронная почта",
        "адрес электронной почты",
        "email контактного лица",
        "e mail контактного лица",
        "mail",
        "email address",
        "e mail address",
    ),
    Field.PHONE: (
        "телефон",
        "телефоны",
        "тел",
        "номер телефона",
        "контактный телефон",
        "телефон контактного лица",
        "доп телефон",
        "дополнительный телефон",
        "phone",
        "phones",
        "phone number",
        "tel",
        "telephone",
        "other phone",
    ),
    Field.MOBILE: (
        "мобильный",
        "моб",
        "моб тел",
        "мобильный телефон",
        "сотовый",
        "сотовый телефон",
        "mobile",
        "mobile phone",
        "cell",
        "cell phone",
    ),
    Field.WORK_PHONE: (
        "рабочий телефон",
        "раб тел",
        "work phone",
        "office phone",
        "business phone",
    ),
    Field.NOTES: (
        "комментарий",
        "комментарии",
        "примечание",
        "примечания",
        "заметки",
        "описание",
        "comment",
        "comments",
        "notes",
        "note",
        "description",
    ),
    Field.ORG_NAME: (
        "организация",
        "контрагент",
        "наименование",
        "наименование организации",
        "название организации",
        "наименование контрагента",
        "компания",
        "название компании",
        "юр лицо",
        "юридическое лицо",
        "клиент",
        "company",
        "company name",
        "organization",
        "organisation",
        "organization name",
        "account",
        "account name",
    ),
    Field.INN: ("инн", "инн организации", "инн контрагента", "inn", "tax id", "taxpayer id"),
    Field.ORG_PHONE: (
        "телефон организации",
        "телефон компании",
        "телефон контрагента",
        "основной телефон",
        "company phone",
        "organization phone",
        "organisation phone",
        "main phone",
    ),
    Field.ORG_EMAIL: (
        "email организации",
        "e mail организации",
        "почта организации",
        "email компании",
        "e mail компании",
        "company email",
        "organization email",
    ),
}

_EXACT: Final = {key: f for f, keys in _SYNONYMS.items() for key in keys}
_ORG_WORDS: Final = ("организац", "компани", "контрагент", "фирм", "company", "organi", "account")


def guess_field(header: str) -> Field | None:
    """The field a header most likely means, or None."""
    key = header_key(header)
    if not key:
        return None
    if key in _EXACT:
        return _EXACT[key]
    about_org = any(w in key for w in _ORG_WORDS)
    words = key.split()
    if "инн" in words or "inn" in words:
        return Field.INN
    if any(w in key for w in ("почт", "mail")):  # also "Е-mail" typed with a Cyrillic Е
        return Field.ORG_EMAIL if about_org else Field.EMAIL
    if any(w in key for w in ("моб", "сотов", "mobile", "cell")):
        return Field.MOBILE
    if any(w in key for w in ("телеф", "phone")) or "тел" in words:
        return Field.ORG_PHONE if about_org else Field.PHONE
    if any(w in key for w in ("фио", "full name")):
        return Field.FULL_NAME
    if any(w in key for w in ("должн", "position")):
        return Field.POSITION
    if any(w in key for w in ("коммент", "примеч", "comment", "note")):
        return Field.NOTES
    if about_org and any(w in key for w in ("наимен", "назв", "name")):
        return Field.ORG_NAME
    return None


def guess_mapping(headers: Sequence[str]) -> ColumnMapping:
    """A mapping guessed from the headers; each single-column field takes its first column."""
    mapping: ColumnMapping = {}
    for header in headers:
        found = guess_field(header)
        if found is None:
            continue
        if found in mapping and found not in MULTI_COLUMN_FIELDS:
            continue
        mapping.setdefault(found, []).append(header)
    # A lone "Имя" beside "ФИО" is not a first name of a split name: keep the full name.
    if Field.FULL_NAME in mapping and Field.LAST_NAME not in mapping:
        mapping.pop(Field.FIRST_NAME, None)
    return mapping


def unique_headers(cells: Sequence[str]) -> list[str]:
    """Headers as the mapping refers to them: blanks named by position, repeats numbered."""
    seen: dict[str, int] = {}
    out = []
    for index, cell in enumerate(cells, start=1):
        name = " ".join(cell.split()) or f"#{index}"
        count = seen.get(name, 0) + 1
        seen[name] = count
        out.append(name if count == 1 else f"{name} ({count})")
    return out


_HEADER_SCAN_ROWS: Final = 20


def find_header(rows: Iterable[SourceRow]) -> tuple[int, list[SourceRow]]:
    """Index of the header among the first rows (title lines of 1C exports are skipped),
    and the rows looked at.

    The header is the first row in which at least two cells are known headers; failing
    that, the first row.
    """
    seen: list[SourceRow] = []
    for row in rows:
        seen.append(row)
        known = sum(1 for cell in row.cells if guess_field(cell) is not None)
        if known >= 2:
            return len(seen) - 1, seen
        if len(seen) >= _HEADER_SCAN_ROWS:
            break
    return 0, seen


_SAMPLE_SCAN_ROWS: Final = 1000
_SAMPLE_CHARS: Final = 100


def column_samples(
    headers: Sequence[str], rows: Iterable[SourceRow], per_column: int = 3
) -> dict[str, list[str]]:
    """The first `per_column` non-empty values of each column (header → values), from at
    most the first 1,000 data rows: what the person mapping the columns looks at."""
    samples: dict[str, list[str]] = {h: [] for h in headers}
    wanting = len(headers)
    for scanned, row in enumerate(rows):
        if scanned >= _SAMPLE_SCAN_ROWS or not wanting:
            break
        for header, cell in zip(headers, row.cells, strict=False):
            values = samples[header]
            if len(values) < per_column and (value := " ".join(cell.split())[:_SAMPLE_CHARS]):
                values.append(value)
                wanting -= len(values) == per_column
    return samples


class MappingErrorCode(StrEnum):
    """Why a mapping is refused (the API sends it as ``reason`` beside ``bad_mapping``)."""

    UNKNOWN_FIELD = "unknown_field"
    NO_SUCH_COLUMN = "no_such_column"
    ONE_COLUMN_ONLY = "one_column_only"
    NO_NAME_COLUMN = "no_name_column"
    BAD_SYNTAX = "bad_syntax"


class MappingError(ValueError):
    """The mapping names unknown fields or columns, or nothing to import."""

    def __init__(
        self, code: MappingErrorCode, message: str, *, field: str = "", column: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        """The field the error is about, if any (as given)."""
        self.column = column
        """The column the error is about, if any (as given)."""


def parse_mapping(
    raw: Mapping[str, str | Sequence[str]], headers: Sequence[str] | None
) -> ColumnMapping:
    """Validate a mapping given by a person (API, CLI, template) against the file's headers
    (None: a template, checked against a file when it is used)."""
    mapping: ColumnMapping = {}
    for name, columns in raw.items():
        try:
            target = Field(name)
        except ValueError:
            raise MappingError(
                MappingErrorCode.UNKNOWN_FIELD, f"unknown field {name!r}", field=name
            ) from None
        listed = [columns] if isinstance(columns, str) else list(columns)
        listed = [c for c in listed if c]
        if not listed:
            continue
        missing = [c for c in listed if headers is not None and c not in headers]
        if missing:
            raise MappingError(
                MappingErrorCode.NO_SUCH_COLUMN,
                f"no column named {missing[0]!r}",
                field=name,
                column=missing[0],
            )
        if len(listed) > 1 and target not in MULTI_COLUMN_FIELDS:
            raise MappingError(
                MappingErrorCode.ONE_COLUMN_ONLY, f"{name} takes one column", field=name
            )
        mapping[target] = listed
    person_name = {Field.FULL_NAME, Field.LAST_NAME, Field.FIRST_NAME} & mapping.keys()
    if not person_name and Field.ORG_NAME not in mapping and Field.INN not in mapping:
        raise MappingError(
            MappingErrorCode.NO_NAME_COLUMN, "map a name column (a person's or an organisation's)"
        )
    return mapping


def mapping_to_json(mapping: ColumnMapping) -> dict[str, list[str]]:
    return {f.value: list(cols) for f, cols in mapping.items()}


def parse_cli_mapping(text: str) -> dict[str, list[str]]:
    """``full_name=ФИО,phone=Телефон,phone=Доп. телефон`` → {"full_name": ["ФИО"], ...}."""
    out: dict[str, list[str]] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, column = part.partition("=")
        if not sep:
            raise MappingError(MappingErrorCode.BAD_SYNTAX, f"expected field=column, got {part!r}")
        out.setdefault(name.strip(), []).append(column.strip())
    return out
