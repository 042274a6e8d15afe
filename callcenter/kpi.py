"""The KPI registry: every queue figure the product shows or reports, defined once.

Each KPI has a key, a unit, what it counts above and below the line, whether the short-call
rule applies, and a formula people can read (i18n keys: the texts live in the supervisor
catalogue, `ui/i18n/supervisor/<locale>.json`, with `{t}` and `{n}` for the thresholds). Its
`compute` is a pure function of a sequence of `CallFact`s, so the live board and the reports
(SQL rows through `fact_of`) give the same number for the same calls.

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

from collections.abc import Callable, Iterable, Mapping, Sequence
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


Compute = Callable[[Sequence[CallFact], KpiParams], KpiResult]


@dataclass(frozen=True, slots=True)
class Kpi:
    key: str
    unit: Unit
    compute: Compute
    short_calls_excluded: bool = False
    has_denominator: bool = False

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


def _count(predicate: Callable[[CallFact], bool]) -> Compute:
    def compute(facts: Sequence[CallFact], params: KpiParams) -> KpiResult:
        n = sum(1 for fact in facts if predicate(fact))
        return KpiResult(float(n), float(n), None)

    return compute


def _percent(
    above: Callable[[CallFact, KpiParams], bool], *, exclude_short: bool = True
) -> Compute:
    """share of the offered calls (short calls left out of both) for which `above` holds."""

    def compute(facts: Sequence[CallFact], params: KpiParams) -> KpiResult:
        counted = [f for f in facts if not (exclude_short and is_short_call(f, params))]
        hits = sum(1 for fact in counted if above(fact, params))
        value = 100.0 * hits / len(counted) if counted else None
        return KpiResult(value, float(hits), float(len(counted)))

    return compute


def _mean(measure: Callable[[CallFact], float | None]) -> Compute:
    """mean of `measure` over the answered calls that have it."""

    def compute(facts: Sequence[CallFact], params: KpiParams) -> KpiResult:
        values = [v for f in facts if f.answered and (v := measure(f)) is not None]
        total = sum(values)
        return KpiResult(total / len(values) if values else None, total, float(len(values)))

    return compute


def _longest_wait(facts: Sequence[CallFact], params: KpiParams) -> KpiResult:
    waits = [f.wait_s for f in facts if f.wait_s is not None]
    longest = max(waits) if waits else None
    return KpiResult(longest, longest or 0.0, None)


def _answered_in_time(fact: CallFact, params: KpiParams) -> bool:
    return fact.answered and fact.wait_s is not None and fact.wait_s <= params.service_level_s


def _abandoned(fact: CallFact) -> bool:
    return fact.end_reason is EndReason.ABANDONED


KPIS: tuple[Kpi, ...] = (
    Kpi("offered", Unit.CALLS, _count(lambda f: True)),
    Kpi("answered", Unit.CALLS, _count(lambda f: f.answered)),
    Kpi("abandoned", Unit.CALLS, _count(_abandoned)),
    Kpi("timed_out", Unit.CALLS, _count(lambda f: f.end_reason is EndReason.QUEUE_TIMEOUT)),
    Kpi(
        "service_level",
        Unit.PERCENT,
        _percent(_answered_in_time),
        short_calls_excluded=True,
        has_denominator=True,
    ),
    Kpi(
        "abandon_rate",
        Unit.PERCENT,
        _percent(lambda f, p: _abandoned(f)),
        short_calls_excluded=True,
        has_denominator=True,
    ),
    Kpi("asa", Unit.SECONDS, _mean(lambda f: f.wait_s), has_denominator=True),
    Kpi("average_talk", Unit.SECONDS, _mean(lambda f: f.talk_s), has_denominator=True),
    Kpi("longest_wait", Unit.SECONDS, _longest_wait),
)
"""Every KPI, in the order screens show them."""

KPI_BY_KEY: Mapping[str, Kpi] = {kpi.key: kpi for kpi in KPIS}


def compute_all(facts: Iterable[CallFact], params: KpiParams) -> dict[str, KpiResult]:
    """Every KPI of the registry over `facts`."""
    items = list(facts)
    return {kpi.key: kpi.compute(items, params) for kpi in KPIS}


def text_keys() -> set[str]:
    """Every catalogue key the registry names (a test checks the catalogues hold them)."""
    return {key for kpi in KPIS for key in kpi.text_keys()}
