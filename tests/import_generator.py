"""A realistic client-base export to import, with its ground truth (tests and bench/import.py).

`generate(rows, seed)` builds a 1C-style sheet (a title line, then organisation and contact
columns) whose rows fall into kinds with a known outcome: new people and organisations with
several contact persons, the same person again in another phone format or by e-mail (merge),
people already in the base (update, unchanged, merge), and broken rows (reject, with the
reason). Phones come in every format of the phones.py table (tests/unit/test_phones.py),
plus generated numbers written in all those shapes, including numeric Excel cells.

The expected counts are tallied while the rows are built, never computed by the importer.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.clients.models import Client, Organization, Phone, PhoneKind
from callcenter.imports.repository import insert_with_ids
from callcenter.phones import PhoneIdentity, PhoneNumber, PhoneRejectReason
from tests.unit.test_phones import REAL_WORLD

HEADERS = [
    "Контрагент",
    "ИНН",
    "Телефон организации",
    "Контактное лицо",
    "Должность",
    "Телефон",
    "E-mail",
    "Комментарий",
]
NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
TITLE = "Выгрузка контрагентов и контактных лиц на 29.11.2026"

NBSP = "\u00a0"
EN_DASH = "\u2013"
FULLWIDTH = str.maketrans("0123456789+()-", "０１２３４５６７８９＋（）－")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

SURNAMES = [
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
    "Новиков", "Федоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семенов", "Егоров",
    "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
    "Захаров", "Зайцев", "Соловьев", "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьев",
]  # fmt: skip
FIRST_NAMES = [
    "Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Максим", "Евгений", "Иван",
    "Михаил", "Артем", "Никита", "Олег", "Павел", "Роман", "Виктор", "Игорь", "Юрий",
]  # fmt: skip
PATRONYMICS = [
    "Александрович", "Сергеевич", "Дмитриевич", "Андреевич", "Алексеевич", "Иванович",
    "Михайлович", "Петрович", "Николаевич", "Викторович",
]  # fmt: skip
POSITIONS = ["Директор", "Бухгалтер", "Менеджер", "Инженер", "Снабженец", "Юрист", "Логист"]
ORG_WORDS = [
    "Ромашка", "Вектор", "Альфа", "Строймонтаж", "Техноком", "Северный ветер", "Гарант",
    "Меридиан", "Прогресс", "Стандарт", "Импульс", "Кристалл", "Лидер", "Ресурс", "Орион",
]  # fmt: skip
LEGAL_FORMS = ["ООО", "АО", "ПАО", "ЗАО", "ИП"]

Cell = str | int | float


def _mobile_shapes(n: str) -> list[Callable[[], Cell]]:
    """Every shape phones.py accepts, for a 10-digit Russian mobile national number `n`."""
    a, b, c, d = n[:3], n[3:6], n[6:8], n[8:]
    return [
        lambda: f"+7 {a} {b}-{c}-{d}",
        lambda: f"+7{n}",
        lambda: f"7{n}",
        lambda: f"8{n}",
        lambda: n,
        lambda: f"8 ({a}) {b}-{c}-{d}",
        lambda: f"+7({a}){b}{c}{d}",
        lambda: f"8-{a}-{b}-{c}-{d}",
        lambda: f"(+7) {a} {b}-{c}-{d}",
        lambda: f"8.{a}.{b}.{c}.{d}",
        lambda: f"+7 8 {a} {b} {c} {d}",
        lambda: f"'+7{n}",
        lambda: f" \t+7 {a} {b} {c} {d}\n",
        lambda: f"тел.: 8 {a} {b}-{c}-{d}",
        lambda: f"Моб. +7 {a} {b} {c} {d}",
        lambda: f"tel:+7{n}",
        lambda: f"sip:+7{n}@10.0.0.1;user=phone",
        lambda: f"7{n}.0",
        lambda: f"7.{n}E+10",
        lambda: f"7,{n}E+10",
        lambda: f"8{n}".translate(FULLWIDTH),
        lambda: f"+7({a}){b}-{c}-{d}".translate(FULLWIDTH),
        lambda: f"8{n}".translate(ARABIC_INDIC),
        lambda: f"8\u200b{a}\u200b{b}{c}{d}",
        lambda: f"8{NBSP}{a}{NBSP}{b}{EN_DASH}{c}{EN_DASH}{d}",
        lambda: f"00 7 {a} {b} {c} {d}",
        lambda: int(f"7{n}"),
        lambda: float(f"7{n}"),
    ]


def _moscow_shapes(local: str) -> list[Callable[[], Cell]]:
    """Shapes of a Moscow number +7 495 `local` (7 digits), including the bare local one."""
    b, c, d = local[:3], local[3:5], local[5:]
    return [
        lambda: f"8 (495) {b}-{c}-{d}",
        lambda: f"+7 (495) {b}-{c}-{d}",
        lambda: f"495{local}",
        lambda: f"{b}-{c}-{d}",
        lambda: local,
        lambda: f"tel:+7-495-{b}-{c}-{d}",
        lambda: f"8495{local}",
        lambda: int(f"8495{local}"),
    ]


def _table_groups(phones: PhoneIdentity) -> dict[str, list[str]]:
    """The accepted inputs of the phones.py table without an extension, by expected E.164."""
    groups: dict[str, list[str]] = {}
    for raw, expected in REAL_WORLD:
        if isinstance(expected, PhoneRejectReason):
            continue
        result = phones.normalize(raw)
        if isinstance(result, PhoneNumber) and result.extension is None:
            groups.setdefault(expected, []).append(raw)
    return groups


def _table_rejects() -> list[tuple[str, PhoneRejectReason]]:
    """Inputs of the table that no reading turns into numbers (splitting included)."""
    skip = {PhoneRejectReason.EMPTY, PhoneRejectReason.MULTIPLE_NUMBERS}
    return [
        (raw, reason)
        for raw, reason in REAL_WORLD
        if isinstance(reason, PhoneRejectReason) and reason not in skip
    ]


@dataclass(frozen=True, slots=True)
class BasePerson:
    name: str
    position: str
    email: str | None
    phone_raw: str
    e164: str
    org: int | None
    """Index into `Generated.base_orgs`."""


@dataclass(frozen=True, slots=True)
class BaseOrg:
    name: str
    inn: str
    phone_raw: str
    e164: str


@dataclass(slots=True)
class Generated:
    rows: list[list[Cell]]
    """The sheet, title line and header included."""
    base_orgs: list[BaseOrg]
    base_people: list[BasePerson]
    expected: Counter[str] = field(default_factory=Counter)
    """Decisions (create, update, unchanged, merge, reject), reasons (reject:<reason>),
    organizations_created, clients_created, clients_updated."""

    @property
    def data_rows(self) -> int:
        return sum(1 for r in self.rows[2:] if any(str(c).strip() for c in r))


def _inn10(rnd: random.Random, used: set[str]) -> str:
    weights = (2, 4, 10, 3, 5, 9, 4, 6, 8)
    while True:
        digits = f"{rnd.randrange(1, 10)}{rnd.randrange(10**8):08d}"
        check = sum(int(x) * w for x, w in zip(digits, weights, strict=True)) % 11 % 10
        inn = digits + str(check)
        if inn not in used:
            used.add(inn)
            return inn


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.phones = PhoneIdentity("RU", "495")
        self.groups = _table_groups(self.phones)
        self.used_e164: set[str] = set(self.groups)
        self.used_inn: set[str] = set()
        self.used_names: set[str] = set()
        self.org_count = 0
        self.email_count = 0
        self.rows: list[list[Cell]] = []
        self.expected: Counter[str] = Counter()
        self.base_orgs: list[BaseOrg] = []
        self.base_people: list[BasePerson] = []
        self.base_shapes: dict[str, list[Callable[[], Cell]]] = {}
        self.table_rejects = _table_rejects()

    # -- values ---------------------------------------------------------------------------

    def mobile(self) -> tuple[str, list[Callable[[], Cell]]]:
        while True:
            national = f"9{self.rnd.randrange(10**9):09d}"
            e164 = "+7" + national
            if e164 not in self.used_e164:
                self.used_e164.add(e164)
                return e164, _mobile_shapes(national)

    def moscow(self) -> tuple[str, list[Callable[[], Cell]]]:
        while True:
            local = f"{self.rnd.randrange(1, 10)}{self.rnd.randrange(10**6):06d}"
            e164 = "+7495" + local
            if e164 in self.used_e164 or self.phones.e164(e164) != e164:
                continue
            self.used_e164.add(e164)
            return e164, _moscow_shapes(local)

    def shape(self, shapes: Sequence[Callable[[], Cell]]) -> Cell:
        return self.rnd.choice(shapes)()

    def person_name(self) -> str:
        """A full name no other generated person has (so only designed rows collide)."""
        while True:
            name = " ".join(
                (
                    self.rnd.choice(SURNAMES) + str(self.rnd.randrange(10_000)),
                    self.rnd.choice(FIRST_NAMES),
                    self.rnd.choice(PATRONYMICS),
                )
            )
            if name not in self.used_names:
                self.used_names.add(name)
                return name

    def email(self) -> str:
        self.email_count += 1
        return f"contact{self.email_count}@example{self.email_count % 97}.ru"

    def org_name(self) -> str:
        self.org_count += 1
        word = self.rnd.choice(ORG_WORDS)
        return f"{self.rnd.choice(LEGAL_FORMS)} «{word} {self.org_count}»"

    def row(
        self,
        *,
        org: str = "",
        inn: Cell = "",
        org_phone: Cell = "",
        name: str = "",
        position: str = "",
        phone: Cell = "",
        email: str = "",
        notes: str = "",
    ) -> None:
        self.rows.append([org, inn, org_phone, name, position, phone, email, notes])

    def expect(self, decision: str, reason: str | None = None) -> None:
        self.expected[decision] += 1
        if reason is not None:
            self.expected[f"reject:{reason}"] += 1

    # -- kinds of rows ---------------------------------------------------------------------

    def new_person(self, dups: int = 0, by_email: bool = False) -> None:
        """A new person, then `dups` rows of the same person in other phone shapes."""
        _, shapes = self.mobile() if self.rnd.random() < 0.8 else self.moscow()
        name = self.person_name()
        email = self.email() if by_email or self.rnd.random() < 0.3 else ""
        self.row(
            name=name, position=self.rnd.choice(POSITIONS), phone=self.shape(shapes), email=email
        )
        self.expect("create")
        self.expected["clients_created"] += 1
        surname, first, middle = name.split()
        for i in range(dups):
            variant = name if i % 2 else f"{surname} {first[0]}. {middle[0]}."
            self.row(name=variant, phone=self.shape(shapes))
            self.expect("merge")
        if by_email:
            _, other_shapes = self.mobile()
            self.row(name=name, phone=self.shape(other_shapes), email=email.upper())
            self.expect("merge")

    def multi_phone_person(self) -> None:
        (_, first), (_, second) = self.mobile(), self.mobile()
        cell = f"{first[self.rnd.randrange(8)]()}, {second[self.rnd.randrange(8)]()}"
        self.row(name=self.person_name(), phone=cell)
        self.expect("create")
        self.expected["clients_created"] += 1

    def organization(self, persons: int) -> None:
        """A new organisation with several contact persons, one row each."""
        name = self.org_name()
        inn = _inn10(self.rnd, self.used_inn)
        inn_cell: Cell = int(inn) if self.rnd.random() < 0.3 else inn
        _, org_shapes = self.moscow()
        org_phone = self.shape(org_shapes)
        self.expected["organizations_created"] += 1
        for i in range(persons):
            _, shapes = self.mobile()
            self.row(
                # 1C writes the organisation on every row, sometimes without its legal form
                org=name if i == 0 or self.rnd.random() < 0.7 else name.split(" ", 1)[1],
                inn=inn_cell,
                org_phone=org_phone,
                name=self.person_name(),
                position=self.rnd.choice(POSITIONS),
                phone=self.shape(shapes),
            )
            self.expect("create")
            self.expected["clients_created"] += 1

    def organization_only(self) -> None:
        """A counterparty without contact persons: its phone sits in the person phone column."""
        _, shapes = self.moscow()
        self.row(org=self.org_name(), inn=_inn10(self.rnd, self.used_inn), phone=self.shape(shapes))
        self.expect("create")
        self.expected["organizations_created"] += 1

    def table_group(self, e164: str, raws: list[str]) -> None:
        """One person written with every accepted shape of the phones.py table for `e164`."""
        name = self.person_name()
        for i, raw in enumerate(raws):
            self.row(name=name, phone=raw)
            self.expect("create" if i == 0 else "merge")
        self.expected["clients_created"] += 1

    def base_person(self, *, org: int | None = None) -> BasePerson:
        e164, shapes = self.mobile()
        person = BasePerson(
            name=self.person_name(),
            position=self.rnd.choice(POSITIONS),
            email=self.email() if self.rnd.random() < 0.5 else None,
            phone_raw=str(shapes[0]()),
            e164=e164,
            org=org,
        )
        self.base_people.append(person)
        self.base_shapes[e164] = shapes
        return person

    def base_update(self, twice: bool) -> None:
        """A person of the base: a new position and a second number (update), maybe again."""
        person = self.base_person()
        new_position = next(p for p in POSITIONS if p != person.position)
        _, extra = self.mobile()
        # two numbers in one cell, as 1C writes them (plain shapes: no "," or ";" inside)
        phone_cell = f"{self.shape(self.base_shapes[person.e164][:10])}; {extra[1]()}"
        self.row(name=person.name, position=new_position, phone=phone_cell)
        self.expect("update")
        self.expected["clients_updated"] += 1
        if twice:
            self.row(name=person.name, phone=self.shape(self.base_shapes[person.e164]))
            self.expect("merge")

    def base_unchanged(self) -> None:
        person = self.base_person()
        self.row(
            name=person.name,
            position=person.position,
            phone=self.shape(self.base_shapes[person.e164]),
            email=person.email or "",
        )
        self.expect("unchanged")

    def base_org_new_person(self) -> None:
        """A new contact person of an organisation already in the base (found by INN)."""
        if not self.base_orgs or self.rnd.random() < 0.2:
            e164, shapes = self.moscow()
            inn = _inn10(self.rnd, self.used_inn)
            self.base_orgs.append(BaseOrg(self.org_name(), inn, str(shapes[0]()), e164))
        org = self.rnd.choice(self.base_orgs)
        _, shapes = self.mobile()
        self.row(org=org.name, inn=org.inn, name=self.person_name(), phone=self.shape(shapes))
        self.expect("create")
        self.expected["clients_created"] += 1

    def reject_phone(self) -> None:
        raw, _ = self.rnd.choice(self.table_rejects)
        self.row(name=self.person_name(), phone=raw)
        self.expect("reject", "phone_invalid")

    def reject_no_name(self) -> None:
        _, shapes = self.mobile()
        self.row(phone=self.shape(shapes), position=self.rnd.choice(POSITIONS))
        self.expect("reject", "missing_name")

    def reject_email(self) -> None:
        _, shapes = self.mobile()
        self.row(name=self.person_name(), phone=self.shape(shapes), email="ivan.at.mail.ru")
        self.expect("reject", "email_invalid")

    def reject_inn(self) -> None:
        inn = _inn10(self.rnd, self.used_inn)
        broken = inn[:-1] + str((int(inn[-1]) + 1) % 10)
        self.row(org=self.org_name(), inn=broken, name=self.person_name())
        self.expect("reject", "inn_invalid")

    def reject_conflict(self) -> None:
        """Another person's number under an unrelated name: one card, one rejected row."""
        _, shapes = self.mobile()
        self.row(name=self.person_name(), phone=self.shape(shapes))
        self.expect("create")
        self.expected["clients_created"] += 1
        self.row(name=self.person_name(), phone=self.shape(shapes))
        self.expect("reject", "phone_conflict")

    def reject_too_long(self) -> None:
        _, shapes = self.mobile()
        self.row(name="Очень длинное имя " * 20, phone=self.shape(shapes))
        self.expect("reject", "value_too_long")

    def empty(self) -> None:
        self.row()


def generate(rows: int = 1000, seed: int = 7) -> Generated:
    """About `rows` data rows (a few more: kinds come whole) and their expected outcome."""
    b = _Builder(seed)
    groups: list[tuple[int, int]] = []
    for e164, raws in b.groups.items():
        start = len(b.rows)
        b.table_group(e164, raws)
        groups.append((start, len(b.rows)))
    kinds: list[tuple[float, Callable[[], None]]] = [
        (0.24, lambda: b.new_person()),
        (0.04, lambda: b.new_person(dups=2)),
        (0.02, lambda: b.new_person(by_email=True)),
        (0.03, b.multi_phone_person),
        (0.10, lambda: b.organization(b.rnd.randrange(2, 5))),
        (0.03, b.organization_only),
        (0.05, lambda: b.base_update(twice=False)),
        (0.02, lambda: b.base_update(twice=True)),
        (0.03, b.base_unchanged),
        (0.03, b.base_org_new_person),
        (0.04, b.reject_phone),
        (0.01, b.reject_no_name),
        (0.01, b.reject_email),
        (0.01, b.reject_inn),
        (0.01, b.reject_conflict),
        (0.005, b.reject_too_long),
        (0.005, b.empty),
    ]
    weights = [w for w, _ in kinds]
    while len(b.rows) < rows:
        start = len(b.rows)
        b.rnd.choices(kinds, weights)[0][1]()
        groups.append((start, len(b.rows)))
    body = _shuffle_keeping_order(b.rnd, b.rows, groups)
    head: list[list[Cell]] = [[TITLE, "", "", "", "", "", "", ""], list(HEADERS)]
    return Generated(head + body, b.base_orgs, b.base_people, b.expected)


def _shuffle_keeping_order(
    rnd: random.Random, rows: list[list[Cell]], groups: list[tuple[int, int]]
) -> list[list[Cell]]:
    """Rows spread over the whole file, each kind's own rows still in the order built (an
    update before the row that repeats it, which then merges)."""
    slots = list(range(len(rows)))
    rnd.shuffle(slots)
    out: list[list[Cell]] = [[] for _ in rows]
    for start, end in groups:
        for slot, row in zip(sorted(slots[start:end]), rows[start:end], strict=True):
            out[slot] = row
    return out


# -- the base ------------------------------------------------------------------------------------


async def insert_base(session: AsyncSession, generated: Generated) -> None:
    """The organisations and people the generated file meets in the base (the caller commits)."""
    await session.execute(text("DELETE FROM import_batches WHERE 1 = 0"))  # takes the write lock
    org_ids = await insert_with_ids(
        session,
        Organization,
        ("name", "inn", "notes", "created_at", "updated_at"),
        [(o.name, o.inn, "", NOW, NOW) for o in generated.base_orgs],
    )
    client_ids = await insert_with_ids(
        session,
        Client,
        ("name", "position", "email", "notes", "organization_id", "created_at", "updated_at"),
        [
            (
                p.name,
                p.position,
                p.email,
                "",
                org_ids[p.org] if p.org is not None else None,
                NOW,
                NOW,
            )
            for p in generated.base_people
        ],
    )
    columns = (
        "raw",
        "e164",
        "extension",
        "kind",
        "shared",
        "client_id",
        "organization_id",
        "created_at",
    )
    phones = [
        (o.phone_raw, o.e164, "", PhoneKind.WORK, False, None, i, NOW)
        for o, i in zip(generated.base_orgs, org_ids, strict=True)
    ]
    phones += [
        (p.phone_raw, p.e164, "", PhoneKind.MOBILE, False, i, None, NOW)
        for p, i in zip(generated.base_people, client_ids, strict=True)
    ]
    await insert_with_ids(session, Phone, columns, phones)


# -- writers ----------------------------------------------------------------------------------


def _col(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _xml_text(value: str) -> str:
    return escape("".join(c for c in value if c in "\t\n\r" or c >= " "))


def write_xlsx(
    path: Path,
    rows: Sequence[Sequence[Cell]],
    *,
    sheet: str = "Контрагенты",
    extra_sheets: Sequence[str] = (),
    merged: Sequence[str] = (),
    sheet_xml_prefix: str = "",
    compression: int = zipfile.ZIP_DEFLATED,
) -> None:
    """A minimal real .xlsx: shared-nothing inline strings, numbers as numeric cells.

    `merged`: ranges such as "A3:A5"; `sheet_xml_prefix`: text put before the <worksheet>
    root (a DOCTYPE, for the hostile-file tests)."""
    body = io.StringIO()
    body.write('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n')
    body.write(sheet_xml_prefix)
    body.write('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
    body.write("<sheetData>")
    for r, row in enumerate(rows, start=1):
        body.write(f'<row r="{r}">')
        for c, value in enumerate(row):
            ref = f"{_col(c)}{r}"
            if isinstance(value, int | float) and not isinstance(value, bool):
                body.write(f'<c r="{ref}"><v>{value!r}</v></c>')
            elif value != "":
                text = _xml_text(str(value))
                body.write(
                    f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
                )
        body.write("</row>")
    body.write("</sheetData>")
    if merged:
        body.write(f'<mergeCells count="{len(merged)}">')
        body.write("".join(f'<mergeCell ref="{m}"/>' for m in merged))
        body.write("</mergeCells>")
    body.write("</worksheet>")
    names = [sheet, *extra_sheets]
    sheets_xml = "".join(
        f'<sheet name="{escape(n)}" sheetId="{i}" r:id="rId{i}"/>' for i, n in enumerate(names, 1)
    )
    rels = "".join(
        f'<Relationship Id="rId{i}" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        f'Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(names) + 1)
    )
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, len(names) + 1)
    )
    empty_sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<sheetData/></worksheet>"
    )
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            f"{overrides}</Types>",
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        archive.writestr(
            "xl/workbook.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f"<sheets>{sheets_xml}</sheets></workbook>",
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f"{rels}</Relationships>",
        )
        archive.writestr("xl/worksheets/sheet1.xml", body.getvalue())
        for i in range(2, len(names) + 1):
            archive.writestr(f"xl/worksheets/sheet{i}.xml", empty_sheet)


def write_csv(
    path: Path, rows: Sequence[Sequence[Cell]], *, encoding: str = "cp1251", delimiter: str = ";"
) -> None:
    """A CSV as Excel or 1C writes it (numbers as they would print)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if c == "" else str(c) for c in row])
    path.write_bytes(out.getvalue().encode(encoding, errors="strict"))
