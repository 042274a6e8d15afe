"""The wrong-number rules: each at its boundaries, their reasons, and their configuration."""

from __future__ import annotations

from dataclasses import replace

import pytest

from callcenter.calls.wrong_number import (
    CallFacts,
    RuleConfig,
    WrongNumberRule,
    caller_hung_up,
    evaluate,
    known_number,
    no_caller_speech,
    on_pattern_list,
    parse_patterns,
    short_answer,
    summary,
)
from callcenter.phones import phone_identity

PHONES = phone_identity("RU", "495")
CONFIG = RuleConfig()
ANSWERED = CallFacts(
    inbound=True,
    answered=True,
    talk_s=30.0,
    ended_by_caller=False,
    has_notes=False,
    caller_e164="+79161234567",
    caller_num="89161234567",
)


@pytest.mark.parametrize(
    ("talk_s", "fires"), [(0.0, True), (4.9, True), (4.99, True), (5.0, False), (5.1, False)]
)
def test_given_answered_call_without_notes_when_shorter_than_limit_then_short_answer_fires(
    talk_s: float, fires: bool
) -> None:
    verdict = short_answer(replace(ANSWERED, talk_s=talk_s), CONFIG)
    assert (verdict is not None) is fires


def test_given_short_call_then_its_reason_states_the_numbers() -> None:
    verdict = short_answer(replace(ANSWERED, talk_s=3.24), CONFIG)
    assert verdict is not None
    assert verdict.rule is WrongNumberRule.SHORT_ANSWER
    assert verdict.reason == "answered 3.2 s < 5 s and no notes"
    assert verdict.params == {"talk_s": 3.2, "limit_s": 5.0}


def test_given_short_call_with_notes_or_unanswered_then_short_answer_does_not_fire() -> None:
    assert short_answer(replace(ANSWERED, talk_s=1.0, has_notes=True), CONFIG) is None
    assert short_answer(replace(ANSWERED, answered=False, talk_s=None), CONFIG) is None


@pytest.mark.parametrize(
    ("talk_s", "by_caller", "fires"),
    [(0.0, True, True), (3.0, True, True), (3.01, True, False), (1.0, False, False)],
)
def test_given_answered_call_when_caller_hangs_up_within_limit_then_caller_hung_up_fires(
    talk_s: float, by_caller: bool, fires: bool
) -> None:
    facts = replace(ANSWERED, talk_s=talk_s, ended_by_caller=by_caller)
    assert (caller_hung_up(facts, CONFIG) is not None) is fires


def test_given_quick_caller_hangup_then_reason_says_how_quick() -> None:
    verdict = caller_hung_up(replace(ANSWERED, talk_s=1.0, ended_by_caller=True), CONFIG)
    assert verdict is not None
    assert verdict.reason == "the caller hung up 1 s after the answer (≤ 3 s)"


@pytest.mark.parametrize(
    ("speech_s", "fires"), [(None, False), (0.0, True), (0.49, True), (0.5, False), (7.0, False)]
)
def test_given_analysed_recording_when_caller_barely_speaks_then_no_caller_speech_fires(
    speech_s: float | None, fires: bool
) -> None:
    facts = replace(ANSWERED, caller_speech_s=speech_s)
    verdict = no_caller_speech(facts, CONFIG)
    assert (verdict is not None) is fires
    if verdict is not None:
        assert verdict.reason.startswith("no caller speech in the recording (")


@pytest.mark.parametrize(
    ("earlier", "talk_s", "fires"),
    [(0, None, False), (1, None, True), (2, 59.9, True), (1, 60.0, False), (3, 600.0, False)],
)
def test_given_number_marked_before_when_call_is_not_long_then_known_number_fires(
    earlier: int, talk_s: float | None, fires: bool
) -> None:
    facts = replace(ANSWERED, earlier_wrong_numbers=earlier, talk_s=talk_s)
    assert (known_number(facts, CONFIG) is not None) is fires


def test_given_known_number_then_reason_counts_the_earlier_marks() -> None:
    once = known_number(replace(ANSWERED, earlier_wrong_numbers=1, talk_s=None), CONFIG)
    twice = known_number(replace(ANSWERED, earlier_wrong_numbers=2, talk_s=None), CONFIG)
    assert once is not None
    assert twice is not None
    assert once.reason == "+79161234567 was marked a wrong number 1 time before"
    assert twice.reason == "+79161234567 was marked a wrong number 2 times before"


def test_given_pattern_list_then_numbers_in_any_format_and_regexes_match() -> None:
    patterns = parse_patterns(["8 (916) 123-45-67", "re:^\\+7800", "  "], PHONES.e164)
    config = RuleConfig(patterns=patterns)
    listed = on_pattern_list(ANSWERED, config)
    toll_free = on_pattern_list(
        replace(ANSWERED, caller_e164="+78001002030", caller_num="88001002030"), config
    )
    other = on_pattern_list(
        replace(ANSWERED, caller_e164="+79991112233", caller_num="89991112233"), config
    )
    assert listed is not None
    assert listed.reason == "+79161234567 matches the wrong-number list entry “8 (916) 123-45-67”"
    assert toll_free is not None
    assert toll_free.params["entry"] == "re:^\\+7800"
    assert other is None


def test_given_hidden_number_then_only_a_regex_on_the_raw_caller_id_can_match() -> None:
    hidden = replace(ANSWERED, caller_e164=None, caller_num="anonymous")
    config = RuleConfig(patterns=parse_patterns(["re:^anonymous$"], PHONES.e164))
    assert on_pattern_list(hidden, config) is not None
    assert known_number(replace(hidden, earlier_wrong_numbers=3), config) is None


@pytest.mark.parametrize("entry", ["re:(", "not a number"])
def test_given_a_bad_list_entry_then_reading_the_list_fails(entry: str) -> None:
    with pytest.raises(ValueError, match="wrong-number"):
        parse_patterns([entry], PHONES.e164)


def test_given_several_rules_fire_then_all_are_reported_in_configured_order() -> None:
    facts = replace(ANSWERED, talk_s=1.0, ended_by_caller=True, earlier_wrong_numbers=1)
    verdicts = evaluate(facts, CONFIG)
    assert [v.rule for v in verdicts] == [
        WrongNumberRule.SHORT_ANSWER,
        WrongNumberRule.CALLER_HUNG_UP,
        WrongNumberRule.KNOWN_NUMBER,
    ]
    assert summary(verdicts) == "; ".join(v.reason for v in verdicts)
    reordered = RuleConfig(enabled=(WrongNumberRule.KNOWN_NUMBER, WrongNumberRule.SHORT_ANSWER))
    assert [v.rule for v in evaluate(facts, reordered)] == [
        WrongNumberRule.KNOWN_NUMBER,
        WrongNumberRule.SHORT_ANSWER,
    ]


def test_given_a_rule_disabled_then_it_never_fires() -> None:
    facts = replace(ANSWERED, talk_s=1.0, ended_by_caller=True)
    config = RuleConfig(enabled=(WrongNumberRule.SHORT_ANSWER,))
    assert [v.rule for v in evaluate(facts, config)] == [WrongNumberRule.SHORT_ANSWER]
    assert evaluate(facts, RuleConfig(enabled=())) == []


def test_given_thresholds_configured_then_the_rules_use_them() -> None:
    facts = replace(ANSWERED, talk_s=8.0, ended_by_caller=True)
    assert evaluate(facts, CONFIG) == []
    strict = RuleConfig(short_answer_s=10.0, caller_hangup_s=8.0)
    verdicts = evaluate(facts, strict)
    assert [v.rule for v in verdicts] == [
        WrongNumberRule.SHORT_ANSWER,
        WrongNumberRule.CALLER_HUNG_UP,
    ]
    assert verdicts[0].reason == "answered 8 s < 10 s and no notes"


def test_given_outbound_call_then_no_rule_judges_it() -> None:
    facts = replace(ANSWERED, inbound=False, talk_s=1.0, ended_by_caller=True)
    assert evaluate(facts, CONFIG) == []


def test_given_a_long_real_conversation_then_no_rule_fires() -> None:
    assert evaluate(ANSWERED, CONFIG) == []


@pytest.mark.parametrize(
    ("talk_s", "shown"), [(4.994, "4.99"), (4.96, "4.96"), (4.9999, "4.9999"), (3.04, "3")]
)
def test_given_a_time_just_under_the_limit_then_the_reason_never_reads_equal(
    talk_s: float, shown: str
) -> None:
    verdict = short_answer(replace(ANSWERED, talk_s=talk_s), CONFIG)
    assert verdict is not None
    assert verdict.reason == f"answered {shown} s < 5 s and no notes"
    assert verdict.params["talk_s"] == float(shown)
