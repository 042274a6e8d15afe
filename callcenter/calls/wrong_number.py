"""The wrong-number rules: pure functions from what is known about an ended call to verdicts.

Each rule looks at one kind of evidence and, when it fires, says why in words and numbers
("answered 3.2 s < 5 s and no notes"), so an operator can see and undo the decision and an
administrator can tune it. No I/O here: `callcenter.calls.auto_close` gathers the facts,
applies the verdicts to the record and writes the audit trail.

Only inbound calls are judged: "the caller hung up" and "the caller said nothing" mean
nothing for a call our agent placed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class WrongNumberRule(StrEnum):
    """The rules, in the order they are tried by default."""

    SHORT_ANSWER = "short_answer"
    """Answered, shorter than N s, and the operator wrote no notes."""
    CALLER_HUNG_UP = "caller_hung_up"
    """The caller hung up within M s of the answer."""
    NO_CALLER_SPEECH = "no_caller_speech"
    """The recording's analysis found (almost) no speech on the caller's side."""
    KNOWN_NUMBER = "known_number"
    """Calls from this number were marked a wrong number before (and this one is not long)."""
    PATTERN = "pattern"
    """The number is on the configured list (a number, or `re:` and a regular expression)."""


Param = str | int | float


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule that fired: its code, the reason in English, and the numbers behind it."""

    rule: WrongNumberRule
    reason: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule.value, "reason": self.reason, "params": dict(self.params)}


@dataclass(frozen=True, slots=True)
class NumberPattern:
    """An entry of the wrong-number list: one E.164 number, or a regular expression."""

    entry: str
    """As configured, for the reason text."""
    number: str | None = None
    regex: re.Pattern[str] | None = None

    def matches(self, e164: str | None, raw: str) -> bool:
        if self.number is not None:
            return e164 == self.number
        if self.regex is None:
            return False
        return any(self.regex.search(value) for value in (e164, raw) if value)


REGEX_PREFIX = "re:"


def parse_patterns(
    entries: Iterable[str], normalize: Callable[[str], str | None]
) -> tuple[NumberPattern, ...]:
    """The list as configured: `re:<regex>` entries compiled, others read as phone numbers.

    Raises ValueError for a bad regular expression or an entry that is not a phone number,
    so a typo is found when the settings are read, not silently ignored.
    """
    patterns = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        if text.startswith(REGEX_PREFIX):
            try:
                regex = re.compile(text[len(REGEX_PREFIX) :])
            except re.error as exc:
                raise ValueError(f"wrong-number pattern {text!r}: {exc}") from exc
            patterns.append(NumberPattern(entry=text, regex=regex))
            continue
        number = normalize(text)
        if number is None:
            raise ValueError(f"wrong-number list entry {text!r} is not a phone number")
        patterns.append(NumberPattern(entry=text, number=number))
    return tuple(patterns)


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Which rules run, in which order, and their thresholds (from the settings)."""

    enabled: tuple[WrongNumberRule, ...] = tuple(WrongNumberRule)
    short_answer_s: float = 5.0
    caller_hangup_s: float = 3.0
    min_caller_speech_s: float = 0.5
    known_max_talk_s: float = 60.0
    patterns: tuple[NumberPattern, ...] = ()


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the rules may look at, gathered from the record, its recording and its history."""

    inbound: bool
    answered: bool
    talk_s: float | None
    ended_by_caller: bool
    has_notes: bool
    caller_e164: str | None
    caller_num: str
    caller_speech_s: float | None = None
    """Seconds of caller speech in the recording; None when there is no analysis."""
    earlier_wrong_numbers: int = 0
    """Earlier calls from the same number that stand marked as a wrong number."""


def _s(seconds: float) -> str:
    """Seconds as people read them: `3.2`, `5`."""
    return f"{seconds:g}"


def _shown(value: float, limit: float, *, strict: bool) -> float:
    """`value` rounded to as few decimals (1 to 3) as keep it on its side of `limit`, so a
    reason never reads "5 s < 5 s" for 4.994 s."""
    for digits in (1, 2, 3):
        shown = round(value, digits)
        if (shown < limit) if strict else (shown <= limit):
            return shown
    return value


def short_answer(facts: CallFacts, config: RuleConfig) -> Verdict | None:
    """Answered, shorter than `short_answer_s`, and nothing written about it."""
    if not facts.answered or facts.talk_s is None or facts.has_notes:
        return None
    if facts.talk_s >= config.short_answer_s:
        return None
    talk = _shown(facts.talk_s, config.short_answer_s, strict=True)
    return Verdict(
        WrongNumberRule.SHORT_ANSWER,
        f"answered {_s(talk)} s < {_s(config.short_answer_s)} s and no notes",
        {"talk_s": talk, "limit_s": config.short_answer_s},
    )


def caller_hung_up(facts: CallFacts, config: RuleConfig) -> Verdict | None:
    """The caller hung up no later than `caller_hangup_s` after the answer."""
    if not facts.answered or facts.talk_s is None or not facts.ended_by_caller:
        return None
    if facts.talk_s > config.caller_hangup_s:
        return None
    talk = _shown(facts.talk_s, config.caller_hangup_s, strict=False)
    return Verdict(
        WrongNumberRule.CALLER_HUNG_UP,
        f"the caller hung up {_s(talk)} s after the answer (≤ {_s(config.caller_hangup_s)} s)",
        {"talk_s": talk, "limit_s": config.caller_hangup_s},
    )


def no_caller_speech(facts: CallFacts, config: RuleConfig) -> Verdict | None:
    """The recording was analysed and the caller spoke less than `min_caller_speech_s`."""
    if not facts.answered or facts.caller_speech_s is None:
        return None
    if facts.caller_speech_s >= config.min_caller_speech_s:
        return None
    speech = _shown(facts.caller_speech_s, config.min_caller_speech_s, strict=True)
    return Verdict(
        WrongNumberRule.NO_CALLER_SPEECH,
        f"no caller speech in the recording ({_s(speech)} s < {_s(config.min_caller_speech_s)} s)",
        {"speech_s": speech, "limit_s": config.min_caller_speech_s},
    )


def known_number(facts: CallFacts, config: RuleConfig) -> Verdict | None:
    """The number was marked a wrong number before, and this call is not a real conversation.

    A long talk is a real call even from a number once marked (a caller who dialled us by
    mistake may become a customer), so calls of `known_max_talk_s` or more are left alone.
    """
    if facts.earlier_wrong_numbers <= 0 or facts.caller_e164 is None:
        return None
    if facts.talk_s is not None and facts.talk_s >= config.known_max_talk_s:
        return None
    times = "time" if facts.earlier_wrong_numbers == 1 else "times"
    return Verdict(
        WrongNumberRule.KNOWN_NUMBER,
        f"{facts.caller_e164} was marked a wrong number {facts.earlier_wrong_numbers} {times}"
        f" before",
        {"number": facts.caller_e164, "count": facts.earlier_wrong_numbers},
    )


def on_pattern_list(facts: CallFacts, config: RuleConfig) -> Verdict | None:
    """The number matches an entry of the configured wrong-number list."""
    for pattern in config.patterns:
        if pattern.matches(facts.caller_e164, facts.caller_num):
            number = facts.caller_e164 or facts.caller_num
            return Verdict(
                WrongNumberRule.PATTERN,
                f"{number} matches the wrong-number list entry “{pattern.entry}”",
                {"number": number, "entry": pattern.entry},
            )
    return None


RULES: Mapping[WrongNumberRule, Callable[[CallFacts, RuleConfig], Verdict | None]] = {
    WrongNumberRule.SHORT_ANSWER: short_answer,
    WrongNumberRule.CALLER_HUNG_UP: caller_hung_up,
    WrongNumberRule.NO_CALLER_SPEECH: no_caller_speech,
    WrongNumberRule.KNOWN_NUMBER: known_number,
    WrongNumberRule.PATTERN: on_pattern_list,
}


def evaluate(facts: CallFacts, config: RuleConfig) -> list[Verdict]:
    """Every enabled rule that fires, in the configured order; empty: not a wrong number."""
    if not facts.inbound:
        return []
    verdicts = (RULES[rule](facts, config) for rule in config.enabled)
    return [v for v in verdicts if v is not None]


def summary(verdicts: Sequence[Verdict]) -> str:
    """All reasons in one line, for the record and the audit log."""
    return "; ".join(v.reason for v in verdicts)
