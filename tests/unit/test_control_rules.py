"""Pure rules of call control: pause reasons, member interfaces, the caller ID a click shows."""

from __future__ import annotations

import pytest

from callcenter.control.service import (
    InvalidRequest,
    caller_id_header,
    member_interface,
    pause_reason,
)

REASONS = ["lunch", "break", "training", "meeting", "other"]


@pytest.mark.parametrize(
    ("code", "text", "sent"),
    [
        ("lunch", "", "lunch"),
        ("other", "", "other"),
        ("other", "  к\n врачу\t ", "к врачу"),
        ("other", "x" * 64, "x" * 64),
    ],
)
def test_given_a_listed_reason_then_the_code_or_the_cleaned_free_text_is_sent(
    code: str, text: str, sent: str
) -> None:
    assert pause_reason(code, text, REASONS, 64) == sent


@pytest.mark.parametrize(
    ("code", "text", "why"),
    [
        ("siesta", "", "unknown pause reason"),
        ("other", "x" * 65, "at most 64"),
        ("lunch", "a long one", "free text goes with"),
    ],
)
def test_given_a_reason_outside_the_rules_then_it_is_refused(
    code: str, text: str, why: str
) -> None:
    with pytest.raises(InvalidRequest, match=why):
        pause_reason(code, text, REASONS, 64)


def test_given_no_interface_then_the_template_names_the_member() -> None:
    assert member_interface("PJSIP/{ext}", "101", None) == "PJSIP/101"
    assert member_interface("Local/{ext}@from-queue/n", "101", None) == "Local/101@from-queue/n"


def test_given_an_explicit_interface_then_it_must_be_that_extensions() -> None:
    assert member_interface("PJSIP/{ext}", "101", "Local/101@agents") == "Local/101@agents"
    with pytest.raises(InvalidRequest, match="not extension 101"):
        member_interface("PJSIP/{ext}", "101", "PJSIP/102")


@pytest.mark.parametrize(
    ("label", "header"),
    [
        ("Мария Сидорова", '"Мария Сидорова" <89161234567>'),
        ('ООО "Ромашка" <sales>', '"ООО Ромашка sales" <89161234567>'),
        ("  ", "<89161234567>"),
        ("Я" * 80, f'"{"Я" * 64}" <89161234567>'),
    ],
)
def test_given_a_label_then_the_caller_id_header_keeps_its_quoting_intact(
    label: str, header: str
) -> None:
    assert caller_id_header(label, "89161234567") == header
