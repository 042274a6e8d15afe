"""Agent and queue reports: the registry's KPIs over a range of local days, with drill-downs.

The database does the counting (one grouped pass per report, see `repository`); this module
rolls the groups up into queues, hours and days, turns sums into KPI values exactly as the
registry's definitions do (`sql.result_of`), and names the call set behind every number so
`GET /api/reports/calls` can list it. Never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls import repository as calls_repository
from callcenter.calls.agents import extension_of
from callcenter.calls.models import Call, Outcome
from callcenter.config import Settings
from callcenter.kpi import KPIS, KpiParams
from callcenter.queues import repository as queues_repository
from callcenter.queues.models import AgentPause
from callcenter.reports import agent_sql, repository, sql
from callcenter.reports.agent_kpis import AGENT_KPIS, AgentParams, RequiredField
from callcenter.reports.agent_sql import AGENT_TWINS, AgentSet
from callcenter.reports.periods import hour_key_start, local_span, offset_segments
from callcenter.reports.repository import TimeRange
from callcenter.reports.schemas import (
    AgentReport,
    AgentRow,
    Figure,
    KpiInfo,
    PauseTime,
    QueueReport,
    RangeOut,
    ReportRow,
)
from callcenter.reports.sql import QUEUE_TWINS, QueueRules, QueueSet, Sums, Twin

DRILL_PATH = "/api/reports/calls"
MAX_RANGE_DAYS = 366


class BadRange(ValueError):
    """The dates asked for make no report (reversed, too long)."""


class UnknownSet(ValueError):
    """A drill-down named a call set that no report produces."""


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What every report of this deployment is computed with."""

    tz: ZoneInfo
    rules: QueueRules
    agent: AgentParams


def agent_params_of(settings: Settings) -> AgentParams:
    required = {
        Outcome(outcome): frozenset(RequiredField(f) for f in fields)
        for outcome, fields in settings.report_required_fields.items()
    }
    return AgentParams(wrap_up_cap_s=settings.report_wrap_up_cap_s, required_fields=required)


async def scope_of(
    session: AsyncSession, settings: Settings, live_levels: Mapping[str, float] | None = None
) -> ReportScope:
    """The thresholds in effect, as on the live board: the supervisors' service-level T of a
    queue, else the one the live board uses (the PBX's), else the default."""
    levels = dict(live_levels or {})
    levels.update(await repository.queue_service_levels(session))
    default = KpiParams(
        service_level_s=float(settings.default_service_level_s),
        short_abandon_s=settings.short_abandon_s,
    )
    return ReportScope(
        tz=ZoneInfo(settings.timezone),
        rules=QueueRules(default=default, service_level_s=levels),
        agent=agent_params_of(settings),
    )


def window_of(first: date, last: date, tz: ZoneInfo, hour: int | None = None) -> TimeRange:
    if last < first:
        raise BadRange("the range ends before it starts")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise BadRange(f"a report covers at most {MAX_RANGE_DAYS} days")
    span = local_span(first, last, tz)
    segments = offset_segments(span.since, span.until, tz)
    return TimeRange(span.since, span.until, segments, hour_of_day=hour)


# --- drill-down addresses --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drill:
    """A call set of a report, narrowed to a queue filter, an agent, a day or an hour."""

    first: date
    last: date
    queues: tuple[str, ...] = ()
    user_id: int | None = None
    day: date | None = None
    hour: int | None = None

    def href(self, call_set: str) -> str:
        params: list[tuple[str, Any]] = [
            ("set", call_set),
            ("from", self.first.isoformat()),
            ("to", self.last.isoformat()),
        ]
        params += [("queue", q) for q in self.queues]
        if self.user_id is not None:
            params.append(("user_id", self.user_id))
        if self.day is not None:
            params.append(("day", self.day.isoformat()))
        if self.hour is not None:
            params.append(("hour", self.hour))
        return f"{DRILL_PATH}?{urlencode(params)}"


def _figures(
    twins: Mapping[str, Twin], sums: Sums, drill: Drill | None, prefix: str
) -> dict[str, Figure]:
    figures = {}
    for key, twin in twins.items():
        result = sql.result_of(twin, sums)
        has_ratio = twin.denominator is not None
        figures[key] = Figure(
            value=result.value,
            numerator=result.numerator if has_ratio else None,
            denominator=result.denominator if has_ratio else None,
            drill=drill.href(f"{prefix}:{twin.drill}") if drill else None,
            numerator_drill=(
                drill.href(f"{prefix}:{twin.numerator_drill}")
                if drill and twin.numerator_drill
                else None
            ),
        )
    return figures


# --- the queue report ------------------------------------------------------------------------


def queue_kpis(rules: QueueRules) -> list[KpiInfo]:
    params = {"t": rules.default.service_level_s, "n": rules.default.short_abandon_s}
    return [
        KpiInfo(
            key=kpi.key,
            unit=kpi.unit,
            name_key=kpi.name_key,
            formula_key=kpi.formula_key,
            params=params,
        )
        for kpi in KPIS
    ]


async def queue_report(
    session: AsyncSession,
    scope: ReportScope,
    first: date,
    last: date,
    queues: Collection[str] | None = None,
) -> QueueReport:
    """Offered, answered, abandoned, service level, ASA, abandon rate... per queue, hour, day."""
    window = window_of(first, last, scope.tz)
    wanted = tuple(sorted(queues)) if queues else ()
    groups = await repository.queue_groups(session, window, scope.rules, wanted or None)
    names = list(sql.queue_aggregates(scope.rules))
    by_queue, by_hour_key = sql.SumsFold(names), sql.SumsFold(names)
    for row in groups:
        queue, start, origin, *values = tuple(row)
        by_queue.add(queue, values)
        by_hour_key.add(sql.hour_key_of(start, origin), values)
    hours, days, everything = sql.SumsFold(names), sql.SumsFold(names), sql.SumsFold(names)
    for key, values in by_hour_key.partials.items():
        hours.add(key % 24, values)
        days.add(hour_key_start(key).date(), values)
        everything.add("total", values)
    per_queue, per_hour, per_day = by_queue.sums(), hours.sums(), days.sums()
    total = everything.sums().get("total", {})
    base = Drill(first, last, queues=wanted)

    def row_of(key: str, label: str, sums: Sums, drill: Drill) -> ReportRow:
        return ReportRow(key=key, label=label, figures=_figures(QUEUE_TWINS, sums, drill, "queue"))

    return QueueReport(
        range=RangeOut(first=first, last=last, timezone=scope.tz.key),
        kpis=queue_kpis(scope.rules),
        rows=[
            row_of(q, q, per_queue[q], Drill(first, last, queues=(q,))) for q in sorted(per_queue)
        ],
        total=row_of("total", "", total, base),
        by_hour=[
            row_of(f"{h:02d}", f"{h:02d}:00", per_hour.get(h, {}), _with(base, hour=h))
            for h in range(24)
        ],
        by_day=[
            row_of(d.isoformat(), d.isoformat(), per_day.get(d, {}), _with(base, day=d))
            for d in _days(first, last)
        ],
    )


def _with(drill: Drill, **changes: Any) -> Drill:
    return Drill(
        first=drill.first,
        last=drill.last,
        queues=changes.get("queues", drill.queues),
        user_id=changes.get("user_id", drill.user_id),
        day=changes.get("day", drill.day),
        hour=changes.get("hour", drill.hour),
    )


def _days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


# --- the agent report ------------------------------------------------------------------------


def agent_kpis(params: AgentParams) -> list[KpiInfo]:
    return [
        KpiInfo(
            key=kpi.key,
            unit=kpi.unit,
            name_key=kpi.name_key,
            formula_key=kpi.formula_key,
            params={"cap": params.wrap_up_cap_s},
        )
        for kpi in AGENT_KPIS
    ]


def user_of_interfaces(
    interfaces: Iterable[str], extensions: Mapping[str, list[int]]
) -> dict[str, int]:
    """The agent user of each PBX interface (ambiguous or unknown extensions are left out)."""
    found = {}
    for interface in interfaces:
        users = extensions.get(extension_of(interface), [])
        if len(users) == 1:
            found[interface] = users[0]
    return found


def pause_seconds(
    pauses: Sequence[AgentPause],
    user_of: Mapping[str, int],
    since: datetime,
    until: datetime,
) -> dict[int, dict[str, float]]:
    """Paused time per user and reason within [since, until): an agent paused in several
    queues at once is paused once (the intervals are merged per user and reason)."""
    intervals: dict[tuple[int, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for pause in pauses:
        user = user_of.get(pause.interface)
        if user is None:
            continue
        start = max(pause.started_at, since)
        end = min(pause.ended_at or until, until)
        if end > start:
            intervals[(user, pause.reason)].append((start, end))
    totals: dict[int, dict[str, float]] = defaultdict(dict)
    for (user, reason), spans in intervals.items():
        totals[user][reason] = _merged_seconds(spans)
    return totals


def _merged_seconds(spans: list[tuple[datetime, datetime]]) -> float:
    total = 0.0
    current_start: datetime | None = None
    current_end: datetime | None = None
    for start, end in sorted(spans):
        if current_end is None or current_start is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += (current_end - current_start).total_seconds()
    return total


async def agent_report(
    session: AsyncSession,
    scope: ReportScope,
    first: date,
    last: date,
    user_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> AgentReport:
    """Offered, answered, missed, talk, AHT, wrap-up, pauses, wrong numbers, completeness."""
    window = window_of(first, last, scope.tz)
    wanted = set(user_ids) if user_ids is not None else None
    handled = await repository.handled_groups(session, window, scope.agent, wanted)
    names = list(agent_sql.handled_aggregates(scope.agent))
    sums_of: dict[int, Sums] = defaultdict(dict)
    for row in handled:
        sql.add_sums(sums_of[int(row.agent_user_id)], {n: row._mapping[n] for n in names})
    extensions = await calls_repository.all_agent_extensions(session)
    ringing = await repository.unanswered_ring_interfaces(session, window)
    rang = {i: u for i, u in user_of_interfaces(ringing, extensions).items() if _kept(u, wanted)}
    for user, n in (await repository.missed_counts(session, window, rang)).items():
        sql.add_sums(sums_of[user], {"missed": n})
    until = min(window.until, now or datetime.now(UTC))
    pauses = await queues_repository.pauses_between(session, window.since, window.until)
    paused_of = user_of_interfaces({p.interface for p in pauses}, extensions)
    paused = pause_seconds(pauses, paused_of, window.since, until)
    users = sorted(u for u in set(sums_of) | set(paused) if _kept(u, wanted))
    names_of = await repository.user_names(session, users)
    total: Sums = {}
    rows = []
    for user in sorted(users, key=lambda u: (names_of.get(u, ""), u)):
        sums = agent_sql.with_derived(sums_of.get(user, {}))
        sql.add_sums(total, sums_of.get(user, {}))
        reasons = paused.get(user, {})
        rows.append(
            AgentRow(
                key=str(user),
                label=names_of.get(user, f"#{user}"),
                user_id=user,
                figures=_figures(AGENT_TWINS, sums, Drill(first, last, user_id=user), "agent"),
                pauses=[PauseTime(reason=r, seconds=s) for r, s in sorted(reasons.items())],
                pause_total_s=sum(reasons.values()),
            )
        )
    total_figures = _figures(AGENT_TWINS, agent_sql.with_derived(total), None, "agent")
    # Across agents only the handled calls are a set of calls: a call missed by two agents
    # counts twice in the sum of their misses.
    everyone = Drill(first, last)
    for key, twin in AGENT_TWINS.items():
        if twin.drill in (AgentSet.HANDLED, AgentSet.WRONG_NUMBER, AgentSet.COMPLETE):
            total_figures[key].drill = everyone.href(f"agent:{twin.drill}")
            if twin.numerator_drill:
                total_figures[key].numerator_drill = everyone.href(f"agent:{twin.numerator_drill}")
    return AgentReport(
        range=RangeOut(first=first, last=last, timezone=scope.tz.key),
        kpis=agent_kpis(scope.agent),
        rows=rows,
        total=ReportRow(key="total", label="", figures=total_figures),
    )


def _kept(user: int, wanted: set[int] | None) -> bool:
    return wanted is None or user in wanted


# --- drill-down: the calls behind a number ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class DrillQuery:
    call_set: str
    first: date
    last: date
    queues: tuple[str, ...] = ()
    user_id: int | None = None
    day: date | None = None
    hour: int | None = None


async def drill_condition(
    session: AsyncSession, scope: ReportScope, query: DrillQuery
) -> ColumnElement[bool]:
    """The condition that selects exactly the calls counted in the figure `query` names."""
    kind, _, name = query.call_set.partition(":")
    window = window_of(query.first, query.last, scope.tz)
    if query.day is not None:
        if not query.first <= query.day <= query.last:
            raise BadRange("the day is outside the range")
        window = window_of(query.day, query.day, scope.tz)
    window = TimeRange(window.since, window.until, window.segments, hour_of_day=query.hour)
    base = repository.ended_in(window)
    if kind == "queue" and name in QueueSet.__members__.values():
        condition = and_(base, sql.queue_set(QueueSet(name), scope.rules))
        if query.queues:
            condition = and_(condition, Call.queue.in_(sorted(query.queues)))
        return condition
    if kind == "agent" and name in AgentSet.__members__.values():
        agent_set = AgentSet(name)
        if query.user_id is None:
            if agent_set not in (AgentSet.HANDLED, AgentSet.WRONG_NUMBER, AgentSet.COMPLETE):
                raise UnknownSet(f"{query.call_set} needs a user_id")
            return and_(base, _all_agents(agent_set, scope.agent))
        interfaces: set[str] = set()
        if agent_set in (AgentSet.MISSED, AgentSet.OFFERED):
            extensions = await calls_repository.all_agent_extensions(session)
            ringing = await repository.unanswered_ring_interfaces(session, window)
            interfaces = {
                i for i, u in user_of_interfaces(ringing, extensions).items() if u == query.user_id
            }
        return and_(base, agent_sql.agent_set(agent_set, query.user_id, interfaces, scope.agent))
    raise UnknownSet(query.call_set)


def _all_agents(agent_set: AgentSet, params: AgentParams) -> ColumnElement[bool]:
    match agent_set:
        case AgentSet.WRONG_NUMBER:
            return and_(
                agent_sql.handled(),
                Call.outcome.is_not(None),
                Call.outcome == Outcome.WRONG_NUMBER,
            )
        case AgentSet.COMPLETE:
            return and_(agent_sql.handled(), agent_sql.complete(params))
        case _:
            return agent_sql.handled()
