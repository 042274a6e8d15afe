"""KPI reports over 1,000,000 generated calls on PostgreSQL (target: ≤ 1 s per report).

Makes a fresh database, migrates it, generates a month of calls in one
`INSERT … SELECT generate_series` (10 queues, 100 agents; ~80 % answered, abandons short and
long, time-outs, wrong numbers, outcomes with wrap-up, notes; one unanswered ring per ~8
calls in `pbx_events`), ANALYZEs, then times the queue and agent reports (the service
functions the API calls, Python roll-up included) for the whole month and for one day.
Prints p50/max of several runs and the plan of the month's queue query, and writes
`bench/results/kpi_report.json`. The database is dropped afterwards unless `--keep`.

Run from the repository root:

    .venv/bin/python bench/kpi_report.py [--calls 1000000] [--runs 5] [--keep]
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


async def timed(runs: int, work: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    await work()  # warm the caches and the connection pool
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
    }


async def run(calls: int, runs: int, keep: bool) -> dict[str, Any]:
    name = f"cc_bench_kpi_{secrets.token_hex(3)}"
    await admin(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    engine = make_engine(url)
    try:
        await upgrade(url)
        started = time.perf_counter()
        async with engine.begin() as conn:
            for statement in USERS_SQL.strip().split(";\n"):
                await conn.execute(text(statement))
            await conn.execute(text(CALLS_SQL), {"calls": calls})
            await conn.execute(text(RINGS_SQL))
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE calls"))
            await conn.execute(text("VACUUM ANALYZE pbx_events"))
        generated_s = time.perf_counter() - started
        settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            scope = await service.scope_of(session, settings)
            rings = await session.scalar(text("SELECT count(*) FROM pbx_events"))
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
            window = service.window_of(*MONTH, scope.tz)
            query = _queue_query(window, scope)
            await repository._tune_for_grouping(session, "enable_seqscan = off")
            plan = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {query}"))
            explain = [row[0] for row in plan]
        print("\n".join(explain))
        return {
            "calls": calls,
            "unanswered_rings": rings,
            "generate_s": round(generated_s, 1),
            "offered_in_month": report.total.figures["offered"].value,
            "database": "postgresql",
            "note": "shared 2-core machine; other engineers' tests ran at the same time",
            **figures,
            "queue_month_plan": explain,
        }
    finally:
        await engine.dispose()
        if not keep:
            await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _queue_query(window: repository.TimeRange, scope: service.ReportScope) -> str:
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql

    from callcenter.calls.models import Call
    from callcenter.reports import sql

    hour_key = sql.local_hour_key(sql.REPORT_TIME, window.segments).label("hour_key")
    aggregates = [e.label(n) for n, e in sql.queue_aggregates(scope.rules).items()]
    query = (
        select(Call.queue, hour_key, *aggregates)
        .where(repository.ended_in(window), sql.queue_fact())
        .group_by(Call.queue, hour_key)
    )
    compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    figures = asyncio.run(run(args.calls, args.runs, args.keep))
    path = write_result("kpi_report", figures)
    print(f"written {path}")


if __name__ == "__main__":
    main()
