"""Planning an import: each row's decision and the counts, on small hand-made tables."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from callcenter.clients.merge import names_compatible, organization_name_key
from callcenter.imports.mapping import guess_mapping
from callcenter.imports.normalize import (
    Layout,
    NormalRow,
    RejectReason,
    RowRejected,
    inn_valid,
    normalize_inn,
    normalize_row,
)
from callcenter.imports.plan import (
    BaseClient,
    BaseIndex,
    BaseOrganization,
    Decision,
    Plan,
    plan_rows,
)
from callcenter.phones import PhoneIdentity

PHONES = PhoneIdentity("RU", "495")
D = Decision
R = RejectReason
HEADERS = ["Контрагент", "ИНН", "Телефон организации", "ФИО", "Должность", "Телефон", "E-mail"]


def _plan(rows: Sequence[Sequence[str]], index: BaseIndex | None = None) -> Plan:
    layout = Layout(HEADERS, guess_mapping(HEADERS))
    results = [normalize_row(i, cells, layout, PHONES) for i, cells in enumerate(rows, start=2)]
    return plan_rows(results, index or BaseIndex())


def _row(
    org: str = "",
    inn: str = "",
    org_phone: str = "",
    name: str = "",
    position: str = "",
    phone: str = "",
    email: str = "",
) -> list[str]:
    return [org, inn, org_phone, name, position, phone, email]


def _decisions(plan: Plan) -> list[tuple[Decision, RejectReason | None]]:
    return [(r.decision, r.reason) for r in plan.rows]


def _base() -> BaseIndex:
    """One organisation (INN 7707083893, office +74951234567) with one contact person."""
    return BaseIndex(
        phone_owners={
            ("+79161234567", ""): [("client", 10)],
            ("+74951234567", ""): [("organization", 5)],
        },
        clients_by_email={"ivanov@romashka.ru": [10]},
        org_by_inn={"7707083893": 5},
        orgs_by_name_key={"ромашка": [5]},
        clients={
            10: BaseClient(10, "Иванов Иван Иванович", "Инженер", "ivanov@romashka.ru", 5, "")
        },
        organizations={5: BaseOrganization(5, "ООО «Ромашка»", "7707083893", None, "")},
        contacts={5: [(10, "Иванов Иван Иванович")]},
    )


def test_given_new_people_when_planning_then_each_is_created() -> None:
    plan = _plan(
        [
            _row(name="Иванов Иван", phone="8 916 123-45-67"),
            _row(name="Петров Петр", phone="+7 903 111-22-33", email="petrov@mail.ru"),
        ]
    )

    assert _decisions(plan) == [(D.CREATE, None), (D.CREATE, None)]
    counts = plan.counts()
    assert (counts["create"], counts["clients_created"], counts["phones_added"]) == (2, 2, 2)


def test_given_the_same_person_in_other_formats_when_planning_then_later_rows_merge() -> None:
    plan = _plan(
        [
            _row(name="Иванов Иван Иванович", phone="8 (916) 123-45-67"),
            _row(name="Иванов И. И.", phone="79161234567.0", position="Директор"),
            _row(name="иванов иван", phone="+7 903 765-43-21", email="IVAN@mail.ru"),
            _row(name="Иванов Иван", email="ivan@mail.ru"),
        ]
    )

    # Row 4 is found by e-mail only, which row 3 added to the card row 2 made.
    assert _decisions(plan) == [
        (D.CREATE, None),
        (D.MERGE, None),
        (D.CREATE, None),
        (D.MERGE, None),
    ]
    assert plan.rows[1].target_line == 2
    card = plan.rows[1].client
    assert card is not None
    assert (card.values["name"], card.values["position"]) == ("Иванов Иван Иванович", "Директор")


def test_given_an_organisation_with_several_persons_when_planning_then_one_organisation() -> None:
    plan = _plan(
        [
            _row("ООО «Вектор»", "7736050003", "8 (495) 765-43-21", "Сидоров Олег", "Директор",
                 "89161112233"),
            _row("Вектор ООО", "7736050003", "8 (495) 765-43-21", "Козлова Анна", "Бухгалтер",
                 "89162223344"),
            _row("вектор", "", "", "Белов Игорь", "", "89163334455"),
        ]
    )  # fmt: skip

    assert _decisions(plan) == [(D.CREATE, None)] * 3
    orgs = {id(r.organization) for r in plan.rows}
    assert len(orgs) == 1
    counts = plan.counts()
    assert (counts["organizations_created"], counts["clients_created"]) == (1, 3)
    assert counts["phones_added"] == 4


def test_given_a_row_without_a_person_when_planning_then_its_numbers_are_the_organisations() -> (
    None
):
    plan = _plan([_row("ИП Козлов", "", "", "", "", "8 (495) 765-43-21", "info@kozlov.ru")])

    assert _decisions(plan) == [(D.CREATE, None)]
    org = plan.rows[0].organization
    assert org is not None
    assert [p.e164 for p, _ in org.new_phones] == ["+74957654321"]
    assert org.values["email"] == "info@kozlov.ru"


def test_given_people_of_the_base_when_planning_then_update_unchanged_and_merge() -> None:
    plan = _plan(
        [
            _row(name="Иванов Иван Иванович", position="Инженер", phone="8 916 123 45 67"),
            _row(name="Иванов Иван", position="Главный инженер", phone="+79161234567"),
            _row(name="Иванов И.", email="Ivanov@romashka.ru"),
        ],
        _base(),
    )

    assert _decisions(plan) == [(D.UNCHANGED, None), (D.MERGE, None), (D.MERGE, None)]
    assert plan.rows[1].target_id == 10
    card = plan.rows[0].client
    assert card is not None
    assert card.changes() == {"position": ("Инженер", "Главный инженер")}
    assert plan.counts()["clients_updated"] == 1


def test_given_a_changed_person_of_the_base_first_when_planning_then_update() -> None:
    plan = _plan([_row(name="Иванов Иван", phone="89161234567", email="new@romashka.ru")], _base())

    assert _decisions(plan) == [(D.UPDATE, None)]
    card = plan.rows[0].client
    assert card is not None
    assert card.changes() == {"email": ("ivanov@romashka.ru", "new@romashka.ru")}


def test_given_an_organisation_of_the_base_when_planning_then_found_by_inn_and_name() -> None:
    plan = _plan(
        [
            _row("Ромашка", "7707083893", "", "Новикова Ольга", "", "89265554433"),
            _row('ООО "Ромашка"', "", "", "Орлов Павел", "", "89265554434"),
        ],
        _base(),
    )

    assert _decisions(plan) == [(D.CREATE, None), (D.CREATE, None)]
    assert {r.organization.existing_id for r in plan.rows if r.organization} == {5}
    assert plan.counts()["organizations_created"] == 0


def test_given_broken_values_when_planning_then_rows_are_rejected_with_reasons() -> None:
    plan = _plan(
        [
            _row(name="Иванов", phone="abc"),
            _row(name="Петров", phone="12"),
            _row(phone="89161234567"),
            _row(name="Сидоров", email="not-an-email"),
            _row(org="ООО Ромашка", inn="7707083894", name="Козлов"),
            _row(name="Я" * 300),
            _row(name="Белов", phone="2026-01-05"),
        ]
    )

    assert _decisions(plan) == [
        (D.REJECT, R.PHONE_INVALID),
        (D.REJECT, R.PHONE_INVALID),
        (D.REJECT, R.MISSING_NAME),
        (D.REJECT, R.EMAIL_INVALID),
        (D.REJECT, R.INN_INVALID),
        (D.REJECT, R.VALUE_TOO_LONG),
        (D.REJECT, R.PHONE_INVALID),
    ]
    assert plan.cards == []
    assert all(r.message for r in plan.rows)


def test_given_a_number_of_someone_else_when_planning_then_phone_conflict() -> None:
    plan = _plan(
        [
            _row(name="Иванов Иван", phone="89031112233"),
            _row(name="Петров Петр", phone="+7 903 111 22 33"),
            _row(name="Сидоров Олег", phone="8 916 123-45-67"),
            _row(name="Белов Игорь", phone="8 (495) 123-45-67"),
        ],
        _base(),
    )

    assert _decisions(plan) == [
        (D.CREATE, None),
        (D.REJECT, R.PHONE_CONFLICT),
        (D.REJECT, R.PHONE_CONFLICT),
        (D.REJECT, R.PHONE_CONFLICT),
    ]
    assert "Иванов Иван (row 2)" in plan.rows[1].message
    assert "card 10" in plan.rows[2].message


def test_given_keys_of_two_cards_when_planning_then_ambiguous_match() -> None:
    plan = _plan(
        [
            _row(name="Петров Петр", phone="89031112233"),
            _row(name="Петров Петр", phone="89031112233", email="ivanov@romashka.ru"),
        ],
        _base(),
    )

    assert _decisions(plan)[1] == (D.REJECT, R.AMBIGUOUS_MATCH)


def test_given_the_organisations_own_number_for_a_person_when_planning_then_kept_once() -> None:
    plan = _plan(
        [_row("ООО «Ромашка»", "7707083893", "", "Новикова Ольга", "", "8 (495) 123-45-67")],
        _base(),
    )

    assert _decisions(plan) == [(D.CREATE, None)]
    person = plan.rows[0].client
    assert person is not None
    assert person.new_phones == []


def test_given_a_similar_name_in_the_same_organisation_when_planning_then_a_suggestion() -> None:
    plan = _plan(
        [
            _row("ООО «Ромашка»", "7707083893", "", "Иванов И. И.", "", "89997776655"),
            _row("ООО «Ромашка»", "7707083893", "", "Иванов Иван", "", "89997776644"),
        ],
        _base(),
    )

    assert _decisions(plan) == [(D.CREATE, None), (D.CREATE, None)]
    pairs = {
        (s.card.first_line, s.other.existing_id or s.other.first_line) for s in plan.suggestions
    }
    assert pairs == {(2, 10), (3, 10), (3, 2)}


def test_given_the_same_name_with_another_inn_when_planning_then_new_organisation_suggested() -> (
    None
):
    plan = _plan(
        [_row("ООО «Ромашка»", "7736050003", "", "Орлов Павел", "", "89265554434")], _base()
    )

    org = plan.rows[0].organization
    assert org is not None
    assert org.existing_id is None
    assert [(s.kind, s.other.existing_id) for s in plan.suggestions] == [("organization", 5)]


def test_given_a_multi_number_cell_when_normalising_then_split_into_numbers() -> None:
    layout = Layout(HEADERS, guess_mapping(HEADERS))

    row = normalize_row(
        2, _row(name="Иванов", phone="8916 123-45-67, 8 903 111-22-33"), layout, PHONES
    )
    with_extension = normalize_row(2, _row(name="Петров", phone="84951234567,123"), layout, PHONES)
    broken = normalize_row(2, _row(name="Сидоров", phone="+7 (495) 123-45-67/68"), layout, PHONES)

    assert isinstance(row, NormalRow)
    assert row.person is not None
    assert [p.e164 for p in row.person.phones] == ["+79161234567", "+79031112233"]
    assert isinstance(with_extension, NormalRow)
    assert with_extension.person is not None
    assert [p.key for p in with_extension.person.phones] == [("+74951234567", "123")]
    assert isinstance(broken, RowRejected)
    assert broken.reason is R.PHONE_INVALID


@pytest.mark.parametrize(
    ("text", "inn"),
    [
        ("7707083893", "7707083893"),
        ("7707083893.0", "7707083893"),
        (" 7707 083 893 ", "7707083893"),
        ("500100732259", "500100732259"),
        ("274062111", "0274062111"),
        ("7707083894", None),
        ("12345", None),
    ],
)
def test_given_inn_text_when_normalising_then_digits_or_none(text: str, inn: str | None) -> None:
    assert normalize_inn(text) == inn
    if inn:
        assert inn_valid(inn)


@pytest.mark.parametrize(
    ("a", "b", "compatible"),
    [
        ("Иванов Иван Иванович", "Иванов И. И.", True),
        ("Иванов Иван", "Иван Иванов", True),
        ("Иванов Иван", "иванов", True),
        ("Ёлкина Анна", "Елкина А.", True),
        ("Иванов Иван", "Петров Иван", False),
        ("Иванов Иван", "Иванов Петр", False),
        ("И. И.", "Иванов Иван", False),
        ("", "Кто угодно", True),
    ],
)
def test_given_two_names_when_comparing_then_whether_one_person(
    a: str, b: str, compatible: bool
) -> None:
    assert names_compatible(a, b) is compatible
    assert names_compatible(b, a) is compatible


@pytest.mark.parametrize(
    "name", ["ООО «Ромашка»", "Ромашка, ООО", "ромашка", "OOO Ромашка", 'ООО "РОМАШКА"']
)
def test_given_spellings_of_one_organisation_when_keying_then_one_key(name: str) -> None:
    expected = "ромашка" if not name.startswith("OOO") else "ooo ромашка"
    assert organization_name_key(name) == expected
