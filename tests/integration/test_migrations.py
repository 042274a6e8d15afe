"""Migrations alone make the schema: from zero on SQLite and PostgreSQL, equal to the models."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from callcenter.db import make_engine
from callcenter.migrate import downgrade, upgrade
from callcenter.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _diff_and_tables(url: str) -> tuple[list[Any], set[str]]:
    engine = make_engine(url)
    async with engine.connect() as connection:
        diff = await connection.run_sync(_differences)
        tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    await engine.dispose()
    return diff, tables


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_migrated_database_then_models_and_migrations_agree(database_url: str) -> None:
    diff, tables = await _diff_and_tables(database_url)
    assert diff == []
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


async def test_given_empty_sqlite_when_migrated_up_down_up_then_schema_is_whole(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await upgrade(url)
    await downgrade(url, "base")
    _, tables = await _diff_and_tables(url)
    assert tables <= {"alembic_version"}
    await upgrade(url)
    diff, tables = await _diff_and_tables(url)
    assert diff == []
    assert "calls" in tables
