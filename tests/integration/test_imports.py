"""Imports end to end: a generated 1C-style workbook with its ground truth, undo, failure
in mid-run, the HTTP flow with roles, and the command line."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.models import AuditEntry, Role
from callcenter.clients.models import Client, Phone
from callcenter.config import Settings
from callcenter.context import AppContext
from callcenter.db import utcnow
from callcenter.imports import files, service
from callcenter.imports.models import BatchStatus, ImportBatch
from callcenter.main import UI_DIR
from callcenter.realtime.streams import user_topic
from callcenter.tasks.models import Task
from tests.factories import login_as, make_user
from tests.import_generator import Generated, generate, insert_base, write_csv, write_xlsx

ROWS = int(os.environ.get("CALLCENTER_IMPORT_TEST_ROWS", "100000"))
"""Rows of the generated workbook (the full 100,000 by default; CI may lower it)."""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    settings.data_dir = tmp_path / "data"
    return settings


async def _dump(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, list[Any]]:
    """Every row of the card tables, to compare the base before and after."""
    async with sessionmaker() as session:
        return {
            table: sorted(
                tuple(row) for row in (await session.execute(text(f"SELECT * FROM {table}")))
            )
            for table in ("organizations", "clients", "phones")
        }


async def _import(
    ctx: AppContext, path: Path, *, name: str | None = None, preview: bool = True
) -> tuple[ImportBatch, dict[str, int]]:
    """Upload, preview and run a file through the service; (finished batch, preview counts)."""
    limits = service.limits_from(ctx.settings)
    async with ctx.sessionmaker() as session:
        batch = await service.create_batch(
            session,
            received=path,
            declared_name=name or path.name,
            data_dir=ctx.settings.data_dir,
            limits=limits,
            region="RU",
            area_code="495",
            user_id=None,
        )
        await service.configure_batch(
            session, batch, data_dir=ctx.settings.data_dir, limits=limits, mapping=None
        )
        previewed = dict(batch.counts)
        await service.start_batch(session, batch, user_id=None)
        await session.commit()
        batch_id = batch.id
    finished = await service.run_batch(
        ctx.sessionmaker, batch_id, ctx.settings.data_dir, limits, user_id=None
    )
    assert finished is not None
    return finished, previewed


def _expected_counts(generated: Generated) -> dict[str, int]:
    expected = generated.expected
    return {
        key: expected[key]
        for key in (
            "create",
            "update",
            "unchanged",
            "merge",
            "reject",
            "clients_created",
            "clients_updated",
            "organizations_created",
        )
    }


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_a_generated_workbook_when_imported_then_exact_counts_and_undo_restores(
    ctx: AppContext, tmp_path: Path
) -> None:
    generated = generate(ROWS, seed=11)
    path = tmp_path / "export.xlsx"
    write_xlsx(path, generated.rows)
    async with ctx.sessionmaker() as session:
        await insert_base(session, generated)
        await session.commit()
    before = await _dump(ctx.sessionmaker)

    batch, previewed = await _import(ctx, path)

    assert batch.status is BatchStatus.DONE, batch.error_message
    expected = _expected_counts(generated)
    assert {k: batch.counts[k] for k in expected} == expected
    assert {k: previewed[k] for k in expected} == expected
    rejects = {k.split(":", 1)[1]: v for k, v in generated.expected.items() if ":" in k}
    assert batch.report["rejects"] == rejects
    assert batch.report["rejected_rows"] == expected["reject"]
    async with ctx.sessionmaker() as session:
        clients = await session.scalar(select(func.count()).select_from(Client))
        imported = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "client.imported")
        )
    assert clients == len(generated.base_people) + expected["clients_created"]
    assert imported == expected["clients_created"] + expected["clients_updated"]

    async with ctx.sessionmaker() as session:
        stored = await session.get(ImportBatch, batch.id)
        assert stored is not None
        undone = await service.undo_batch(session, stored, user_id=None)
        await session.commit()

    assert undone["clients_deleted"] == expected["clients_created"]
    assert undone["clients_restored"] == expected["clients_updated"]
    assert await _dump(ctx.sessionmaker) == before


def _people_csv(path: Path, count: int) -> list[str]:
    """A small CSV of new people; their numbers in file order."""
    numbers = [f"+7916{7_000_000 + i:07d}" for i in range(count)]
    rows: list[list[str | int | float]] = [["ФИО", "Телефон", "Организация"]]
    rows += [[f"Клиентов{i} Иван", n, f"ООО Фирма {i % 7}"] for i, n in enumerate(numbers)]
    write_csv(path, rows, encoding="utf-8")
    return numbers


async def test_given_a_write_that_fails_midway_when_running_then_nothing_is_left(
    ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CHUNK", 10)
    numbers = _people_csv(tmp_path / "people.csv", 60)
    before = await _dump(ctx.sessionmaker)
    limits = service.limits_from(ctx.settings)
    async with ctx.sessionmaker() as session:
        batch = await service.create_batch(
            session,
            received=tmp_path / "people.csv",
            declared_name="people.csv",
            data_dir=ctx.settings.data_dir,
            limits=limits,
            region="RU",
            area_code="495",
            user_id=None,
        )
        await service.configure_batch(
            session, batch, data_dir=ctx.settings.data_dir, limits=limits, mapping=None
        )
        await service.start_batch(session, batch, user_id=None)
        await session.commit()
    taken: list[int] = []

    async def someone_takes_the_last_number(done: int, total: int) -> None:
        # Another writer (a call creating a card, an operator) while the import runs.
        if not taken:
            async with ctx.sessionmaker() as session:
                org = Client(name="Чужой", position="", notes="")
                session.add(org)
                await session.flush()
                session.add(Phone(raw=numbers[-1], e164=numbers[-1], client_id=org.id))
                await session.commit()
                taken.append(org.id)

    finished = await service.run_batch(
        ctx.sessionmaker,
        batch.id,
        ctx.settings.data_dir,
        limits,
        user_id=None,
        on_progress=someone_takes_the_last_number,
    )

    assert finished is not None
    assert finished.status is BatchStatus.FAILED
    assert finished.error_code == "write_failed"
    async with ctx.sessionmaker() as session:
        await session.execute(text("DELETE FROM phones WHERE client_id = :id"), {"id": taken[0]})
        await session.execute(text("DELETE FROM clients WHERE id = :id"), {"id": taken[0]})
        await session.commit()
    assert await _dump(ctx.sessionmaker) == before


async def _queued(ctx: AppContext, path: Path) -> ImportBatch:
    """An uploaded, previewed and started (queued) batch of `path`."""
    limits = service.limits_from(ctx.settings)
    async with ctx.sessionmaker() as session:
        batch = await service.create_batch(
            session,
            received=path,
            declared_name=path.name,
            data_dir=ctx.settings.data_dir,
            limits=limits,
            region="RU",
            area_code="495",
            user_id=None,
        )
        await service.configure_batch(
            session, batch, data_dir=ctx.settings.data_dir, limits=limits, mapping=None
        )
        await service.start_batch(session, batch, user_id=None)
        await session.commit()
        return batch


async def _set_times(ctx: AppContext, batch_id: int, **times: datetime) -> None:
    async with ctx.sessionmaker() as session:
        await session.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(times))
        await session.commit()


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_a_run_whose_process_died_when_sweeping_then_undone_and_failed(
    ctx: AppContext, tmp_path: Path
) -> None:
    _people_csv(tmp_path / "people.csv", 30)
    before = await _dump(ctx.sessionmaker)
    batch = await _queued(ctx, tmp_path / "people.csv")
    data_dir = ctx.settings.data_dir
    # The process claims the run and writes all of it, then dies before marking it done.
    assert await service.claim_batch(ctx.sessionmaker, batch.id)
    prepared = await service.prepare_batch(batch, data_dir, service.limits_from(ctx.settings))
    async with ctx.sessionmaker() as session:
        plan = await service.make_plan(session, prepared)
    await service.apply_plan(ctx.sessionmaker, batch.id, plan, user_id=None, written_at=utcnow())
    assert await _dump(ctx.sessionmaker) != before
    now = utcnow()
    limit = timedelta(minutes=12)
    keep = timedelta(days=30)

    early = await service.sweep(
        ctx.sessionmaker, data_dir, now=now, run_limit=limit, keep_files=keep
    )
    await _set_times(ctx, batch.id, started_at=now - timedelta(minutes=13))
    late = await service.sweep(
        ctx.sessionmaker, data_dir, now=now, run_limit=limit, keep_files=keep
    )

    assert early.lost_runs == []
    assert late.lost_runs == [batch.id]
    async with ctx.sessionmaker() as session:
        swept = await session.get(ImportBatch, batch.id)
        assert swept is not None
        assert (swept.status, swept.error_code) == (BatchStatus.FAILED, service.RUN_LOST)
    assert await _dump(ctx.sessionmaker) == before
    assert not files.upload_path(data_dir, batch.stored_name).exists()


async def test_given_a_run_given_up_while_it_writes_then_it_stops_and_undoes(
    ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CHUNK", 10)
    _people_csv(tmp_path / "people.csv", 40)
    before = await _dump(ctx.sessionmaker)
    batch = await _queued(ctx, tmp_path / "people.csv")

    async def swept_meanwhile(done: int, total: int) -> None:
        # A sweep that took the run for dead (it is not: it must not then finish as done).
        await _set_times(ctx, batch.id, started_at=utcnow() - timedelta(hours=1))
        await service.sweep(
            ctx.sessionmaker,
            ctx.settings.data_dir,
            now=utcnow(),
            run_limit=timedelta(minutes=12),
            keep_files=timedelta(days=30),
        )

    finished = await service.run_batch(
        ctx.sessionmaker,
        batch.id,
        ctx.settings.data_dir,
        service.limits_from(ctx.settings),
        user_id=None,
        on_progress=swept_meanwhile,
    )

    assert finished is not None
    assert finished.status is BatchStatus.FAILED
    assert await _dump(ctx.sessionmaker) == before


async def test_given_old_imports_when_sweeping_then_their_files_go_and_recent_ones_stay(
    client: AsyncClient, ctx: AppContext, supervisor: tuple[str, int], tmp_path: Path
) -> None:
    data_dir = ctx.settings.data_dir
    rows = [["ФИО", "Телефон"], ["Иванов Иван", "89161234567"], ["Петров", "12"]]
    paths = [tmp_path / f"{name}.csv" for name in ("old", "recent", "abandoned")]
    for path in paths:
        write_csv(path, rows, encoding="utf-8")
    old, _ = await _import(ctx, paths[0])
    recent, _ = await _import(ctx, paths[1])
    async with ctx.sessionmaker() as session:
        abandoned = await service.create_batch(
            session,
            received=paths[2],
            declared_name="abandoned.csv",
            data_dir=data_dir,
            limits=service.limits_from(ctx.settings),
            region="RU",
            area_code="495",
            user_id=None,
        )
        await session.commit()
    now = utcnow()
    await _set_times(ctx, old.id, finished_at=now - timedelta(days=31))
    await _set_times(ctx, abandoned.id, created_at=now - timedelta(days=31))
    # Done: the upload and preview went at once; the rejected rows stay for the download.
    assert not files.upload_path(data_dir, recent.stored_name).exists()
    assert not files.preview_path(data_dir, recent.stored_name).exists()
    assert files.rejected_path(data_dir, recent.stored_name).exists()

    result = await service.sweep(
        ctx.sessionmaker,
        data_dir,
        now=now,
        run_limit=timedelta(minutes=12),
        keep_files=timedelta(days=30),
    )

    assert result.expired == [abandoned.id]
    left = {path.name for path in files.imports_dir(data_dir).iterdir()}
    assert left == {files.rejected_path(data_dir, recent.stored_name).name}
    async with ctx.sessionmaker() as session:
        expired = await session.get(ImportBatch, abandoned.id)
        assert expired is not None
        assert (expired.status, expired.error_code) == (BatchStatus.FAILED, service.EXPIRED)
    gone = await client.get(f"/api/imports/{old.id}/rejected.csv")
    kept = await client.get(f"/api/imports/{recent.id}/rejected.csv")
    assert (gone.status_code, gone.json()["detail"]["code"]) == (410, "files_expired")
    assert kept.status_code == 200


async def test_given_a_run_delivered_twice_when_running_then_it_runs_once(
    ctx: AppContext, tmp_path: Path
) -> None:
    _people_csv(tmp_path / "people.csv", 5)
    limits = service.limits_from(ctx.settings)
    async with ctx.sessionmaker() as session:
        batch = await service.create_batch(
            session,
            received=tmp_path / "people.csv",
            declared_name="people.csv",
            data_dir=ctx.settings.data_dir,
            limits=limits,
            region="RU",
            area_code="495",
            user_id=None,
        )
        await service.configure_batch(
            session, batch, data_dir=ctx.settings.data_dir, limits=limits, mapping=None
        )
        await service.start_batch(session, batch, user_id=None)
        await service.start_batch(session, batch, user_id=None)
        await session.commit()

    runs = await asyncio.gather(
        *(
            service.run_batch(
                ctx.sessionmaker, batch.id, ctx.settings.data_dir, limits, user_id=None
            )
            for _ in range(2)
        )
    )

    assert sorted(run is None for run in runs) == [False, True]
    async with ctx.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Client)) == 5


async def test_given_an_imported_card_with_a_task_when_undoing_then_conflict(
    ctx: AppContext, tmp_path: Path
) -> None:
    _people_csv(tmp_path / "people.csv", 5)
    batch, _ = await _import(ctx, tmp_path / "people.csv")
    async with ctx.sessionmaker() as session:
        client_id = await session.scalar(select(func.min(Client.id)))
        session.add(Task(title="Перезвонить", client_id=client_id))
        await session.commit()

    async with ctx.sessionmaker() as session:
        stored = await session.get(ImportBatch, batch.id)
        assert stored is not None
        with pytest.raises(service.UndoConflict) as caught:
            await service.undo_batch(session, stored, user_id=None)

    assert caught.value.details["references"] == {"tasks.client_id": 1}


async def test_given_merged_organisation_cells_when_imported_then_persons_share_an_org(
    ctx: AppContext, tmp_path: Path
) -> None:
    path = tmp_path / "1c.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Контрагент", "ИНН", "Контактное лицо", "Телефон"])
    sheet.append(["ООО «Ромашка»", 7707083893, "Иванов Иван", "8 916 123-45-67"])
    sheet.append([None, None, "Петров Петр", 79031234567])
    sheet.merge_cells("A2:A3")
    sheet.merge_cells("B2:B3")
    book.save(path)

    batch, _ = await _import(ctx, path)

    assert batch.counts["organizations_created"] == 1
    assert batch.counts["clients_created"] == 2
    async with ctx.sessionmaker() as session:
        orgs = set((await session.scalars(select(Client.organization_id))).all())
    assert len(orgs) == 1
    assert None not in orgs


# -- HTTP --------------------------------------------------------------------------------------


@pytest.fixture
async def supervisor(client: AsyncClient, ctx: AppContext) -> tuple[str, int]:
    async with ctx.sessionmaker() as session:
        user = await make_user(session, role=Role.SUPERVISOR, login="boss")
        await make_user(session, role=Role.OPERATOR, login="op")
        await session.commit()
        user_id = user.id
    return await login_as(client, "boss"), user_id


async def test_given_a_supervisor_when_importing_over_http_then_preview_run_report_undo(
    client: AsyncClient, ctx: AppContext, supervisor: tuple[str, int], tmp_path: Path
) -> None:
    csrf, user_id = supervisor
    headers = {"X-CSRF-Token": csrf}
    generated = generate(400, seed=3)
    generated.rows.append(["", "", "", '=HYPERLINK("http://evil")', "", "abc", "", ""])
    path = tmp_path / "export.xlsx"
    write_xlsx(path, generated.rows)
    topic = user_topic(user_id)
    start = await ctx.streams.last_id(topic)

    uploaded = await client.post(
        "/api/imports",
        files={"file": ("../../etc/Клиенты.xlsx", path.read_bytes(), "application/octet-stream")},
        data={"region": "RU", "area_code": "495"},
        headers=headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    batch = uploaded.json()
    assert batch["file_name"] == "Клиенты.xlsx"
    assert batch["status"] == "uploaded"
    assert batch["mapping"]["full_name"] == ["Контактное лицо"]
    names = [" ".join(str(row[3]).split()) for row in generated.rows[2:]]
    assert batch["samples"]["Контактное лицо"] == [n for n in names if n][:3]
    assert list((ctx.settings.data_dir / "imports").glob("*.xlsx")) != []
    batch_id = batch["id"]

    mapped = await client.put(
        f"/api/imports/{batch_id}/mapping",
        json={"mapping": batch["mapping"], "save_as": "1С контрагенты"},
        headers=headers,
    )
    assert mapped.status_code == 200, mapped.text
    counts = mapped.json()["counts"]
    assert counts["reject"] == generated.expected["reject"] + 1

    page = await client.get(f"/api/imports/{batch_id}/preview?decision=reject&limit=5")
    assert page.status_code == 200
    assert page.json()["total"] == counts["reject"]
    assert {item["decision"] for item in page.json()["items"]} == {"reject"}
    shown = page.json()["items"][0]
    source = generated.rows[shown["line"] - 1]
    assert shown["cells"]["Контактное лицо"] == str(source[3])[:200]  # long cells are cut
    assert set(shown["cells"]) == {c for cols in batch["mapping"].values() for c in cols}
    everything = await client.get(f"/api/imports/{batch_id}/preview?offset=10&limit=3")
    assert [i["line"] for i in everything.json()["items"]] == [13, 14, 15]

    started = await client.post(f"/api/imports/{batch_id}/run", headers=headers)
    assert started.status_code == 202, started.text
    await ctx.jobs.drain()
    done = (await client.get(f"/api/imports/{batch_id}")).json()
    assert done["status"] == "done", done
    assert done["progress_done"] == done["progress_total"] > 0

    events = await _events(ctx, topic, start)
    assert events[-1]["type"] == "import.progress"
    assert events[-1]["status"] == "done"

    rejected = await client.get(f"/api/imports/{batch_id}/rejected.csv")
    assert rejected.status_code == 200
    assert rejected.content.startswith(b"\xef\xbb\xbf")
    records = list(csv.reader(io.StringIO(rejected.content.decode("utf-8-sig")), delimiter=";"))
    ru = json.loads((UI_DIR / "i18n" / "imports" / "ru.json").read_text(encoding="utf-8"))
    assert records[0][0] == ru["imports.rejected.line"] == "Строка"
    assert records[0][-2:] == [ru["imports.rejected.reason"], ru["imports.rejected.message"]]
    reasons = {r[-2] for r in records[1:]}
    assert reasons <= {v for k, v in ru.items() if k.startswith("imports.reason.")}
    assert ru["imports.reason.phone_invalid"] in reasons
    assert len(records) == counts["reject"] + 1
    evil = next(r for r in records if "HYPERLINK" in r[4])
    assert evil[4].startswith("'=")
    workbook = await client.get(f"/api/imports/{batch_id}/rejected.xlsx")
    assert workbook.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).active
    assert sheet is not None
    assert sheet.max_row == counts["reject"] + 1

    templates = (await client.get("/api/import-templates")).json()
    assert [t["name"] for t in templates] == ["1С контрагенты"]

    undone = await client.post(f"/api/imports/{batch_id}/undo", headers=headers)
    assert undone.status_code == 200, undone.text
    assert undone.json()["batch"]["status"] == "undone"
    assert undone.json()["undone"]["clients_deleted"] == counts["clients_created"]
    again = await client.post(f"/api/imports/{batch_id}/undo", headers=headers)
    assert again.status_code == 409


async def _events(ctx: AppContext, topic: str, start: str) -> list[dict[str, Any]]:
    subscription = await ctx.streams.subscribe([topic], {topic: start})
    found: list[dict[str, Any]] = []
    try:
        iterator = subscription.__aiter__()
        while True:
            event = await asyncio.wait_for(iterator.__anext__(), timeout=1)
            data = json.loads(event.data)
            found.append({**data.get("payload", {}), **data})
            if data.get("payload", data).get("status") == "done":
                return found
    except TimeoutError:
        return found
    finally:
        await subscription.close()


async def test_given_hostile_uploads_when_posting_then_typed_errors_and_nothing_stored(
    client: AsyncClient, ctx: AppContext, supervisor: tuple[str, int], tmp_path: Path
) -> None:
    headers = {"X-CSRF-Token": supervisor[0]}
    evil = tmp_path / "evil.xlsx"
    write_xlsx(
        evil,
        [["ФИО", "Телефон"], ["&xxe;", "1"]],
        sheet_xml_prefix='<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    )
    ctx.settings.import_max_upload_bytes = 4096

    xxe = await client.post(
        "/api/imports", files={"file": ("evil.xlsx", evil.read_bytes())}, headers=headers
    )
    too_big = await client.post(
        "/api/imports", files={"file": ("big.csv", b"x;y\n" * 5000)}, headers=headers
    )
    not_a_file = await client.post("/api/imports", json={}, headers=headers)

    assert (xxe.status_code, xxe.json()["detail"]["code"]) == (422, "xml_forbidden")
    assert (too_big.status_code, too_big.json()["detail"]["code"]) == (413, "too_large")
    assert not_a_file.status_code == 422
    assert list((ctx.settings.data_dir / "imports").iterdir()) == []
    async with ctx.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ImportBatch)) == 0


async def test_given_limits_in_the_settings_when_asking_then_the_page_gets_them(
    client: AsyncClient, ctx: AppContext, supervisor: tuple[str, int]
) -> None:
    ctx.settings.import_max_upload_bytes = 123_456
    ctx.settings.import_max_rows = 789

    response = await client.get("/api/imports/limits")

    assert response.status_code == 200
    assert response.json() == {"max_upload_bytes": 123_456, "max_rows": 789}


def _two_sheets(path: Path) -> None:
    """A cover sheet with a name column, and a sheet whose columns have no name guess."""
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "Контакты"
    first.append(["ФИО", "Телефон"])
    first.append(["Иванов Иван", "89161234567"])
    second = book.create_sheet("Выгрузка")
    second.append(["Кто", "Телефон", "Город"])
    second.append(["Петров Пётр", "8 916 765-43-21", ""])
    second.append(["", "84951234567", "Москва"])
    second.append(["Сидоров", "", "Тверь"])
    book.save(path)


async def test_given_a_sheet_without_a_name_guess_when_choosing_it_then_columns_reread_only(
    client: AsyncClient, ctx: AppContext, supervisor: tuple[str, int], tmp_path: Path
) -> None:
    headers = {"X-CSRF-Token": supervisor[0]}
    path = tmp_path / "two.xlsx"
    _two_sheets(path)
    uploaded = await client.post(
        "/api/imports", files={"file": ("two.xlsx", path.read_bytes())}, headers=headers
    )
    batch_id = uploaded.json()["id"]
    previewed = await client.put(f"/api/imports/{batch_id}/mapping", json={}, headers=headers)
    assert previewed.json()["status"] == "previewed"

    chosen = await client.put(
        f"/api/imports/{batch_id}/mapping", json={"sheet": "Выгрузка"}, headers=headers
    )
    unmapped = await client.put(f"/api/imports/{batch_id}/mapping", json={}, headers=headers)
    by_hand = await client.put(
        f"/api/imports/{batch_id}/mapping",
        json={"mapping": {"full_name": "Кто", "phone": "Телефон"}},
        headers=headers,
    )

    assert chosen.status_code == 200, chosen.text
    body = chosen.json()
    assert (body["status"], body["sheet"]) == ("uploaded", "Выгрузка")
    assert body["headers"] == ["Кто", "Телефон", "Город"]
    assert body["mapping"] == {"phone": ["Телефон"]}
    assert body["counts"] == {}
    assert body["samples"] == {
        "Кто": ["Петров Пётр", "Сидоров"],
        "Телефон": ["8 916 765-43-21", "84951234567"],
        "Город": ["Москва", "Тверь"],
    }
    assert unmapped.status_code == 422
    assert unmapped.json()["detail"]["code"] == "bad_mapping"
    assert unmapped.json()["detail"]["reason"] == "no_name_column"
    assert by_hand.status_code == 200, by_hand.text
    counts = by_hand.json()["counts"]
    assert (by_hand.json()["status"], counts["create"], counts["reject"]) == ("previewed", 2, 1)
    assert by_hand.json()["samples"] == body["samples"]


async def test_given_a_mapping_naming_a_missing_column_then_a_typed_reason(
    client: AsyncClient, ctx: AppContext, supervisor: tuple[str, int], tmp_path: Path
) -> None:
    headers = {"X-CSRF-Token": supervisor[0]}
    path = tmp_path / "two.xlsx"
    _two_sheets(path)
    uploaded = await client.post(
        "/api/imports", files={"file": ("two.xlsx", path.read_bytes())}, headers=headers
    )
    url = f"/api/imports/{uploaded.json()['id']}/mapping"

    missing = await client.put(url, json={"mapping": {"full_name": "Имя"}}, headers=headers)
    unknown = await client.put(url, json={"mapping": {"nickname": "ФИО"}}, headers=headers)
    twice = await client.put(
        url, json={"mapping": {"full_name": ["ФИО", "Телефон"]}}, headers=headers
    )

    assert missing.status_code == unknown.status_code == twice.status_code == 422
    assert {k: missing.json()["detail"][k] for k in ("code", "reason", "field", "column")} == {
        "code": "bad_mapping",
        "reason": "no_such_column",
        "field": "full_name",
        "column": "Имя",
    }
    assert unknown.json()["detail"]["reason"] == "unknown_field"
    assert unknown.json()["detail"]["field"] == "nickname"
    assert twice.json()["detail"]["reason"] == "one_column_only"


async def test_given_an_english_speaking_supervisor_when_downloading_rejects_then_english(
    client: AsyncClient, ctx: AppContext, tmp_path: Path
) -> None:
    async with ctx.sessionmaker() as session:
        await make_user(session, role=Role.SUPERVISOR, login="lead", locale="en")
        await session.commit()
    headers = {"X-CSRF-Token": await login_as(client, "lead")}
    path = tmp_path / "few.csv"
    path.write_text("ФИО;Телефон\nИванов;89161234567\nПетров;12\n", encoding="utf-8")
    uploaded = await client.post(
        "/api/imports", files={"file": ("few.csv", path.read_bytes())}, headers=headers
    )
    batch_id = uploaded.json()["id"]
    await client.put(f"/api/imports/{batch_id}/mapping", json={}, headers=headers)
    await client.post(f"/api/imports/{batch_id}/run", headers=headers)
    await ctx.jobs.drain()

    rejected = await client.get(f"/api/imports/{batch_id}/rejected.csv")

    records = list(csv.reader(io.StringIO(rejected.content.decode("utf-8-sig")), delimiter=";"))
    en = json.loads((UI_DIR / "i18n" / "imports" / "en.json").read_text(encoding="utf-8"))
    assert records[0] == ["Row", "ФИО", "Телефон", "Reason", "Details"]
    assert records[1][:3] == ["3", "Петров", "12"]
    assert records[1][3] == en["imports.reason.phone_invalid"]


async def test_given_an_operator_when_uploading_then_forbidden(
    client: AsyncClient, ctx: AppContext, supervisor: tuple[str, int]
) -> None:
    csrf = await login_as(client, "op")

    response = await client.post(
        "/api/imports", files={"file": ("a.csv", b"x;y\n")}, headers={"X-CSRF-Token": csrf}
    )

    assert response.status_code == 403


# -- command line ------------------------------------------------------------------------------


def test_given_a_file_when_importing_on_the_command_line_then_preview_and_report(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from callcenter.cli import _parser

    _people_csv(tmp_path / "people.csv", 12)
    parser = _parser()

    dry = parser.parse_args(["import", str(tmp_path / "people.csv"), "--dry-run"])
    assert dry.handler(dry, settings) == 0
    preview = capsys.readouterr().out
    run = parser.parse_args(
        [
            "import",
            str(tmp_path / "people.csv"),
            "--yes",
            "--mapping",
            "full_name=ФИО,phone=Телефон",
        ]
    )
    assert run.handler(run, settings) == 0
    report = capsys.readouterr().out

    assert "dry run: nothing written" in preview
    assert "12" in preview
    assert "done: batch 2: 12 created" in report
    undo = parser.parse_args(["import", "--undo", "2"])
    assert undo.handler(undo, settings) == 0
    assert "undone" in capsys.readouterr().out
