"""One source row → the person and organisation it describes, normalised, or why not.

Pure. Phones go through :class:`callcenter.phones.PhoneIdentity` with the import's own
region and area code. A cell may hold several numbers (1C writes ``8495..., 8916...``):
the whole cell is tried first (so ``84951234567,123`` stays a number with an extension), and
only a cell that phones.py calls "more than one number" is split at ``,`` ``;`` ``/`` ``|``
and line breaks. Any number that cannot be read rejects the row (it is listed in the
rejected-rows file with the reason), so nothing is silently dropped.

A row with organisation columns and person details but no person name describes the
organisation: its "person" phones and e-mail are the organisation's (1C counterparty lists).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from callcenter.clients.merge import organization_name_key
from callcenter.clients.models import PhoneKind
from callcenter.imports.mapping import ColumnMapping, Field
from callcenter.phones import PhoneIdentity, PhoneRejected, PhoneRejectReason


class RejectReason(StrEnum):
    RAGGED_ROW = "ragged_row"
    """More non-empty cells than the header has columns."""
    MISSING_NAME = "missing_name"
    PHONE_INVALID = "phone_invalid"
    EMAIL_INVALID = "email_invalid"
    INN_INVALID = "inn_invalid"
    VALUE_TOO_LONG = "value_too_long"
    PHONE_CONFLICT = "phone_conflict"
    """The number belongs to another card (in the base or earlier in the file) that is not
    this person: a different name, or an organisation other than the row's."""
    EMAIL_CONFLICT = "email_conflict"
    AMBIGUOUS_MATCH = "ambiguous_match"
    """The row's numbers and e-mail point at two or more different cards."""


@dataclass(frozen=True, slots=True)
class PhoneValue:
    raw: str
    e164: str
    extension: str
    kind: PhoneKind

    @property
    def key(self) -> tuple[str, str]:
        return (self.e164, self.extension)


@dataclass(frozen=True, slots=True)
class PersonValues:
    name: str
    position: str
    email: str | None
    emails: tuple[str, ...]
    """Every address in the e-mail cell, lower-cased: each identifies the person."""
    phones: tuple[PhoneValue, ...]
    notes: str


@dataclass(frozen=True, slots=True)
class OrgValues:
    name: str
    name_key: str
    inn: str | None
    email: str | None
    phones: tuple[PhoneValue, ...]
    notes: str


@dataclass(frozen=True, slots=True)
class NormalRow:
    line: int
    person: PersonValues | None
    org: OrgValues | None


@dataclass(frozen=True, slots=True)
class RowRejected:
    line: int
    reason: RejectReason
    message: str


RowResult = NormalRow | RowRejected

_MAX_NAME: Final = 255
_MAX_POSITION: Final = 128
_MAX_EMAIL: Final = 255
_MAX_NOTES: Final = 10_000
_MAX_RAW_PHONE: Final = 64

_EMAIL_RE: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_EMAIL_SPLIT_RE: Final = re.compile(r"[;,\s]+")
_PHONE_SPLIT_RE: Final = re.compile(r"[,;/|]")
_INN_10_WEIGHTS: Final = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN_11_WEIGHTS: Final = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN_12_WEIGHTS: Final = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_KINDS: Final = {
    Field.PHONE: PhoneKind.OTHER,
    Field.MOBILE: PhoneKind.MOBILE,
    Field.WORK_PHONE: PhoneKind.WORK,
    Field.ORG_PHONE: PhoneKind.WORK,
}


def _check_digit(digits: str, weights: Sequence[int]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_valid(inn: str) -> bool:
    """The check digits of a 10-digit (organisation) or 12-digit (person) INN."""
    if not inn.isascii() or not inn.isdigit():
        return False
    if len(inn) == 10:
        return _check_digit(inn, _INN_10_WEIGHTS) == int(inn[9])
    if len(inn) == 12:
        return _check_digit(inn, _INN_11_WEIGHTS) == int(inn[10]) and _check_digit(
            inn, _INN_12_WEIGHTS
        ) == int(inn[11])
    return False


def normalize_inn(text: str) -> str | None:
    """Digits of an INN; a spreadsheet that read it as a number (``7707083893.0``, or with its
    leading zero lost) is repaired when the check digits then agree. None if invalid."""
    digits = "".join(text.split())
    if digits.endswith(".0"):
        digits = digits[:-2]
    if inn_valid(digits):
        return digits
    if len(digits) in (9, 11) and inn_valid("0" + digits):
        return "0" + digits
    return None


class Layout:
    """Where each mapped field's cells are in a row of this file."""

    def __init__(self, headers: Sequence[str], mapping: ColumnMapping) -> None:
        position = {h: i for i, h in enumerate(headers)}
        self.width = len(headers)
        self.columns: list[tuple[Field, tuple[int, ...]]] = [
            (f, tuple(position[c] for c in cols)) for f, cols in mapping.items()
        ]

    def extract(self, cells: Sequence[str]) -> dict[Field, list[str]]:
        """The non-empty, stripped cells of each mapped field."""
        count = len(cells)
        out: dict[Field, list[str]] = {}
        for target, indexes in self.columns:
            for i in indexes:
                if i < count and (value := cells[i].strip()):
                    out.setdefault(target, []).append(value)
        return out


class _Reject(Exception):
    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _phones_in_cell(phones: PhoneIdentity, cell: str, kind: PhoneKind) -> list[PhoneValue]:
    found: list[PhoneValue] = []
    for piece in cell.splitlines():
        piece = piece.strip()
        if not piece:
            continue
        result = phones.normalize(piece)
        if isinstance(result, PhoneRejected):
            if result.reason is not PhoneRejectReason.MULTIPLE_NUMBERS:
                raise _Reject(RejectReason.PHONE_INVALID, f"{piece!r}: {result.detail}")
            parts = [p.strip() for p in _PHONE_SPLIT_RE.split(piece) if p.strip()]
            results = [(p, phones.normalize(p)) for p in parts]
            bad = next((p for p, r in results if isinstance(r, PhoneRejected)), None)
            if bad is not None or len(parts) < 2:
                raise _Reject(RejectReason.PHONE_INVALID, f"{piece!r}: {result.detail}")
            for part, number in results:
                assert not isinstance(number, PhoneRejected)
                found.append(
                    PhoneValue(part[:_MAX_RAW_PHONE], number.e164, number.extension or "", kind)
                )
            continue
        found.append(PhoneValue(piece[:_MAX_RAW_PHONE], result.e164, result.extension or "", kind))
    return found


def _phones(
    got: dict[Field, list[str]], phones: PhoneIdentity, fields: Sequence[Field]
) -> list[PhoneValue]:
    out: list[PhoneValue] = []
    seen: set[tuple[str, str]] = set()
    for target in fields:
        for cell in got.get(target, ()):
            for value in _phones_in_cell(phones, cell, _KINDS[target]):
                if value.key not in seen:
                    seen.add(value.key)
                    out.append(value)
    return out


def _emails(text: str) -> tuple[str, ...]:
    if not text:
        return ()
    found = []
    for part in _EMAIL_SPLIT_RE.split(text):
        part = part.strip().strip("<>\"'")
        if not part:
            continue
        if len(part) > _MAX_EMAIL or not _EMAIL_RE.fullmatch(part):
            raise _Reject(RejectReason.EMAIL_INVALID, f"{part!r} is not an e-mail address")
        found.append(part)
    return tuple(found)


def _limit(value: str, limit: int, what: str) -> str:
    if len(value) > limit:
        raise _Reject(RejectReason.VALUE_TOO_LONG, f"{what}: {len(value)} characters, max {limit}")
    return value


def _text(got: dict[Field, list[str]], target: Field) -> str:
    values = got.get(target)
    return " ".join(values) if values else ""


def _person_name(got: dict[Field, list[str]]) -> str:
    full = _text(got, Field.FULL_NAME)
    if not full:
        full = " ".join(
            _text(got, f) for f in (Field.LAST_NAME, Field.FIRST_NAME, Field.MIDDLE_NAME)
        )
    return " ".join(full.split())


_PERSON_PHONE_FIELDS: Final = (Field.PHONE, Field.MOBILE, Field.WORK_PHONE)


def normalize_row(
    line: int,
    cells: Sequence[str],
    layout: Layout,
    phones: PhoneIdentity,
) -> RowResult:
    """`cells` of one source row under `layout` → what the row says, or why it is rejected."""
    try:
        if len(cells) > layout.width and any(c.strip() for c in cells[layout.width :]):
            raise _Reject(
                RejectReason.RAGGED_ROW,
                f"{len(cells)} cells, the header has {layout.width} columns",
            )
        got = layout.extract(cells)
        name = _limit(_person_name(got), _MAX_NAME, "name")
        position = _limit(_text(got, Field.POSITION), _MAX_POSITION, "position")
        notes = _limit("\n".join(got.get(Field.NOTES, ())), _MAX_NOTES, "notes")
        emails = _emails(_text(got, Field.EMAIL))
        person_phones = _phones(got, phones, _PERSON_PHONE_FIELDS)

        org_name = _limit(" ".join(_text(got, Field.ORG_NAME).split()), _MAX_NAME, "org")
        inn_text = _text(got, Field.INN)
        inn = normalize_inn(inn_text) if inn_text else None
        if inn_text and inn is None:
            raise _Reject(RejectReason.INN_INVALID, f"{inn_text!r} is not a valid INN")
        org_emails = _emails(_text(got, Field.ORG_EMAIL))
        org_phones = _phones(got, phones, (Field.ORG_PHONE,))

        org: OrgValues | None = None
        if org_name or inn:
            if not name:
                # No person on this row: what it says about contacts is the organisation's.
                org_phones += [p for p in person_phones if p not in org_phones]
                org_emails = org_emails or emails
                person_phones, emails = [], ()
            org_keys = {p.key for p in org_phones}
            person_phones = [p for p in person_phones if p.key not in org_keys]
            org = OrgValues(
                name=org_name,
                name_key=organization_name_key(org_name) if org_name else "",
                inn=inn,
                email=org_emails[0] if org_emails else None,
                phones=tuple(org_phones),
                notes="" if name else notes,
            )
        elif org_phones or org_emails:
            raise _Reject(RejectReason.MISSING_NAME, "organisation details without its name")

        person: PersonValues | None = None
        if name:
            person = PersonValues(
                name=name,
                position=position,
                email=emails[0] if emails else None,
                emails=tuple(e.lower() for e in emails),
                phones=tuple(person_phones),
                notes=notes,
            )
        elif org is None:
            raise _Reject(RejectReason.MISSING_NAME, "no name of a person or an organisation")
        return NormalRow(line, person, org)
    except _Reject as rejected:
        return RowRejected(line, rejected.reason, rejected.message)
