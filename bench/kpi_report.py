"""KPI reports over 1,000,000 generated calls on PostgreSQL (target: ≤ 1 s per report).

Makes a fresh database, migrates it, generates a month of calls in one
`INSERT … SELECT generate_series` (10 queues, 100 agents; ~80 % answered, abandons short and
long, time-outs, wrong numbers, outcomes with wrap-up, notes; one unanswered ring per ~8
calls in `pbx_events`, and the agents' `unanswered_rings` derived from them as ingest keeps
them), ANALYZEs, then times the queue and agent reports (the service functions the API
calls, Python roll-up included) for the whole month and for one day. Prints p50/p90/max of
several runs with the load average around them (the machine may be shared) and the plans of
the month's queue and missed-call queries, and writes `bench/results/kpi_report.json`. The
database is dropped afterwards unless `--keep`; `--database NAME` reuses a kept one
(migrated to the head revision first, so a new revision's backfill runs on it).

Run from the repository root:

    .venv/bin/python bench/kpi_report.py [--calls 1000000] [--runs 5] [--keep]
    .venv/bin/python bench/kpi_report.py --database cc_bench_kpi_1a2b3c [--runs 9]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg
from _common import percentile, write_result
from sqlalchemy import text

from callcenter.calls import repository as calls_repository
from callcenter.config import Settings
from callcenter.db import make_engine, make_sessionmaker
from callcenter.migrate import upgrade
from callcenter.reports import repository, service

ADMIN_DSN = os.environ.get("CALLCENTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MONTH = (date(2026, 11, 1), date(2026, 11, 30))
DAY = (date(2026, 11, 17), date(2026, 11, 17))
AGENTS = 100
QUEUES = 10

USERS_SQL = f"""
INSERT INTO users (login, name, password_hash, role, locale, queues, is_active, created_at)
SELECT 'agent' || a, 'Agent ' || a, 'x', 'operator', 'ru', '[]', true, now()
FROM generate_series(1, {AGENTS}) a;
INSERT INTO agent_extensions (extension, user_id)
SELECT (100 + a)::text, u.id FROM generate_series(1, {AGENTS}) a
JOIN users u ON u.login = 'agent' || a;
"""

# One row of random draws per call, then the call made of them. Times: November 2026 in
# Moscow (UTC+3), busier in the day than at night.
CALLS_SQL = """
INSERT INTO calls (pbx, call_key, direction, status, caller_num, caller_name, callee_num,
    queue, agent, agent_name, agent_user_id, ringing_agents, started_at, queued_at,
    answered_at, ended_at, wait_seconds, talk_seconds, end_reason, ended_by, outcome,
    outcome_at, notes, updated_at, client_auto_created)
SELECT 'bench', 'k' || g, 'inbound', 'ended', '7916' || lpad(g::text, 7, '0'), '', '8001',
    'q' || queue_n,
    CASE WHEN fate < 0.8 THEN 'Local/' || (100 + agent_n) || '@agents' END,
    '',
    CASE WHEN fate < 0.8 THEN users.id END,
    '[]',
    t0, t0 + interval '3 seconds',
    CASE WHEN fate < 0.8 THEN t0 + (3 + wait) * interval '1 second' END,
    t0 + (3 + wait + CASE WHEN fate < 0.8 THEN talk ELSE 0 END) * interval '1 second',
    wait,
    CASE WHEN fate < 0.8 THEN talk END,
    CASE WHEN fate < 0.8 THEN 'completed' WHEN fate < 0.95 THEN 'abandoned'
         ELSE 'queue_timeout' END,
    'caller',
    CASE WHEN fate >= 0.8 THEN NULL
         WHEN draw < 0.05 THEN 'wrong_number' WHEN draw < 0.25 THEN 'sale'
         WHEN draw < 0.35 THEN 'complaint' WHEN draw < 0.45 THEN 'call_back'
         WHEN draw < 0.9 THEN 'completed' END,
    CASE WHEN fate < 0.8 AND draw < 0.9 THEN
        t0 + (3 + wait + talk + draw * 400) * interval '1 second' END,
    CASE WHEN draw < 0.3 THEN 'notes' ELSE '' END,
    now(), false
FROM (
    SELECT g,
        timestamptz '2026-10-31 21:00:00+00'
            + (floor(random() * 30) * 86400 + 7 * 3600 + random() * 14 * 3600)
              * interval '1 second' AS t0,
        random() AS fate, random() AS draw,
        1 + floor(random() * 10)::int AS queue_n,
        1 + floor(random() * 100)::int AS agent_n,
        round((random() * random() * 120)::numeric, 1)::float8 AS wait,
        round((5 + random() * 400)::numeric, 1)::float8 AS talk
    FROM generate_series(1, :calls) g
) draws
JOIN users ON users.login = 'agent' || agent_n
"""

RINGS_SQL = """
INSERT INTO pbx_events (pbx, event_id, call_key, kind, at, payload, received_at)
SELECT c.pbx, c.call_key || '-rna', c.call_key, 'agent_stopped_ringing',
    c.queued_at + interval '1 second',
    json_build_object('agent', 'Local/' || (101 + (c.id % 100)) || '@agents',
                      'reason', 'no_answer'),
    now()
FROM calls c WHERE c.id % 8 = 0
"""


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def load_average() -> float:
    """The 1-minute load average (the machine has 2 cores and may be shared)."""
    return round(os.getloadavg()[0], 2)


async def timed(runs: int, work: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    await work()  # warm the caches and the connection pool
    load_before = load_average()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        seconds.append(time.perf_counter() - started)
    ordered = sorted(seconds)
    return {
        "p50_s": round(statistics.median(ordered), 4),
        "p90_s": round(percentile(ordered, 0.9), 4),
        "max_s": round(ordered[-1], 4),
        "runs": runs,
        "load_1min_before": load_before,
        "load_1min_after": load_average(),
    }


async def generate(url: str, calls: int) -> float:
    """Fill a migrated, empty database with the month's calls; seconds it took."""
    engine = make_engine(url)
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            for statement in USERS_SQL.strip().split(";\n"):
                await conn.execute(text(statement))
            await conn.execute(text(CALLS_SQL), {"calls": calls})
            await conn.execute(text(RINGS_SQL))
        async with make_sessionmaker(engine)() as session:
            await calls_repository.rebuild_unanswered_rings(session)
            await session.commit()
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def analyze(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("calls", "pbx_events", "unanswered_rings"):
                await conn.execute(text(f"VACUUM ANALYZE {table}"))
    finally:
        await engine.dispose()


async def run(calls: int, runs: int, keep: bool, reuse: str | None) -> dict[str, Any]:
    name = reuse or f"cc_bench_kpi_{secrets.token_hex(3)}"
    if reuse is None:
        await admin(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    try:
        started = time.perf_counter()
        await upgrade(url)
        migrated_s = time.perf_counter() - started
        generated_s = None if reuse else await generate(url, calls)
        await analyze(url)
        return await measure(url, runs) | {
            "database_name": name,
            "migrate_s": round(migrated_s, 1),
            "generate_s": round(generated_s, 1) if generated_s is not None else "reused",
        }
    finally:
        if not keep and reuse is None:
            await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure(url: str, runs: int) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            scope = await service.scope_of(session, settings)
            counts = {
                table: await session.scalar(text(f"SELECT count(*) FROM {table}"))
                for table in ("calls", "pbx_events", "unanswered_rings")
            }
        figures: dict[str, Any] = {}
        for label, (first, last) in (("month", MONTH), ("day", DAY)):
            for kind in ("queue", "agent"):

                async def work(kind: str = kind, first: date = first, last: date = last) -> Any:
                    async with sessionmaker() as session:
                        if kind == "queue":
                            return await service.queue_report(session, scope, first, last)
                        return await service.agent_report(session, scope, first, last)

                figures[f"{kind}_report_{label}"] = await timed(runs, work)
                print(f"{kind} report, {label}: {figures[f'{kind}_report_{label}']}")
        async with sessionmaker() as session:
            report = await service.queue_report(session, scope, *MONTH)
            agents = await service.agent_report(session, scope, *MONTH)
        plans = {
            "queue_month_plan": await _explain(sessionmaker, _queue_query(scope), tuned=True),
            "missed_month_plan": await _explain(
                sessionmaker, await _missed_query(sessionmaker, scope)
            ),
        }
        for key, plan in plans.items():
            print(f"--- {key}")
            print("\n".join(plan))
        return {
            "calls": counts["calls"],
            "pbx_events": counts["pbx_events"],
            "unanswered_rings": counts["unanswered_rings"],
            "offered_in_month": report.total.figures["offered"].value,
            "missed_in_month": sum(r.figures["missed"].value or 0 for r in agents.rows),
            "database": "postgresql",
            "note": "shared 2-core machine: other engineers' tests may run at the same time",
            **figures,
            **plans,
        }
    finally:
        await engine.dispose()


async def _explain(sessionmaker: Any, query: str, *, tuned: bool = False) -> list[str]:
    """The plan of `query` as the report runs it (`tuned`: inside `tuned_for_grouping`)."""
    async with sessionmaker() as session:
        if not tuned:
            plan = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {query}"))
            return [row[0] for row in plan]
        async with repository.tuned_for_grouping(session):
            plan = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {query}"))
            return [row[0] for row in plan]


def _compiled(query: Any) -> str:
    from sqlalchemy.dialects import postgresql

    compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled)


def _queue_query(scope: service.ReportScope) -> str:
    window = service.window_of(*MONTH, scope.tz)
    return _compiled(repository.queue_query(window, scope.rules, None))


async def _missed_query(sessionmaker: Any, scope: service.ReportScope) -> str:
    """The month's missed-call count as `repository.missed_counts` sends it."""
    window = service.window_of(*MONTH, scope.tz)
    async with sessionmaker() as session:
        extensions = await calls_repository.all_agent_extensions(session)
        interfaces = await repository.unanswered_ring_interfaces(session, window)
    users = service.user_of_interfaces(interfaces, extensions)
    return _compiled(repository.missed_query(window, users))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--database", help="reuse this kept database instead of generating one")
    args = parser.parse_args()
    figures = asyncio.run(run(args.calls, args.runs, args.keep, args.database))
    path = write_result("kpi_report", figures)
    print(f"written {path}")


if __name__ == "__main__":
    main()
