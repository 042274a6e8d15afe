"""Import of 100,000 rows end to end, and caller lookup by phone among 1,000,000 clients.

(a) ``import``: the generated 1C-style workbook of the tests (``tests/import_generator.py``:
    messy phones in every format of the phones.py table, duplicates within the file and
    against a base, organisations with several persons, broken rows), on SQLite and on
    PostgreSQL. Timed: upload (file checks, header, mapping guess), preview (read,
    normalise, plan against the base), and the run, which is what the targets are about:
    read, normalise, dedupe against the base as it is at run time, and write everything in
    chunked transactions with the undo record and audit entries (target ≤ 10 s on
    PostgreSQL). The counts are checked against the generator's ground truth; the batch is
    then undone (timed too).
(b) ``lookup``: 1,000,000 clients with a mobile number each, bulk-loaded with COPY into a
    fresh PostgreSQL database, then random numbers in mixed formats (9 in 10 known) looked
    up: as the screen pop does it (normalise + ``clients.service.owners_of`` inside the
    transaction that applies the ring event; target p99 ≤ 1 ms), as an API request does it
    (``clients.service.lookup`` in a session of its own: pool check-out with pre-ping,
    BEGIN, query, ROLLBACK; and once without the pre-ping), and the bare query.

Run from the repository root:

    .venv/bin/python bench/import.py [--rows 100000] [--clients 1000000] [--lookups 5000]
        [--skip-sqlite] [--skip-postgres] [--skip-lookup] [--keep]

Figures are printed and written to ``bench/results/import.json``. The machine is shared:
quote the figures with that in mind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from _common import percentile, write_result
from sqlalchemy import text

from callcenter.clients import repository as clients_repository
from callcenter.clients import service as clients_service
from callcenter.db import make_engine, make_sessionmaker
from callcenter.imports import service
from callcenter.imports.models import BatchStatus, ImportBatch
from callcenter.imports.reader import Limits
from callcenter.migrate import upgrade
from callcenter.phones import phone_identity
from tests.import_generator import generate, insert_base, write_xlsx

ADMIN_DSN = os.environ.get("CALLCENTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
LOADED_AT = datetime(2026, 11, 1, tzinfo=UTC)
CHECKED = ("create", "update", "unchanged", "merge", "reject", "clients_created")


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def fresh_postgres() -> tuple[str, str]:
    name = f"cc_bench_import_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


async def stopwatch(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work()
    return time.perf_counter() - started, result


# -- (a) import ---------------------------------------------------------------------------------


async def bench_import(url: str, rows: int, workdir: Path) -> dict[str, Any]:
    await upgrade(url)
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    generated = generate(rows, seed=2026)
    source = workdir / "export.xlsx"
    write_xlsx(source, generated.rows)
    async with sessionmaker() as session:
        await insert_base(session, generated)
        await session.commit()
    data_dir = workdir / "data"
    limits = Limits()

    async def upload() -> int:
        async with sessionmaker() as session:
            batch = await service.create_batch(
                session,
                received=workdir / "upload.xlsx",
                declared_name="export.xlsx",
                data_dir=data_dir,
                limits=limits,
                region="RU",
                area_code="495",
                user_id=None,
            )
            await session.commit()
            return batch.id

    async def preview(batch_id: int) -> None:
        async with sessionmaker() as session:
            batch = await session.get(ImportBatch, batch_id)
            assert batch is not None
            await service.configure_batch(
                session, batch, data_dir=data_dir, limits=limits, mapping=None
            )
            await service.start_batch(session, batch, user_id=None)
            await session.commit()

    (workdir / "upload.xlsx").write_bytes(source.read_bytes())
    upload_s, batch_id = await stopwatch(upload)
    preview_s, _ = await stopwatch(lambda: preview(batch_id))
    run_s, batch = await stopwatch(
        lambda: service.run_batch(sessionmaker, batch_id, data_dir, limits, user_id=None)
    )
    assert batch is not None
    assert batch.status is BatchStatus.DONE, batch.error_message
    mismatches = {
        k: (batch.counts[k], generated.expected[k])
        for k in CHECKED
        if batch.counts[k] != generated.expected[k]
    }

    async def undo() -> dict[str, int]:
        async with sessionmaker() as session:
            stored = await session.get(ImportBatch, batch_id)
            assert stored is not None
            counts = await service.undo_batch(session, stored, user_id=None)
            await session.commit()
            return counts

    undo_s, _ = await stopwatch(undo)
    await engine.dispose()
    data_rows = batch.counts["rows"]
    return {
        "rows": data_rows,
        "upload_s": round(upload_s, 2),
        "preview_s": round(preview_s, 2),
        "run_s": round(run_s, 2),
        "run_rows_per_s": round(data_rows / run_s),
        "undo_s": round(undo_s, 2),
        "counts": batch.counts,
        "counts_match_ground_truth": not mismatches,
        "mismatches": mismatches,
    }


# -- (b) lookup -----------------------------------------------------------------------------------


def _number(i: int) -> str:
    return f"+79{i:09d}"


async def load_clients(dsn: str, count: int) -> float:
    """`count` clients and one mobile number each, with COPY; returns seconds."""
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        numbers = random.Random(7).sample(range(10**9), count)
        await conn.execute("SET synchronous_commit = off")
        await conn.copy_records_to_table(
            "clients",
            records=[(i, f"Клиент {i}", "", "", LOADED_AT, LOADED_AT) for i in range(1, count + 1)],
            columns=["id", "name", "position", "notes", "created_at", "updated_at"],
        )
        await conn.copy_records_to_table(
            "phones",
            records=[
                (i, _number(n), _number(n), "", "mobile", False, i, LOADED_AT)
                for i, n in enumerate(numbers, start=1)
            ],
            columns=["id", "raw", "e164", "extension", "kind", "shared", "client_id", "created_at"],
        )
        await conn.execute("SELECT setval(pg_get_serial_sequence('clients', 'id'), $1)", count)
        await conn.execute("SELECT setval(pg_get_serial_sequence('phones', 'id'), $1)", count)
        await conn.execute("ANALYZE clients; ANALYZE phones; ANALYZE organizations")
    finally:
        await conn.close()
    return time.perf_counter() - started


def _formats(e164: str) -> list[str]:
    national = e164[2:]
    return [
        e164,
        "8" + national,
        f"8 ({national[:3]}) {national[3:6]}-{national[6:8]}-{national[8:]}",
    ]


async def bench_lookup(url: str, dsn: str, count: int, lookups: int) -> dict[str, Any]:
    await upgrade(url)
    load_s = await load_clients(dsn, count)
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    phones = phone_identity("RU", "495")
    async with sessionmaker() as session:
        sample = text("SELECT e164 FROM phones TABLESAMPLE SYSTEM (2) LIMIT 20000")
        known = [row[0] for row in await session.execute(sample)]
    rnd = random.Random(11)
    queries = []
    for _ in range(lookups):
        e164 = rnd.choice(known) if rnd.random() < 0.9 else f"+7999{rnd.randrange(10**7):07d}"
        queries.append(rnd.choice(_formats(e164)))

    per_request: list[float] = []
    for raw in queries[:200]:  # warm the pool, the plan cache and the buffers
        async with sessionmaker() as session:
            await clients_service.lookup(session, phones, raw)
    found = 0
    for raw in queries:
        started = time.perf_counter()
        async with sessionmaker() as session:
            result = await clients_service.lookup(session, phones, raw)
        per_request.append(time.perf_counter() - started)
        found += bool(result.owners)
    # As the screen pop does it: the caller's number is read and its owners found inside
    # the transaction that applies the ring event (calls.service._identify_caller and
    # caller_card), so the lookup costs no session, BEGIN or pool check of its own.
    pop: list[float] = []
    async with sessionmaker() as session:
        for raw in queries:
            started = time.perf_counter()
            e164 = phones.e164(raw)
            assert e164 is not None
            await clients_service.owners_of(session, e164)
            pop.append(time.perf_counter() - started)
    await engine.dispose()
    # An API request without the pool's pre-ping (one round trip less per checkout), to show
    # what the pre-ping costs; the app keeps it (see the report of the benchmark).
    unpinged = make_engine(url, pool_pre_ping=False)
    unpinged_sessions = make_sessionmaker(unpinged)
    no_ping: list[float] = []
    for raw in queries[:200]:
        async with unpinged_sessions() as session:
            await clients_service.lookup(session, phones, raw)
    for raw in queries:
        started = time.perf_counter()
        async with unpinged_sessions() as session:
            await clients_service.lookup(session, phones, raw)
        no_ping.append(time.perf_counter() - started)
    await unpinged.dispose()
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    bare: list[float] = []
    async with sessionmaker() as session:
        for raw in queries:
            e164 = phones.e164(raw)
            assert e164 is not None
            started = time.perf_counter()
            await clients_repository.owner_rows_by_e164(session, e164)
            bare.append(time.perf_counter() - started)
        plan = "\n".join(
            row[0]
            for row in await session.execute(
                text(
                    "EXPLAIN ANALYZE SELECT phones.id FROM phones LEFT JOIN clients ON "
                    "clients.id = phones.client_id LEFT JOIN organizations ON organizations.id"
                    " = coalesce(clients.organization_id, phones.organization_id) "
                    "WHERE phones.e164 = :e ORDER BY phones.id"
                ),
                {"e": known[0]},
            )
        )
    await engine.dispose()
    for values in (per_request, bare, pop, no_ping):
        values.sort()

    def ms(values: list[float], q: float) -> float:
        return round(percentile(values, q) * 1000, 3)

    return {
        "clients": count,
        "load_s": round(load_s, 1),
        "lookups": lookups,
        "found": found,
        "request_p50_ms": ms(per_request, 0.5),
        "request_p99_ms": ms(per_request, 0.99),
        "request_max_ms": ms(per_request, 1.0),
        "request_no_pre_ping_p50_ms": ms(no_ping, 0.5),
        "request_no_pre_ping_p99_ms": ms(no_ping, 0.99),
        "screen_pop_p50_ms": ms(pop, 0.5),
        "screen_pop_p99_ms": ms(pop, 0.99),
        "screen_pop_max_ms": ms(pop, 1.0),
        "query_p50_ms": ms(bare, 0.5),
        "query_p99_ms": ms(bare, 0.99),
        "query_max_ms": ms(bare, 1.0),
        "plan": plan,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-lookup", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL databases")
    args = parser.parse_args()
    figures: dict[str, Any] = {"note": "shared 2-core machine; other work ran meanwhile"}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if not args.skip_sqlite:
            (workdir / "sqlite").mkdir()
            url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
            figures["import_sqlite"] = await bench_import(url, args.rows, workdir / "sqlite")
            print("import, SQLite:", _summary(figures["import_sqlite"]))
        if not args.skip_postgres:
            name, url = await fresh_postgres()
            try:
                (workdir / "pg").mkdir()
                figures["import_postgres"] = await bench_import(url, args.rows, workdir / "pg")
                print("import, PostgreSQL:", _summary(figures["import_postgres"]))
            finally:
                if not args.keep:
                    await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if not args.skip_lookup:
        name, url = await fresh_postgres()
        dsn = f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
        try:
            figures["lookup_postgres"] = await bench_lookup(url, dsn, args.clients, args.lookups)
        finally:
            if not args.keep:
                await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        lookup = figures["lookup_postgres"]
        print(
            f"lookup among {lookup['clients']:,} clients (PostgreSQL): per request p50 "
            f"{lookup['request_p50_ms']} ms, p99 {lookup['request_p99_ms']} ms (without pre-ping"
            f" p99 {lookup['request_no_pre_ping_p99_ms']} ms); as the screen pop does it p50 "
            f"{lookup['screen_pop_p50_ms']} ms, p99 {lookup['screen_pop_p99_ms']} ms; bare query "
            f"p50 {lookup['query_p50_ms']} ms, p99 {lookup['query_p99_ms']} ms "
            f"(loaded in {lookup['load_s']} s)"
        )
        print(lookup["plan"])
    path = write_result("import", figures)
    print(f"written to {path}")


def _summary(result: dict[str, Any]) -> str:
    return (
        f"{result['rows']:,} rows: run {result['run_s']} s ({result['run_rows_per_s']:,} rows/s), "
        f"upload {result['upload_s']} s, preview {result['preview_s']} s, undo "
        f"{result['undo_s']} s; counts match ground truth: {result['counts_match_ground_truth']}"
    )


if __name__ == "__main__":
    asyncio.run(main())
