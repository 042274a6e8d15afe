"""The KPI registry's definitions compiled to SQL, so big ranges are counted by the database.

`callcenter.kpi` (queue KPIs) and `callcenter.reports.agent_kpis` (agent KPIs) define every
figure as a pure function over call facts; the live board evaluates them in Python. Here
each of those definitions has an SQL twin: the call sets it counts (named, so a figure's
drill-down lists exactly those calls) and how its numerator and denominator are aggregated.
`tests/integration/test_report_sql_twins.py` runs both over generated calls and asserts the
numbers are equal, and that no KPI of the registry lacks a twin here.

Every comparison is written NULL-safe (`x IS NOT NULL AND x = v`), so SQL's three-valued
logic never drops a call that the Python definition keeps.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from callcenter.calls.models import Call, Outcome
from callcenter.db import UtcDateTime
from callcenter.events import EndReason
from callcenter.kpi import KpiParams, KpiResult
from callcenter.reports.periods import EPOCH, OffsetSegment, epoch_s

Predicate = ColumnElement[bool]

# --- time: epoch seconds and local hour keys on SQLite and PostgreSQL -----------------------


class EpochSeconds(FunctionElement[int]):
    """Whole seconds since 1970-01-01 UTC of a stored UTC timestamp."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(EpochSeconds)
def _epoch_sqlite(element: EpochSeconds, compiler: Any, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as ISO text; strftime('%s') reads them as UTC.
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(EpochSeconds, "postgresql")
def _epoch_postgresql(element: EpochSeconds, compiler: Any, **kw: Any) -> str:
    # date_part gives a double (exact to the microsecond for these dates); EXTRACT gives a
    # numeric since PostgreSQL 14, several times slower over a million rows.
    inner = compiler.process(element.clauses, **kw)
    return f"CAST(floor(date_part('epoch', {inner})) AS BIGINT)"


class Clamp(FunctionElement[int]):
    """`value` within [low, high] (arguments: value, low, high), each evaluated once."""

    type = BigInteger()
    inherit_cache = True
    name = "clamp"


@compiles(Clamp)
def _clamp_sqlite(element: Clamp, compiler: Any, **kw: Any) -> str:
    value, low, high = (compiler.process(c, **kw) for c in element.clauses)
    return f"min(max({value}, {low}), {high})"


@compiles(Clamp, "postgresql")
def _clamp_postgresql(element: Clamp, compiler: Any, **kw: Any) -> str:
    value, low, high = (compiler.process(c, **kw) for c in element.clauses)
    return f"LEAST(GREATEST({value}, {low}), {high})"


def local_seconds(column: Any, segments: Sequence[OffsetSegment]) -> Any:
    """Seconds since 1970-01-01 on the local wall clock (`segments` cover the range asked)."""
    utc = EpochSeconds(column)
    if len(segments) == 1:
        return utc + segments[0].offset_s
    offset = case(
        *[
            (utc < epoch_s(following.since), current.offset_s)
            for current, following in itertools.pairwise(segments)
        ],
        else_=segments[-1].offset_s,
    )
    return utc + offset


def local_hour_key(column: Any, segments: Sequence[OffsetSegment]) -> Any:
    """Local hours since 1970 (see `periods.local_hour_key`): the bucket of a timestamp."""
    return local_seconds(column, segments) // 3600


class HourStart(FunctionElement[datetime]):
    """The UTC instant at which the hour that holds a timestamp starts, hours being counted
    from an origin (arguments: timestamp, origin)."""

    type = UtcDateTime()
    inherit_cache = True
    name = "hour_start"


@compiles(HourStart)
def _hour_start_sqlite(element: HourStart, compiler: Any, **kw: Any) -> str:
    value, origin = (
        f"CAST(strftime('%s', {compiler.process(c, **kw)}) AS INTEGER)" for c in element.clauses
    )
    return f"datetime({origin} + ({value} - {origin}) / 3600 * 3600, 'unixepoch')"


@compiles(HourStart, "postgresql")
def _hour_start_postgresql(element: HourStart, compiler: Any, **kw: Any) -> str:
    # Integer arithmetic on the stored microseconds: a grouped pass over a million calls
    # spends a good part of its time in date_part('epoch', ...) otherwise.
    value, origin = (compiler.process(c, **kw) for c in element.clauses)
    return f"date_bin('1 hour', {value}, {origin})"


@dataclass(frozen=True, slots=True)
class HourBucket:
    """A timestamp's local hour as two values to group by: `start`, the UTC instant the hour
    starts at, counted in whole hours from `origin`, local midnight of 1970-01-01 at the
    timestamp's UTC offset. The hour key is (start − origin) in hours (`hour_key_of`)."""

    start: Any
    origin: Any
    origin_varies: bool
    """The range has several UTC offsets: `origin` is per row and a grouping key too."""


def hour_bucket(column: Any, segments: Sequence[OffsetSegment]) -> HourBucket:
    """The local hour bucket of `column` (`segments` cover the range asked)."""
    origins = [literal(EPOCH - timedelta(seconds=s.offset_s), UtcDateTime()) for s in segments]
    if len(segments) == 1:
        return HourBucket(HourStart(column, origins[0]), origins[0], origin_varies=False)
    origin = case(
        *[
            (column < following.since, origin)
            for origin, following in zip(origins[:-1], segments[1:], strict=True)
        ],
        else_=origins[-1],
    )
    return HourBucket(HourStart(column, origin), origin, origin_varies=True)


def hour_key_of(start: datetime, origin: datetime) -> int:
    """The local hour key (`periods.local_hour_key`) of a bucket of `hour_bucket`."""
    return int((start - origin).total_seconds()) // 3600


# --- queue KPIs: the call sets of `callcenter.kpi` ------------------------------------------

REPORT_TIME = Call.ended_at
"""A call counts on the local day and hour it ended, as on the live board (a fact exists
once the call has ended)."""


@dataclass(frozen=True, slots=True)
class QueueRules:
    """The thresholds of the queue KPIs: service level T per queue, and the short-call rule."""

    default: KpiParams = field(default_factory=KpiParams)
    service_level_s: Mapping[str, float] = field(default_factory=dict)

    def params_for(self, queue: str) -> KpiParams:
        own = self.service_level_s.get(queue)
        if own is None:
            return self.default
        return KpiParams(service_level_s=own, short_abandon_s=self.default.short_abandon_s)


def _is(column: Any, value: Any) -> Predicate:
    """`column = value`, false (not NULL) when the column is NULL."""
    return and_(column.is_not(None), column == value)


def _service_level_s(rules: QueueRules) -> Any:
    if not rules.service_level_s:
        return literal(rules.default.service_level_s, Float)
    return case(
        {queue: literal(t, Float) for queue, t in rules.service_level_s.items()},
        value=Call.queue,
        else_=literal(rules.default.service_level_s, Float),
    )


def queue_fact() -> Predicate:
    """`kpi.fact_of`: the call entered a queue and has ended."""
    return and_(Call.queue.is_not(None), Call.queued_at.is_not(None), Call.ended_at.is_not(None))


def _answered() -> Predicate:
    return Call.answered_at.is_not(None)


def _short_call(rules: QueueRules) -> Predicate:
    """`kpi.is_short_call`: a wrong number, or abandoned in under N seconds."""
    return or_(
        _is(Call.outcome, Outcome.WRONG_NUMBER),
        and_(
            _is(Call.end_reason, EndReason.ABANDONED),
            Call.wait_seconds.is_not(None),
            Call.wait_seconds < rules.default.short_abandon_s,
        ),
    )


class QueueSet(StrEnum):
    """The call sets the queue KPIs count; each is a drill-down target."""

    OFFERED = "offered"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    TIMED_OUT = "timed_out"
    SHORT = "short"
    COUNTED = "counted"
    """Offered calls the short-call rule keeps: the service level's denominator."""
    ANSWERED_IN_TIME = "answered_in_time"
    ABANDONED_COUNTED = "abandoned_counted"
    ANSWERED_WITH_WAIT = "answered_with_wait"
    ANSWERED_WITH_TALK = "answered_with_talk"


def queue_set(name: QueueSet, rules: QueueRules, *, among_facts: bool = False) -> Predicate:
    """The SQL condition of one call set of the queue KPIs (`among_facts`: the query already
    keeps only queue facts, so the fact condition is not repeated for every set)."""
    fact = true() if among_facts else queue_fact()
    # The short-call rule comes last in a conjunction: PostgreSQL stops at the first false
    # condition, and the rule is the dearest to evaluate for each of a million calls.
    not_short = not_(_short_call(rules))
    counted = and_(fact, not_short)
    match name:
        case QueueSet.OFFERED:
            return fact
        case QueueSet.ANSWERED:
            return and_(fact, _answered())
        case QueueSet.ABANDONED:
            return and_(fact, _is(Call.end_reason, EndReason.ABANDONED))
        case QueueSet.TIMED_OUT:
            return and_(fact, _is(Call.end_reason, EndReason.QUEUE_TIMEOUT))
        case QueueSet.SHORT:
            return and_(fact, _short_call(rules))
        case QueueSet.COUNTED:
            return counted
        case QueueSet.ANSWERED_IN_TIME:
            return and_(
                fact,
                _answered(),
                Call.wait_seconds.is_not(None),
                Call.wait_seconds <= _service_level_s(rules),
                not_short,
            )
        case QueueSet.ABANDONED_COUNTED:
            return and_(fact, _is(Call.end_reason, EndReason.ABANDONED), not_short)
        case QueueSet.ANSWERED_WITH_WAIT:
            return and_(fact, _answered(), Call.wait_seconds.is_not(None))
        case QueueSet.ANSWERED_WITH_TALK:
            return and_(fact, _answered(), Call.talk_seconds.is_not(None))


class Combine(StrEnum):
    COUNT = "count"
    PERCENT = "percent"
    MEAN = "mean"
    MAX = "max"


@dataclass(frozen=True, slots=True)
class Twin:
    """How one registry KPI is aggregated in SQL, and which calls stand behind its numbers.

    `numerator` and `denominator` name aggregates of the grouped query (`queue_aggregates`);
    `drill` is the call set behind the figure itself, `numerator_drill` the one behind its
    numerator when that differs.
    """

    combine: Combine
    numerator: str
    denominator: str | None
    drill: str
    numerator_drill: str | None = None


QUEUE_TWINS: Mapping[str, Twin] = {
    "offered": Twin(Combine.COUNT, "offered", None, QueueSet.OFFERED),
    "answered": Twin(Combine.COUNT, "answered", None, QueueSet.ANSWERED),
    "abandoned": Twin(Combine.COUNT, "abandoned", None, QueueSet.ABANDONED),
    "timed_out": Twin(Combine.COUNT, "timed_out", None, QueueSet.TIMED_OUT),
    "service_level": Twin(
        Combine.PERCENT,
        "answered_in_time",
        "counted",
        QueueSet.COUNTED,
        QueueSet.ANSWERED_IN_TIME,
    ),
    "abandon_rate": Twin(
        Combine.PERCENT,
        "abandoned_counted",
        "counted",
        QueueSet.COUNTED,
        QueueSet.ABANDONED_COUNTED,
    ),
    "asa": Twin(Combine.MEAN, "wait_total", "answered_with_wait", QueueSet.ANSWERED_WITH_WAIT),
    "average_talk": Twin(
        Combine.MEAN, "talk_total", "answered_with_talk", QueueSet.ANSWERED_WITH_TALK
    ),
    "longest_wait": Twin(Combine.MAX, "longest_wait", None, QueueSet.OFFERED),
}
"""One twin per KPI of `callcenter.kpi.KPIS` (a test keeps the two key sets equal)."""

MAX_AGGREGATES = frozenset({"longest_wait"})
"""Aggregates that roll up by max; every other one adds up."""


def queue_aggregates(rules: QueueRules) -> dict[str, Any]:
    """The labelled aggregates one grouped pass over the queue facts (`queue_fact()` in its
    WHERE) computes for the queue KPIs."""

    def among(name: QueueSet) -> Predicate:
        return queue_set(name, rules, among_facts=True)

    counts: dict[str, Any] = {QueueSet.OFFERED.value: func.count()}
    counts |= {
        name.value: func.count().filter(among(name))
        for name in (
            QueueSet.ANSWERED,
            QueueSet.ABANDONED,
            QueueSet.TIMED_OUT,
            QueueSet.COUNTED,
            QueueSet.ANSWERED_IN_TIME,
            QueueSet.ABANDONED_COUNTED,
            QueueSet.ANSWERED_WITH_WAIT,
            QueueSet.ANSWERED_WITH_TALK,
        )
    }
    return {
        **counts,
        "wait_total": func.sum(Call.wait_seconds).filter(among(QueueSet.ANSWERED_WITH_WAIT)),
        "talk_total": func.sum(Call.talk_seconds).filter(among(QueueSet.ANSWERED_WITH_TALK)),
        "longest_wait": func.max(Call.wait_seconds),
    }


Sums = dict[str, float | None]


def add_sums(total: Sums, part: Mapping[str, Any]) -> Sums:
    """Fold one group's aggregates into `total` (sums add, maxima take the larger)."""
    for name, raw in part.items():
        if raw is None:
            total.setdefault(name, None)
            continue
        value = float(raw)
        before = total.get(name)
        if before is None:
            total[name] = value
        elif name in MAX_AGGREGATES:
            total[name] = max(before, value)
        else:
            total[name] = before + value
    return total


class SumsFold:
    """Folds many groups' aggregates (`names`, in that order) by key, as `add_sums` does, on
    plain lists: a month's queue report folds thousands of groups per request."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._maxima = tuple(name in MAX_AGGREGATES for name in self.names)
        self.partials: dict[Any, list[Any]] = {}

    def add(self, key: Any, values: Sequence[Any]) -> None:
        partial = self.partials.get(key)
        if partial is None:
            self.partials[key] = list(values)
            return
        for i, value in enumerate(values):
            if value is None:
                continue
            before = partial[i]
            if before is None:
                partial[i] = value
            elif self._maxima[i]:
                partial[i] = max(before, value)
            else:
                partial[i] = before + value

    def sums(self) -> dict[Any, Sums]:
        """Every key's folded aggregates."""
        return {
            key: {
                n: None if v is None else float(v) for n, v in zip(self.names, partial, strict=True)
            }
            for key, partial in self.partials.items()
        }


def result_of(twin: Twin, sums: Mapping[str, float | None]) -> KpiResult:
    """The registry's `KpiResult` from rolled-up aggregates, exactly as its compute makes it."""
    numerator = sums.get(twin.numerator)
    denominator = sums.get(twin.denominator) if twin.denominator else None
    match twin.combine:
        case Combine.COUNT:
            n = numerator or 0.0
            return KpiResult(n, n, None)
        case Combine.PERCENT:
            hits, base = numerator or 0.0, denominator or 0.0
            return KpiResult(100.0 * hits / base if base else None, hits, base)
        case Combine.MEAN:
            total, n = numerator or 0.0, denominator or 0.0
            return KpiResult(total / n if n else None, total, n)
        case Combine.MAX:
            return KpiResult(numerator, numerator or 0.0, None)
