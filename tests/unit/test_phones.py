"""Phone identity: raw numbers from carriers, people and spreadsheets → E.164 or a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.phones import (
    PhoneIdentity,
    PhoneNumber,
    PhoneRejected,
    PhoneRejectReason,
    phone_identity,
)

R = PhoneRejectReason
AMI_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"

# One shared instance for the read-only tests (the default configuration: RU, area 495).
PHONES = PhoneIdentity(region="RU", area_code="495")

NBSP = "\u00a0"
NARROW_NBSP = "\u202f"
THIN = "\u2009"
EN_DASH = "\u2013"
EM_DASH = "\u2014"
NB_HYPHEN = "\u2011"
MINUS = "\u2212"

REAL_WORLD: list[tuple[str, str | PhoneRejectReason]] = [
    # Russian mobile, every way carriers and people write it
    ("+7 916 123-45-67", "+79161234567"),
    ("+79161234567", "+79161234567"),
    ("89161234567", "+79161234567"),
    ("79161234567", "+79161234567"),
    ("9161234567", "+79161234567"),
    ("8 (916) 123-45-67", "+79161234567"),
    ("8-916-123-45-67", "+79161234567"),
    ("+7 (916) 123 45 67", "+79161234567"),
    ("(+7) 916 123-45-67", "+79161234567"),
    ("8.916.123.45.67", "+79161234567"),
    ("+7 8 916 123 45 67", "+79161234567"),
    ("'+79161234567", "+79161234567"),
    (" \t+7 916 123 45 67\n", "+79161234567"),
    ("тел.: 8 916 123-45-67", "+79161234567"),
    ("Моб. +7 916 123 45 67", "+79161234567"),
    # mobile ranges are always accepted (metadata lags behind allocations)
    ("+7 992 004-96-42", "+79920049642"),
    ("8 985 145 24 36", "+79851452436"),
    ("+7 977 123 45 67", "+79771234567"),
    ("+7 930 001 23 45", "+79300012345"),
    # Moscow and other geographic numbers, local 7-digit numbers get area code 495
    ("8 (495) 123-45-67", "+74951234567"),
    ("4951234567", "+74951234567"),
    ("+7 (495) 123-45-67", "+74951234567"),
    ("123-45-67", "+74951234567"),
    ("1234567", "+74951234567"),
    ("1425874", "+74951425874"),
    ("062-30-98", "+74950623098"),
    ("+7 (812) 123-45-67", "+78121234567"),
    ("8 (383) 123-45-67", "+73831234567"),
    ("8 800 555-35-35", "+78005553535"),
    # Kazakhstan shares +7
    ("+7 727 258 1234", "+77272581234"),
    ("8 701 234 56 78", "+77012345678"),
    # foreign, with +, 00 and the Russian international prefix 810
    ("+44 20 7946 0958", "+442079460958"),
    ("+44 (0) 20 7946 0958", "+442079460958"),
    ("00 44 20 7946 0958", "+442079460958"),
    ("0044 20 7946 0958", "+442079460958"),
    ("810 44 20 7946 0958", "+442079460958"),
    ("8-10-44-20-7946-0958", "+442079460958"),
    ("+380 44 123 4567", "+380441234567"),
    ("+380 67 123 4567", "+380671234567"),
    ("+49 30 1234567", "+49301234567"),
    ("+49 (0)30 1234567", "+49301234567"),
    ("+1 (201) 555-0123", "+12015550123"),
    ("8 10 1 201 555 0123", "+12015550123"),
    ("+375 29 123-45-67", "+375291234567"),
    ("+998 90 123 45 67", "+998901234567"),
    ("+86 138 0013 8000", "+8613800138000"),
    ("+39 06 1234 5678", "+390612345678"),
    # URIs
    ("tel:+74951234567", "+74951234567"),
    ("tel:+7-495-123-45-67;ext=12", "+74951234567"),
    ("tel:1234567;phone-context=+7495", "+74951234567"),
    ("sip:+74951234567@10.0.0.1;user=phone", "+74951234567"),
    # Unicode digits, spaces and dashes
    (f"8{NBSP}916{NBSP}123{EN_DASH}45{EN_DASH}67", "+79161234567"),
    (f"+7{THIN}916{THIN}123{NB_HYPHEN}45{NB_HYPHEN}67", "+79161234567"),
    (f"+7{NARROW_NBSP}495{NARROW_NBSP}123{EM_DASH}45{MINUS}67", "+74951234567"),
    ("８９１６１２３４５６７", "+79161234567"),
    ("＋７（９１６）１２３－４５－６７", "+79161234567"),
    ("٨٩١٦١٢٣٤٥٦٧", "+79161234567"),
    ("8\u200b916\u200b1234567", "+79161234567"),
    # spreadsheet exports
    ("79161234567.0", "+79161234567"),
    ("84951234567.00", "+74951234567"),
    ("7.9161234567E+10", "+79161234567"),
    ("7,9161234567E+10", "+79161234567"),
    ("7.91612E+10", R.SCIENTIFIC_NOTATION),
    ("9.16123457E+9", R.SCIENTIFIC_NOTATION),
    ("7.91612345678E+10", R.SCIENTIFIC_NOTATION),
    # hidden caller IDs
    ("anonymous", R.HIDDEN),
    ("Anonymous", R.HIDDEN),
    ("unknown", R.HIDDEN),
    ("<unknown>", R.HIDDEN),
    ("Restricted", R.HIDDEN),
    ("Скрытый номер", R.HIDDEN),
    ("sip:anonymous@anonymous.invalid", R.HIDDEN),
    # garbage
    ("", R.EMPTY),
    ("   ", R.EMPTY),
    (NBSP * 3, R.EMPTY),
    ("abc", R.NO_DIGITS),
    ("x5", R.NO_DIGITS),
    ("#123", R.NO_DIGITS),
    (",123", R.NO_DIGITS),
    ("12", R.TOO_SHORT),
    ("+7 999", R.TOO_SHORT),
    ("12345", R.TOO_SHORT),
    ("+7 123 45 67", R.TOO_SHORT),
    ("1" * 30, R.TOO_LONG),
    ("+44 20 7946 09581", R.TOO_LONG),
    ("+7 495 123 45 67 8", R.INVALID_NUMBER),
    ("+7 012 345 67 89", R.INVALID_NUMBER),
    ("+7 200 123 45 67", R.INVALID_NUMBER),
    ("+7 501 123 45 67", R.INVALID_NUMBER),
    ("8916123456", R.INVALID_NUMBER),
    ("+44 7700 900123", R.INVALID_NUMBER),
    ("+999 123 4567", R.INVALID_COUNTRY_CODE),
    ("+0 123 456 789", R.INVALID_COUNTRY_CODE),
    ("84951234567a", R.INVALID_CHARACTERS),
    ("79161234567abc", R.INVALID_CHARACTERS),
    ("1-800-FLOWERS", R.INVALID_CHARACTERS),
    ("79161234567 (Иван)", R.INVALID_CHARACTERS),
    ("*100#", R.INVALID_CHARACTERS),
    ("8916123456\U00010a40", R.INVALID_CHARACTERS),  # a digit-like character that is no digit
    ("፩፪፫፬፭፮፯", R.NO_DIGITS),
    ("84951234567, 89161234567", R.MULTIPLE_NUMBERS),
    ("+7 (495) 123-45-67/68", R.MULTIPLE_NUMBERS),
    ("+7 916 123 45 67 / +7 916 765 43 21", R.MULTIPLE_NUMBERS),
    ("84951234567 доб. 1234567", R.BAD_EXTENSION),
    ("tel:+74951234567;ext=abc", R.BAD_EXTENSION),
]


@pytest.mark.parametrize(("raw", "expected"), REAL_WORLD)
def test_given_real_world_input_when_normalizing_then_e164_or_reason(
    raw: str, expected: str | PhoneRejectReason
) -> None:
    result = PHONES.normalize(raw)
    if isinstance(expected, PhoneRejectReason):
        assert isinstance(result, PhoneRejected), result
        assert result.reason is expected
        assert result.raw == raw
        assert result.detail
    else:
        assert isinstance(result, PhoneNumber), result
        assert result.e164 == expected


def test_given_the_table_when_counting_then_it_covers_enough_formats() -> None:
    accepted = [raw for raw, expected in REAL_WORLD if not isinstance(expected, PhoneRejectReason)]
    rejected = [raw for raw, expected in REAL_WORLD if isinstance(expected, PhoneRejectReason)]
    assert len(accepted) >= 40
    assert len(rejected) >= 20
    assert len(set(REAL_WORLD)) == len(REAL_WORLD)


SAME_NUMBER: dict[str, list[str]] = {
    "+79161234567": [
        "+7 916 123-45-67",
        "+79161234567",
        "79161234567",
        "89161234567",
        "9161234567",
        "8 (916) 123-45-67",
        "+7(916)1234567",
        "8-916-123-45-67",
        "tel:+79161234567",
        "79161234567.0",
        "7.9161234567E+10",
        "８９１６１２３４５６７",
        f"+7{NBSP}916{NBSP}123{EN_DASH}45{EN_DASH}67",
        "00 7 916 123 45 67",
        "+7 916 123-45-67 доб. 123",
    ],
    "+74951234567": [
        "+7 495 123-45-67",
        "+74951234567",
        "74951234567",
        "84951234567",
        "4951234567",
        "8 (495) 123-45-67",
        "123-45-67",
        "1234567",
        "tel:+7-495-123-45-67",
        "84951234567 ext 5",
        "84951234567x5",
        "84951234567#123",
        "84951234567,123",
    ],
    "+442079460958": [
        "+44 20 7946 0958",
        "+442079460958",
        "00 44 20 7946 0958",
        "810 44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "tel:+44-20-7946-0958",
    ],
    "+380441234567": ["+380 44 123 4567", "+380441234567", "00380441234567", "810380441234567"],
    "+49301234567": ["+49 30 1234567", "+49 (0)30 123 45 67", "0049301234567"],
}


@pytest.mark.parametrize(("e164", "formats"), list(SAME_NUMBER.items()))
def test_given_one_number_in_many_formats_when_normalizing_then_all_give_the_same_e164(
    e164: str, formats: list[str]
) -> None:
    results = {raw: PHONES.e164(raw) for raw in formats}
    assert results == dict.fromkeys(formats, e164)
    regions = {PHONES.normalize(raw).region for raw in formats}  # type: ignore[union-attr]
    assert len(regions) == 1


@pytest.mark.parametrize(
    ("raw", "e164", "extension"),
    [
        ("+7 495 123-45-67 доб. 123", "+74951234567", "123"),
        ("8 (495) 123-45-67 доб 12", "+74951234567", "12"),
        ("8 (495) 123-45-67 добавочный 12", "+74951234567", "12"),
        ("8 (495) 123-45-67 вн. 4", "+74951234567", "4"),
        ("+7 (495) 123-45-67 (доб. 123)", "+74951234567", "123"),
        ("84951234567 ext 5", "+74951234567", "5"),
        ("84951234567 ext. 5", "+74951234567", "5"),
        ("84951234567 Ext: 5", "+74951234567", "5"),
        ("84951234567 extension 55", "+74951234567", "55"),
        ("84951234567 x5", "+74951234567", "5"),
        ("84951234567x5", "+74951234567", "5"),
        ("84951234567#123", "+74951234567", "123"),
        ("84951234567,123", "+74951234567", "123"),
        ("8(495)123-45-67,,123", "+74951234567", "123"),
        ("+7 (495) 123-45-67; 123", "+74951234567", "123"),
        ("tel:+7-495-123-45-67;ext=12", "+74951234567", "12"),
        ("+44 20 7946 0958 ext. 204", "+442079460958", "204"),
        ("+74951234567", "+74951234567", None),
    ],
)
def test_given_number_with_extension_when_normalizing_then_extension_is_kept_apart(
    raw: str, e164: str, extension: str | None
) -> None:
    result = PHONES.normalize(raw)
    assert isinstance(result, PhoneNumber), result
    assert (result.e164, result.extension) == (e164, extension)
    assert PHONES.e164(raw) == e164


def _fixture_calls() -> list[tuple[str, str, str | None]]:
    calls: list[tuple[str, str, str | None]] = []
    for path in sorted(AMI_FIXTURES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["default_region"] == "RU"
        assert data["default_area_code"] == "495"
        for call in data["calls"]:
            calls.append((path.stem, call["caller_num_raw"], call["caller_e164"]))
    return calls


FIXTURE_CALLS = _fixture_calls()


def test_given_recorded_ami_fixtures_when_listing_then_every_caller_format_is_present() -> None:
    assert len(FIXTURE_CALLS) >= 80
    formats: set[str] = set()
    for path in AMI_FIXTURES.glob("*.json"):
        formats |= {c["caller_format"] for c in json.loads(path.read_text("utf-8"))["calls"]}
    assert {"plus", "seven", "eight", "ten", "local", "foreign", "anonymous"} <= formats


@pytest.mark.parametrize(("fixture", "raw", "e164"), FIXTURE_CALLS)
def test_given_recorded_caller_id_when_normalizing_then_it_matches_the_recorded_e164(
    fixture: str, raw: str, e164: str | None
) -> None:
    identity = phone_identity("RU", "495")
    assert identity.e164(raw) == e164, fixture
    if e164 is None:
        result = identity.normalize(raw)
        assert isinstance(result, PhoneRejected)
        assert result.reason is R.HIDDEN


def test_given_no_area_code_when_normalizing_a_local_number_then_unknown_area() -> None:
    phones = PhoneIdentity(region="RU", area_code="")
    result = phones.normalize("123-45-67")
    assert isinstance(result, PhoneRejected)
    assert result.reason is R.UNKNOWN_AREA
    assert phones.e164("+7 916 123-45-67") == "+79161234567"


def test_given_a_four_digit_area_code_when_normalizing_six_digits_then_it_is_completed() -> None:
    phones = PhoneIdentity(region="RU", area_code="8452")  # Saratov: 6-digit local numbers
    assert phones.e164("12-34-56") == "+78452123456"
    seven = phones.normalize("123-45-67")
    assert isinstance(seven, PhoneRejected)
    assert seven.reason is R.INVALID_NUMBER


def test_given_another_region_when_normalizing_then_its_national_rules_apply() -> None:
    london = PhoneIdentity(region="GB", area_code="20")
    assert london.e164("020 7946 0958") == "+442079460958"
    assert london.e164("7946 0958") == "+442079460958"
    assert london.e164("8 916 123-45-67") is None
    assert london.e164("00 7 916 123-45-67") == "+79161234567"
    assert london.e164("+7 916 123-45-67") == "+79161234567"


@pytest.mark.parametrize(
    ("e164", "dial"),
    [
        ("+79161234567", "89161234567"),
        ("+74951234567", "84951234567"),
        ("+78005553535", "88005553535"),
        ("+77272581234", "87272581234"),
        ("+442079460958", "+442079460958"),
        ("+380441234567", "+380441234567"),
        ("+12015550123", "+12015550123"),
    ],
)
def test_given_e164_when_building_dial_string_then_national_at_home_and_plus_abroad(
    e164: str, dial: str
) -> None:
    assert PHONES.dial_string(e164) == dial


def test_given_other_home_regions_when_building_dial_string_then_their_trunk_prefix() -> None:
    assert PhoneIdentity(region="GB", area_code="").dial_string("+442079460958") == "02079460958"
    assert PhoneIdentity(region="GB", area_code="").dial_string("+79161234567") == "+79161234567"
    assert PhoneIdentity(region="IT", area_code="").dial_string("+390612345678") == "0612345678"


@pytest.mark.parametrize("bad", ["", "89161234567", "+", "+0123", "+7 916 123 45 67", "abc"])
def test_given_non_e164_when_building_dial_string_then_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        PHONES.dial_string(bad)


@pytest.mark.parametrize(
    ("e164", "shown"),
    [
        ("+79161234567", "+7 916 123-45-67"),
        ("+74951234567", "+7 495 123-45-67"),
        ("+79300012345", "+7 930 001-23-45"),
        ("+442079460958", "+44 20 7946 0958"),
        ("+380441234567", "+380 44 123 4567"),
        ("not a number", "not a number"),
    ],
)
def test_given_e164_when_displaying_then_international_human_format(e164: str, shown: str) -> None:
    assert PHONES.display(e164) == shown


def test_given_same_config_when_asking_for_identity_then_the_same_instance() -> None:
    assert phone_identity("RU", "495") is phone_identity("RU", "495")
    assert phone_identity("ru", " 495 ") is phone_identity("RU", "495")
    assert phone_identity("RU", "812") is not phone_identity("RU", "495")
    assert phone_identity("RU", "812").e164("123-45-67") == "+78121234567"


def test_given_repeated_inputs_when_normalizing_then_cache_is_bounded_and_hit() -> None:
    phones = PhoneIdentity(cache_size=3)
    for raw in ["89161234567", "89161234567", "1234567", "+44 20 7946 0958", "abc", "abc"]:
        phones.normalize(raw)
    info = phones.cache_info()
    assert info.maxsize == 3
    assert info.currsize == 3
    assert info.hits == 2
    assert phones.normalize("89161234567") == PhoneIdentity(cache_size=0).normalize("89161234567")


@pytest.mark.parametrize(
    ("region", "area_code", "cache_size"),
    [("XX", "495", 10), ("RU", "49a", 10), ("RU", "495", -1)],
)
def test_given_bad_configuration_when_building_then_value_error(
    region: str, area_code: str, cache_size: int
) -> None:
    with pytest.raises(ValueError):
        PhoneIdentity(region=region, area_code=area_code, cache_size=cache_size)


def test_given_results_when_inspecting_then_frozen_typed_values() -> None:
    number = PHONES.normalize("+7 916 123-45-67")
    assert number == PhoneNumber(e164="+79161234567", extension=None, region="RU")
    with pytest.raises(AttributeError):
        number.e164 = "+1"  # type: ignore[misc]
    rejected = PHONES.normalize("anonymous")
    assert isinstance(rejected, PhoneRejected)
    assert rejected == PhoneRejected(raw="anonymous", reason=R.HIDDEN, detail=rejected.detail)
    assert str(R.HIDDEN) == "hidden"


# -- properties -----------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
UNCACHED = PhoneIdentity(cache_size=0)

phone_like = st.from_regex(
    r"\A[ (]?\+?[0-9]{0,3}[ (]{0,2}[0-9]{0,4}[ )\-.]{0,2}[0-9]{0,4}[ \-.]?[0-9]{0,4}"
    r"( ?(x|ext|доб\.?|#|,) ?[0-9]{1,8})?\Z"
)
digits_only = st.builds(
    lambda plus, digits: ("+" if plus else "") + digits,
    st.booleans(),
    st.text(alphabet="0123456789", min_size=0, max_size=16),
)


def _assert_total_and_idempotent(raw: str) -> None:
    result = UNCACHED.normalize(raw)
    assert isinstance(result, PhoneNumber | PhoneRejected)
    if isinstance(result, PhoneRejected):
        assert result.raw == raw
        assert isinstance(result.reason, PhoneRejectReason)
        assert result.detail
        return
    assert result.e164.startswith("+")
    assert result.e164[1:].isdigit()
    assert len(result.e164) <= 16
    again = UNCACHED.normalize(result.e164)
    assert again == PhoneNumber(e164=result.e164, extension=None, region=result.region)
    assert UNCACHED.display(result.e164).startswith("+")
    assert UNCACHED.dial_string(result.e164).isascii()


@PROPERTY_SETTINGS
@given(st.text(max_size=60))
def test_given_arbitrary_text_when_normalizing_then_never_raises_and_e164_is_a_fixed_point(
    raw: str,
) -> None:
    _assert_total_and_idempotent(raw)


@PROPERTY_SETTINGS
@given(st.one_of(phone_like, digits_only))
def test_given_phone_like_text_when_normalizing_then_never_raises_and_e164_is_a_fixed_point(
    raw: str,
) -> None:
    _assert_total_and_idempotent(raw)


@PROPERTY_SETTINGS
@given(st.integers(min_value=1, max_value=999), st.integers(min_value=0, max_value=10**12))
def test_given_any_plus_number_when_normalizing_then_e164_is_a_fixed_point(
    country: int, national: int
) -> None:
    _assert_total_and_idempotent(f"+{country}{national}")


@PROPERTY_SETTINGS
@given(
    st.sampled_from(["", "495", "8452", "812"]),
    st.booleans(),
    st.text(alphabet="0123456789", min_size=5, max_size=12),
)
def test_given_digit_strings_when_fast_path_answers_then_general_path_agrees(
    area_code: str, plus: bool, digits: str
) -> None:
    phones = PhoneIdentity(region="RU", area_code=area_code, cache_size=0)
    fast = phones._resolve_ru_fast(digits, plus, None)
    if fast is not None:
        assert phones._resolve_slow(digits, digits, plus, None) == fast
