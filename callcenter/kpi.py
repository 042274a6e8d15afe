"""The KPI registry: every queue figure the product shows or reports, defined once.

Each KPI has a key, a unit, what it counts above and below the line, whether the short-call
rule applies, and a formula people can read (i18n keys: the texts live in the supervisor
catalogue, `ui/i18n/supervisor/<locale>.json`, with `{t}` and `{n}` for the thresholds). A
KPI is what each `CallFact` adds to it (`part`) and the figure made of those totals
(`result`): reports count a day's facts at once (`compute_all`; SQL rows through `fact_of`),
the live board keeps running totals (`KpiTotals`) as calls end, and both give the same number
for the same calls.

A `CallFact` is one call that entered a queue and has ended; a call counts for the queue it
last waited in. Definitions:

- offered: every such call (answered, abandoned or timed out); callers waiting now are shown
  apart and counted once they leave;
- answered: an agent took the call;
- abandoned: the caller hung up while waiting; timed_out: the queue gave up on the caller
  (timeout, no agents, full) — neither answered nor abandoned, yet offered, so it lowers the
  service level;
- short-call rule: a call abandoned in under N s (`short_abandon_s`) or marked a wrong
  number (`Outcome.WRONG_NUMBER`) leaves the numerator and denominator of the service level
  and the abandon rate (not the plain counts, not the times);
- service level: answered within T s of entering the queue / offered, in %, T per queue;
- abandon rate: abandoned / offered, in %;
- ASA: mean wait of answered calls; average talk: mean talk of answered calls;
- longest wait: the longest wait of any offered call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from callcenter.calls.models import Outcome
from callcenter.calls.state import CallState, CallStatus
from callcenter.events import EndReason


@dataclass(frozen=True, slots=True)
class CallFact:
    """One ended call that entered a queue: all a KPI needs to know about it."""

    call_key: str
    queue: str
    ended_at: datetime
    end_reason: EndReason | None
    answered: bool
    wait_s: float | None
    """Seconds from entering the queue to the answer (or to the end, if unanswered)."""
    talk_s: float | None
    outcome: Outcome | None = None


class CallRow(Protocol):
    """What a call record offers (`calls.models.Call`, or a SQL row with those columns)."""

    @property
    def call_key(self) -> str: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def queued_at(self) -> datetime | None: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def end_reason(self) -> EndReason | None: ...
    @property
    def wait_seconds(self) -> float | None: ...
    @property
    def talk_seconds(self) -> float | None: ...
    @property
    def outcome(self) -> Outcome | None: ...


def fact_of(row: CallRow) -> CallFact | None:
    """The fact of a stored call; None unless it entered a queue and has ended."""
    if row.queue is None or row.queued_at is None or row.ended_at is None:
        return None
    return CallFact(
        call_key=row.call_key,
        queue=row.queue,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        answered=row.answered_at is not None,
        wait_s=row.wait_seconds,
        talk_s=row.talk_seconds,
        outcome=row.outcome,
    )


def fact_of_state(state: CallState, outcome: Outcome | None = None) -> CallFact | None:
    """The fact of a call as the pure state machine holds it (what its record will say)."""
    if state.status is not CallStatus.ENDED or state.queue is None or state.queued_at is None:
        return None
    if state.ended_at is None:
        return None
    return CallFact(
        call_key=state.call_key,
        queue=state.queue,
        ended_at=state.ended_at,
        end_reason=state.end_reason,
        answered=state.answered_at is not None,
        wait_s=state.wait_seconds,
        talk_s=state.talk_seconds,
        outcome=outcome,
    )


@dataclass(frozen=True, slots=True)
class KpiParams:
    """The thresholds a KPI may depend on (service level per queue; the short-call rule)."""

    service_level_s: float = 20.0
    short_abandon_s: float = 5.0


def is_short_call(fact: CallFact, params: KpiParams) -> bool:
    """The short-call rule: abandoned in under N s, or marked a wrong number."""
    if fact.outcome is Outcome.WRONG_NUMBER:
        return True
    return (
        fact.end_reason is EndReason.ABANDONED
        and fact.wait_s is not None
        and fact.wait_s < params.short_abandon_s
    )


class Unit(StrEnum):
    CALLS = "calls"
    PERCENT = "percent"
    SECONDS = "seconds"


@dataclass(frozen=True, slots=True)
class KpiResult:
    value: float | None
    """None when there is nothing to measure (no call below the line)."""
    numerator: float
    denominator: float | None
    """None for plain counts and maxima."""


Part = tuple[float, float]
"""What one fact adds to a KPI: to its numerator and to its denominator."""
Tally = tuple[float, float]
"""A KPI's running totals over some facts: the sums of their parts (for a maximum: the
largest numerator part, and how many facts have it)."""
PartOf = Callable[[CallFact, KpiParams], Part | None]
ResultOf = Callable[[Tally], KpiResult]


@dataclass(frozen=True, slots=True)
class Kpi:
    """A KPI: the part each fact adds (None: it does not count), and the figure of the totals.
    Facts are counted one at a time, so the live board keeps running totals (`KpiTotals`)
    and a report counts all at once (`compute`), with the same definition."""

    key: str
    unit: Unit
    part: PartOf
    result: ResultOf
    short_calls_excluded: bool = False
    has_denominator: bool = False
    largest: bool = False
    """The numerator is the largest part, not the sum of the parts."""

    def compute(self, facts: Iterable[CallFact], params: KpiParams) -> KpiResult:
        tally = _EMPTY
        for fact in facts:
            if (part := self.part(fact, params)) is not None:
                tally = _added(self, tally, part)
        return self.result(tally)

    @property
    def name_key(self) -> str:
        return f"kpi.{self.key}.name"

    @property
    def formula_key(self) -> str:
        return f"kpi.{self.key}.formula"

    @property
    def numerator_key(self) -> str:
        return f"kpi.{self.key}.numerator"

    @property
    def denominator_key(self) -> str | None:
        return f"kpi.{self.key}.denominator" if self.has_denominator else None

    @property
    def short_call_rule_key(self) -> str | None:
        return "kpi.short_call_rule" if self.short_calls_excluded else None

    def text_keys(self) -> list[str]:
        """Every catalogue key this definition names."""
        optional = (self.denominator_key, self.short_call_rule_key)
        return [self.name_key, self.formula_key, self.numerator_key] + [
            key for key in optional if key is not None
        ]


_EMPTY: Tally = (0.0, 0.0)
_ONE: Part = (1.0, 1.0)


def _added(kpi: Kpi, tally: Tally, part: Part) -> Tally:
    if not kpi.largest:
        return tally[0] + part[0], tally[1] + part[1]
    if not tally[1] or part[0] > tally[0]:
        return part[0], 1.0
    return (tally[0], tally[1] + 1) if part[0] == tally[0] else tally


def _removed(kpi: Kpi, tally: Tally, part: Part) -> Tally | None:
    """`tally` without `part`; None when that cannot be known without the facts (the only
    fact with the largest value left)."""
    if not kpi.largest:
        return tally[0] - part[0], tally[1] - part[1]
    if part[0] < tally[0]:
        return tally
    return (tally[0], tally[1] - 1) if tally[1] > 1 else None


def _count(predicate: Callable[[CallFact], bool]) -> tuple[PartOf, ResultOf]:
    def part(fact: CallFact, params: KpiParams) -> Part | None:
        return _ONE if predicate(fact) else None

    def result(tally: Tally) -> KpiResult:
        return KpiResult(tally[0], tally[0], None)

    return part, result


def _percent(
    above: Callable[[CallFact, KpiParams], bool], *, exclude_short: bool = True
) -> tuple[PartOf, ResultOf]:
    """share of the offered calls (short calls left out of both) for which `above` holds."""

    def part(fact: CallFact, params: KpiParams) -> Part | None:
        if exclude_short and is_short_call(fact, params):
            return None
        return (1.0 if above(fact, params) else 0.0), 1.0

    def result(tally: Tally) -> KpiResult:
        hits, counted = tally
        return KpiResult(100.0 * hits / counted if counted else None, hits, counted)

    return part, result


def _mean(measure: Callable[[CallFact], float | None]) -> tuple[PartOf, ResultOf]:
    """mean of `measure` over the answered calls that have it."""

    def part(fact: CallFact, params: KpiParams) -> Part | None:
        value = measure(fact) if fact.answered else None
        return None if value is None else (value, 1.0)

    def result(tally: Tally) -> KpiResult:
        total, counted = tally
        return KpiResult(total / counted if counted else None, total, counted)

    return part, result


def _longest_wait() -> tuple[PartOf, ResultOf]:
    def part(fact: CallFact, params: KpiParams) -> Part | None:
        return None if fact.wait_s is None else (fact.wait_s, 1.0)

    def result(tally: Tally) -> KpiResult:
        longest = tally[0] if tally[1] else None
        return KpiResult(longest, longest or 0.0, None)

    return part, result


def _answered_in_time(fact: CallFact, params: KpiParams) -> bool:
    return fact.answered and fact.wait_s is not None and fact.wait_s <= params.service_level_s


def _abandoned(fact: CallFact) -> bool:
    return fact.end_reason is EndReason.ABANDONED


KPIS: tuple[Kpi, ...] = (
    Kpi("offered", Unit.CALLS, *_count(lambda f: True)),
    Kpi("answered", Unit.CALLS, *_count(lambda f: f.answered)),
    Kpi("abandoned", Unit.CALLS, *_count(_abandoned)),
    Kpi("timed_out", Unit.CALLS, *_count(lambda f: f.end_reason is EndReason.QUEUE_TIMEOUT)),
    Kpi(
        "service_level",
        Unit.PERCENT,
        *_percent(_answered_in_time),
        short_calls_excluded=True,
        has_denominator=True,
    ),
    Kpi(
        "abandon_rate",
        Unit.PERCENT,
        *_percent(lambda f, p: _abandoned(f)),
        short_calls_excluded=True,
        has_denominator=True,
    ),
    Kpi("asa", Unit.SECONDS, *_mean(lambda f: f.wait_s), has_denominator=True),
    Kpi("average_talk", Unit.SECONDS, *_mean(lambda f: f.talk_s), has_denominator=True),
    Kpi("longest_wait", Unit.SECONDS, *_longest_wait(), largest=True),
)
"""Every KPI, in the order screens show them."""

KPI_BY_KEY: Mapping[str, Kpi] = {kpi.key: kpi for kpi in KPIS}


@dataclass(frozen=True, slots=True)
class KpiTotals:
    """Every KPI's running totals over some facts, under `params`: a fact added or taken
    away updates them without counting the others again."""

    params: KpiParams
    tallies: tuple[Tally, ...] = tuple(_EMPTY for _ in KPIS)
    """One per KPI of `KPIS`, in order."""


def totals_of(facts: Iterable[CallFact], params: KpiParams) -> KpiTotals:
    totals = KpiTotals(params)
    for fact in facts:
        totals = add_fact(totals, fact)
    return totals


def add_fact(totals: KpiTotals, fact: CallFact) -> KpiTotals:
    params = totals.params
    tallies = tuple(
        tally if (part := kpi.part(fact, params)) is None else _added(kpi, tally, part)
        for kpi, tally in zip(KPIS, totals.tallies, strict=True)
    )
    return KpiTotals(params, tallies)


def remove_fact(totals: KpiTotals, fact: CallFact) -> KpiTotals | None:
    """`totals` without `fact` (one that was added); None when they must be counted again
    from the remaining facts (it had the only largest value of a maximum)."""
    params = totals.params
    tallies: list[Tally] = []
    for kpi, tally in zip(KPIS, totals.tallies, strict=True):
        part = kpi.part(fact, params)
        left = tally if part is None else _removed(kpi, tally, part)
        if left is None:
            return None
        tallies.append(left)
    return KpiTotals(params, tuple(tallies))


def results_of(totals: KpiTotals) -> dict[str, KpiResult]:
    return {kpi.key: kpi.result(tally) for kpi, tally in zip(KPIS, totals.tallies, strict=True)}


def compute_all(facts: Iterable[CallFact], params: KpiParams) -> dict[str, KpiResult]:
    """Every KPI of the registry over `facts`."""
    return results_of(totals_of(facts, params))


def text_keys() -> set[str]:
    """Every catalogue key the registry names (a test checks the catalogues hold them)."""
    return {key for kpi in KPIS for key in kpi.text_keys()}
