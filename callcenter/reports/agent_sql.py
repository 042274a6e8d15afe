"""SQL twins of the agent KPIs (`callcenter.reports.agent_kpis`): call sets and aggregates."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, exists, func, literal, not_, or_, select

from callcenter.calls.models import Call, Outcome, UnansweredRing
from callcenter.reports.agent_kpis import NOTE_BLANKS, AgentParams, RequiredField
from callcenter.reports.sql import Clamp, Combine, EpochSeconds, Twin

Predicate = ColumnElement[bool]


class AgentSet(StrEnum):
    """The call sets the agent KPIs count; each is a drill-down target (with a user)."""

    OFFERED = "offered"
    HANDLED = "handled"
    MISSED = "missed"
    WRONG_NUMBER = "wrong_number"
    COMPLETE = "complete"


def handled(user_id: Any = None) -> Predicate:
    """Calls the agent answered that have ended (`AgentFact.handled`)."""
    owner = Call.agent_user_id.is_not(None) if user_id is None else Call.agent_user_id == user_id
    return and_(owner, Call.answered_at.is_not(None), Call.ended_at.is_not(None))


def _has_notes() -> Predicate:
    stripped = func.rtrim(func.ltrim(Call.notes, NOTE_BLANKS), NOTE_BLANKS)
    return func.length(stripped) > 0


def _has(name: RequiredField) -> Predicate:
    match name:
        case RequiredField.NOTES:
            return _has_notes()
        case RequiredField.CLIENT:
            return Call.client_id.is_not(None)


def complete(params: AgentParams) -> Predicate:
    """`agent_kpis.is_complete`: an outcome, and every field that outcome requires."""
    rules = [
        or_(Call.outcome != outcome, *[_has(n) for n in needed]) if needed else None
        for outcome, needed in params.required_fields.items()
    ]
    return and_(Call.outcome.is_not(None), *[r for r in rules if r is not None])


def wrap_up_s(params: AgentParams) -> Any:
    """`agent_kpis.wrap_up_s` per row: (outcome set − end) in whole seconds within [0, cap]."""
    raw = EpochSeconds(Call.outcome_at) - EpochSeconds(Call.ended_at)
    cap = params.wrap_up_cap_s
    cap_value = literal(int(cap), Integer) if float(cap).is_integer() else literal(cap)
    return case(
        (or_(Call.outcome.is_(None), Call.outcome_at.is_(None)), 0),
        else_=Clamp(raw, literal(0, Integer), cap_value),
    )


def handled_aggregates(params: AgentParams) -> dict[str, Any]:
    """Labelled aggregates over handled calls, grouped by `Call.agent_user_id`."""
    return {
        "handled": func.count(),
        "talk_total": func.coalesce(func.sum(func.coalesce(Call.talk_seconds, 0.0)), 0.0),
        "wrap_total": func.coalesce(func.sum(wrap_up_s(params)), 0),
        "wrong_number": func.count().filter(
            and_(Call.outcome.is_not(None), Call.outcome == Outcome.WRONG_NUMBER)
        ),
        "complete": func.count().filter(complete(params)),
    }


def answered_by(answerer: Any, user_id: Any) -> Predicate:
    """`answerer = user_id`, false (not NULL) for a call nobody answered."""
    return and_(answerer.is_not(None), answerer == user_id)


def missed(user_id: int, interfaces: Collection[str]) -> Predicate:
    """`AgentFact` missed: ended, rang unanswered at one of the agent's `interfaces`, not
    answered by them. Read from the unanswered rings (`UnansweredRing`, whose copy of who
    answered the call is the one `repository.missed_counts` counts with)."""
    if not interfaces:
        return literal(False)
    rang_unanswered = exists(
        select(UnansweredRing.call_id).where(
            UnansweredRing.call_id == Call.id,
            UnansweredRing.agent.in_(sorted(interfaces)),
            not_(answered_by(UnansweredRing.call_answered_by, user_id)),
        )
    )
    return and_(Call.ended_at.is_not(None), rang_unanswered)


def agent_set(
    name: AgentSet, user_id: int, interfaces: Collection[str], params: AgentParams
) -> Predicate:
    """The SQL condition of one call set of one agent."""
    match name:
        case AgentSet.HANDLED:
            return handled(user_id)
        case AgentSet.MISSED:
            return missed(user_id, interfaces)
        case AgentSet.OFFERED:
            return or_(handled(user_id), missed(user_id, interfaces))
        case AgentSet.WRONG_NUMBER:
            return and_(
                handled(user_id), Call.outcome.is_not(None), Call.outcome == Outcome.WRONG_NUMBER
            )
        case AgentSet.COMPLETE:
            return and_(handled(user_id), complete(params))


AGENT_TWINS: Mapping[str, Twin] = {
    "offered": Twin(Combine.COUNT, "offered", None, AgentSet.OFFERED),
    "answered": Twin(Combine.COUNT, "handled", None, AgentSet.HANDLED),
    "missed": Twin(Combine.COUNT, "missed", None, AgentSet.MISSED),
    "talk_time": Twin(Combine.COUNT, "talk_total", None, AgentSet.HANDLED),
    "wrap_up": Twin(Combine.COUNT, "wrap_total", None, AgentSet.HANDLED),
    "aht": Twin(Combine.MEAN, "work_total", "handled", AgentSet.HANDLED),
    "wrong_number": Twin(Combine.COUNT, "wrong_number", None, AgentSet.WRONG_NUMBER),
    "completeness": Twin(
        Combine.PERCENT, "complete", "handled", AgentSet.HANDLED, AgentSet.COMPLETE
    ),
}
"""One twin per KPI of `agent_kpis.AGENT_KPIS` (a test keeps the two key sets equal)."""


def with_derived(sums: Mapping[str, float | None]) -> dict[str, float | None]:
    """The aggregates plus those made of others (offered, the AHT's work)."""
    out = dict(sums)
    out["offered"] = (out.get("handled") or 0.0) + (out.get("missed") or 0.0)
    out["work_total"] = (out.get("talk_total") or 0.0) + (out.get("wrap_total") or 0.0)
    return out
