"""Agent KPIs, defined once, in the style of the queue KPI registry (`callcenter.kpi`).

`callcenter.kpi` defines the queue figures; the agent figures of the reports live here until
the registry takes them in. Each is a pure function of `AgentFact`s (Python: plans, tests)
with an SQL twin in `callcenter.reports.agent_sql` that counts the same calls in the database.

An agent's facts, counted on the local day the call ended:

- handled: a call the agent answered (`Call.agent_user_id`) that has ended, any direction;
- missed: a call that rang at one of the agent's interfaces, stopped ringing there unanswered
  (`agent_stopped_ringing`, reason `no_answer`), and that the agent did not answer later
  (counted from `calls.models.UnansweredRing`, which ingest keeps from those events).

Definitions:

- offered = handled + missed; answered = handled; missed = missed;
- talk time = Σ talk of handled calls;
- wrap-up = Σ over handled calls with an outcome of (outcome set − call end), clipped to
  [0, cap] (the operator's after-call work; the cap keeps an outcome set hours later from
  counting as work);
- AHT = (talk time + wrap-up) / answered;
- wrong numbers = handled calls whose outcome is `wrong_number`;
- completeness = handled calls with an outcome and every field that outcome requires
  (e.g. notes for a complaint) / answered, in %.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from callcenter.calls.models import Outcome
from callcenter.kpi import KpiResult, Unit


class RequiredField(StrEnum):
    """A field of a call that an outcome may require before the call counts as complete."""

    NOTES = "notes"
    CLIENT = "client"
    """The call is linked to a client card."""


DEFAULT_REQUIRED_FIELDS: Mapping[Outcome, frozenset[RequiredField]] = {
    Outcome.CALL_BACK: frozenset({RequiredField.NOTES}),
    Outcome.COMPLAINT: frozenset({RequiredField.NOTES}),
    Outcome.SALE: frozenset({RequiredField.CLIENT}),
}


@dataclass(frozen=True, slots=True)
class AgentParams:
    wrap_up_cap_s: float = 300.0
    required_fields: Mapping[Outcome, frozenset[RequiredField]] = field(
        default_factory=lambda: dict(DEFAULT_REQUIRED_FIELDS)
    )


@dataclass(frozen=True, slots=True)
class AgentFact:
    """One call of one agent: handled (answered by them) or missed (rang them unanswered)."""

    call_key: str
    user_id: int
    ended_at: datetime
    handled: bool
    talk_s: float | None = None
    outcome: Outcome | None = None
    outcome_at: datetime | None = None
    has_notes: bool = False
    has_client: bool = False


def wrap_up_s(fact: AgentFact, params: AgentParams) -> float:
    """After-call work of a handled call: outcome set − call end, within [0, cap]."""
    if not fact.handled or fact.outcome is None or fact.outcome_at is None:
        return 0.0
    seconds = float(int(fact.outcome_at.timestamp()) - int(fact.ended_at.timestamp()))
    return min(max(seconds, 0.0), params.wrap_up_cap_s)


def is_complete(fact: AgentFact, params: AgentParams) -> bool:
    """A handled call with an outcome and every field that outcome requires."""
    if not fact.handled or fact.outcome is None:
        return False
    needed = params.required_fields.get(fact.outcome, frozenset())
    present = {
        RequiredField.NOTES: fact.has_notes,
        RequiredField.CLIENT: fact.has_client,
    }
    return all(present[name] for name in needed)


NOTE_BLANKS = " \t\r\n"
"""What blank notes may consist of (the SQL twin trims exactly these)."""


def has_notes(notes: str | None) -> bool:
    return bool(notes and notes.strip(NOTE_BLANKS))


Compute = Callable[[Sequence[AgentFact], AgentParams], KpiResult]


@dataclass(frozen=True, slots=True)
class AgentKpi:
    key: str
    unit: Unit
    compute: Compute
    has_denominator: bool = False

    @property
    def name_key(self) -> str:
        return f"reports.kpi.{self.key}.name"

    @property
    def formula_key(self) -> str:
        return f"reports.kpi.{self.key}.formula"


def _count(predicate: Callable[[AgentFact, AgentParams], bool]) -> Compute:
    def compute(facts: Sequence[AgentFact], params: AgentParams) -> KpiResult:
        n = float(sum(1 for f in facts if predicate(f, params)))
        return KpiResult(n, n, None)

    return compute


def _total(measure: Callable[[AgentFact, AgentParams], float]) -> Compute:
    def compute(facts: Sequence[AgentFact], params: AgentParams) -> KpiResult:
        total = sum((measure(f, params) for f in facts if f.handled), 0.0)
        return KpiResult(total, total, None)

    return compute


def _talk(fact: AgentFact, params: AgentParams) -> float:
    return fact.talk_s or 0.0


def _aht(facts: Sequence[AgentFact], params: AgentParams) -> KpiResult:
    handled = [f for f in facts if f.handled]
    work = sum((_talk(f, params) + wrap_up_s(f, params) for f in handled), 0.0)
    return KpiResult(work / len(handled) if handled else None, work, float(len(handled)))


def _completeness(facts: Sequence[AgentFact], params: AgentParams) -> KpiResult:
    handled = [f for f in facts if f.handled]
    complete = sum(1 for f in handled if is_complete(f, params))
    value = 100.0 * complete / len(handled) if handled else None
    return KpiResult(value, float(complete), float(len(handled)))


AGENT_KPIS: tuple[AgentKpi, ...] = (
    AgentKpi("offered", Unit.CALLS, _count(lambda f, p: True)),
    AgentKpi("answered", Unit.CALLS, _count(lambda f, p: f.handled)),
    AgentKpi("missed", Unit.CALLS, _count(lambda f, p: not f.handled)),
    AgentKpi("talk_time", Unit.SECONDS, _total(_talk)),
    AgentKpi("wrap_up", Unit.SECONDS, _total(wrap_up_s)),
    AgentKpi("aht", Unit.SECONDS, _aht, has_denominator=True),
    AgentKpi(
        "wrong_number",
        Unit.CALLS,
        _count(lambda f, p: f.handled and f.outcome is Outcome.WRONG_NUMBER),
    ),
    AgentKpi("completeness", Unit.PERCENT, _completeness, has_denominator=True),
)
"""Every agent KPI, in the order reports show them."""

AGENT_KPI_BY_KEY: Mapping[str, AgentKpi] = {kpi.key: kpi for kpi in AGENT_KPIS}


def compute_agent_kpis(facts: Sequence[AgentFact], params: AgentParams) -> dict[str, KpiResult]:
    return {kpi.key: kpi.compute(facts, params) for kpi in AGENT_KPIS}
