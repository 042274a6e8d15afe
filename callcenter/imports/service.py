"""Import decisions and their execution: inspect, preview, run (chunked, recorded), undo.

Transactions: a run writes in chunks of :data:`CHUNK` cards or numbers, one transaction
each, so live traffic (screen pops, call records) is never blocked behind one long write.
Every row written is recorded in ``import_changes`` in the same transaction as the row.
If the run fails part-way, everything it had committed is undone from that record before
the batch is marked failed: nothing stays half-imported. ``undo_batch`` does the same for a
finished batch, in one transaction, and refuses (409) when the base has moved on since
(an imported card has calls or tasks now, an updated card was edited again).

CPU-bound steps (reading, normalising, planning) run in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hashlib
import itertools
import json
import shutil
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter import audit
from callcenter.clients.models import Client, Organization, Phone
from callcenter.config import Settings
from callcenter.db import Base, utcnow
from callcenter.imports import files, repository
from callcenter.imports.mapping import (
    ColumnMapping,
    Field,
    column_samples,
    find_header,
    guess_mapping,
    mapping_to_json,
    parse_mapping,
    unique_headers,
)
from callcenter.imports.models import BatchStatus, ChangeAction, ImportBatch, ImportTemplate
from callcenter.imports.normalize import Layout, NormalRow, PhoneValue, RowResult, normalize_row
from callcenter.imports.plan import BaseIndex, Card, Plan, plan_rows
from callcenter.imports.reader import (
    FileErrorCode,
    FileKind,
    FileRejected,
    Limits,
    SourceRow,
    Workbook,
    csv_rows,
    open_file,
    workbook_rows,
)
from callcenter.phones import phone_identity

CHUNK: Final = 5000
"""Cards or numbers written per transaction."""

ProgressCallback = Callable[[int, int], Awaitable[None]]


class ImportStateError(ValueError):
    """The batch is not in a state that allows this step."""


class UndoConflict(Exception):
    """The base changed after the import in ways an undo would destroy."""

    def __init__(self, details: dict[str, Any]) -> None:
        super().__init__(f"undo would destroy later changes: {details}")
        self.details = details


# -- inspecting a file ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileInfo:
    kind: FileKind
    sheets: tuple[str, ...]
    sheet: str | None
    headers: list[str]
    mapping: ColumnMapping
    samples: dict[str, list[str]]
    """Header → its first non-empty values."""


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_bytes=settings.import_max_upload_bytes,
        max_unzipped_bytes=settings.import_max_unzipped_bytes,
        max_rows=settings.import_max_rows,
    )


def _rows(
    path: Path, kind: FileKind, sheets: Sequence[str], sheet: str | None, limits: Limits
) -> Iterator[SourceRow]:
    if kind == "csv":
        return csv_rows(path, limits)
    return workbook_rows(Workbook(path, tuple(sheets), limits), sheet or sheets[0])


def inspect_file(
    path: Path, declared_name: str, limits: Limits, sheet: str | None = None
) -> FileInfo:
    """Check the file, choose the sheet (default: the first non-empty one), find the header
    and guess the mapping. Raises FileRejected. Blocking: run it in a thread."""
    opened = open_file(path, declared_name, limits)
    if opened.kind == "csv":
        headers, samples = head_of(path, "csv", (), None, limits)
        return FileInfo("csv", (), None, headers, guess_mapping(headers), samples)
    if sheet is not None and sheet not in opened.sheets:
        raise FileRejected(FileErrorCode.NO_SUCH_SHEET, f"no sheet named {sheet!r}")
    for name in [sheet] if sheet is not None else opened.sheets:
        head = _head(_rows(path, "xlsx", opened.sheets, name, limits))
        if head is not None:
            headers, samples = head
            return FileInfo("xlsx", opened.sheets, name, headers, guess_mapping(headers), samples)
    raise FileRejected(
        FileErrorCode.EMPTY_FILE, "the sheet is empty" if sheet else "every sheet is empty"
    )


def _head(rows: Iterator[SourceRow]) -> tuple[list[str], dict[str, list[str]]] | None:
    """The headers and the first values of each column; None for a sheet without rows."""
    header_at, seen = find_header(rows)
    if not seen:
        return None
    headers = unique_headers(seen[header_at].cells)
    return headers, column_samples(headers, itertools.chain(seen[header_at + 1 :], rows))


def head_of(
    path: Path, kind: FileKind, sheets: Sequence[str], sheet: str | None, limits: Limits
) -> tuple[list[str], dict[str, list[str]]]:
    """The headers of a sheet (or of a CSV file) and the first values of each column."""
    head = _head(_rows(path, kind, sheets, sheet, limits))
    if head is None:
        raise FileRejected(FileErrorCode.EMPTY_FILE, "no rows")
    return head


@dataclass(slots=True)
class Prepared:
    headers: list[str]
    results: list[RowResult]
    source: dict[int, tuple[str, ...]]

    @property
    def normal_rows(self) -> list[NormalRow]:
        return [r for r in self.results if isinstance(r, NormalRow)]


@contextlib.contextmanager
def _gc_paused(*, keep_frozen: bool = False) -> Iterator[None]:
    """No cyclic garbage collection while a step builds ~10^6 objects that all stay alive.

    Each full collection would walk all of them again (a third of the CPU time of planning
    100,000 rows). The collector is process-wide, so other work of the process keeps its
    cyclic garbage for these few seconds; reference counting still frees everything else.

    `keep_frozen` (only inside a `_gc_frozen` block, which unfreezes them at its end): what
    the step made is frozen before collection resumes; else the first collection after it,
    soon due after so many allocations, would walk all of it once more.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if keep_frozen:
            gc.freeze()
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _gc_frozen() -> Iterator[None]:
    """The objects alive now (the rows and plan of an import, ~10^6) are left out of garbage
    collection until the block ends: the collector keeps running for everything made
    meanwhile, without walking them again at every full collection (that was a third of a
    run: loading the base index and the write loop allocate enough to trigger many).

    Nested blocks freeze what is new and leave the unfreezing to the outermost one.
    """
    outermost = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        yield
    finally:
        if outermost:
            gc.unfreeze()


def plan_paused(results: Sequence[RowResult], index: BaseIndex) -> Plan:
    """`plan_rows` without garbage collection; the plan stays frozen (see `make_plan`)."""
    with _gc_paused(keep_frozen=True):
        return plan_rows(results, index)


def prepare(
    path: Path,
    kind: FileKind,
    sheets: Sequence[str],
    sheet: str | None,
    mapping: ColumnMapping,
    region: str,
    area_code: str,
    limits: Limits,
    *,
    keep_frozen: bool = False,
) -> Prepared:
    """Read every data row and normalise it under `mapping`. Blocking: run it in a thread.
    `keep_frozen`: see `_gc_paused`."""
    with _gc_paused(keep_frozen=keep_frozen):
        return _prepare(path, kind, sheets, sheet, mapping, region, area_code, limits)


def _prepare(
    path: Path,
    kind: FileKind,
    sheets: Sequence[str],
    sheet: str | None,
    mapping: ColumnMapping,
    region: str,
    area_code: str,
    limits: Limits,
) -> Prepared:
    rows = _rows(path, kind, sheets, sheet, limits)
    header_at, seen = find_header(rows)
    if not seen:
        raise FileRejected(FileErrorCode.EMPTY_FILE, "no rows")
    headers = unique_headers(seen[header_at].cells)
    layout = Layout(headers, mapping)
    phones = phone_identity(region, area_code)
    results: list[RowResult] = []
    source: dict[int, tuple[str, ...]] = {}

    def data_rows() -> Iterator[SourceRow]:
        yield from seen[header_at + 1 :]
        yield from rows

    for row in data_rows():
        source[row.line] = row.cells
        results.append(normalize_row(row.line, row.cells, layout, phones))
    if not results:
        raise FileRejected(FileErrorCode.EMPTY_FILE, "a header, but no data rows")
    return Prepared(headers, results, source)


async def make_plan(session: AsyncSession, prepared: Prepared) -> Plan:
    """Decisions for every row against the base as it is now."""
    with _gc_frozen():
        index = await repository.load_index(session, prepared.normal_rows)
        return await asyncio.to_thread(plan_paused, prepared.results, index)


def _kept_report(batch: ImportBatch) -> dict[str, Any]:
    """What the report keeps from the upload through every later step: the column samples."""
    return {"samples": batch.report["samples"]} if "samples" in batch.report else {}


def mapping_of(batch: ImportBatch) -> ColumnMapping:
    return {Field(k): list(v) for k, v in batch.mapping.items()}


async def prepare_batch(
    batch: ImportBatch, data_dir: Path, limits: Limits, *, keep_frozen: bool = False
) -> Prepared:
    """`prepare` for a stored batch, in a worker thread."""
    kind: FileKind = "xlsx" if batch.file_kind == "xlsx" else "csv"
    return await asyncio.to_thread(
        functools.partial(
            prepare,
            files.upload_path(data_dir, batch.stored_name),
            kind,
            batch.sheets,
            batch.sheet,
            mapping_of(batch),
            batch.region,
            batch.area_code,
            limits,
            keep_frozen=keep_frozen,
        )
    )


async def preview_batch(
    session: AsyncSession, batch: ImportBatch, data_dir: Path, limits: Limits
) -> Plan:
    """Plan the batch as it would run now, keep the per-row preview, and the counts."""
    if batch.status not in (BatchStatus.UPLOADED, BatchStatus.PREVIEWED):
        raise ImportStateError(f"batch is {batch.status.value}")
    with _gc_frozen():
        prepared = await prepare_batch(batch, data_dir, limits, keep_frozen=True)
        plan = await make_plan(session, prepared)
        shown = files.ShownCells.of(prepared.headers, mapping_of(batch), prepared.source)
        await asyncio.to_thread(
            files.write_preview, files.preview_path(data_dir, batch.stored_name), plan, shown
        )
    batch.counts = plan.counts()
    batch.report = {**_kept_report(batch), "rejects": dict(plan.rejects())}
    batch.status = BatchStatus.PREVIEWED
    batch.previewed_at = utcnow()
    return plan


# -- applying a plan ------------------------------------------------------------------------------

_CLIENT_COLUMNS: Final = ("name", "position", "email", "notes", "organization_id", "updated_at")
_ORG_INSERT: Final = ("name", "inn", "email", "notes", "created_at", "updated_at")
_CLIENT_INSERT: Final = (
    "name",
    "position",
    "email",
    "notes",
    "organization_id",
    "created_at",
    "updated_at",
)
_PHONE_INSERT: Final = (
    "raw",
    "e164",
    "extension",
    "kind",
    "shared",
    "client_id",
    "organization_id",
    "created_at",
)
_ORG_COLUMNS: Final = ("name", "inn", "email", "notes", "updated_at")


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(slots=True)
class ApplyResult:
    ids: dict[int, int] = field(default_factory=dict)
    """Card ref → database id, for every card the plan touched."""
    written: int = 0


class _Applier:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        batch_id: int,
        user_id: int | None,
        on_progress: ProgressCallback | None,
        total: int,
        written_at: datetime,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.batch_id = batch_id
        self.user_id = user_id
        self.on_progress = on_progress
        self.total = total
        self.result = ApplyResult()
        self.now = written_at

    def card_id(self, card: Card) -> int:
        return card.existing_id if card.existing_id is not None else self.result.ids[card.ref]

    async def _chunked(
        self, items: Sequence[Any], write: Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]
    ) -> None:
        for part in repository.chunks(items, CHUNK):
            async with self.sessionmaker() as session:
                # Written first: the transaction then holds SQLite's write lock (ids).
                running = await repository.set_progress(
                    session, self.batch_id, self.result.written + len(part)
                )
                if not running:
                    raise ImportStateError("the run was given up while it wrote")
                await write(session, part)
                await session.commit()
            self.result.written += len(part)
            if self.on_progress is not None:
                await self.on_progress(self.result.written, self.total)

    def _audit(
        self, entity: str, ids: Sequence[int], action: ChangeAction
    ) -> list[tuple[Any, ...]]:
        details = {"batch_id": self.batch_id, "change": action.value}
        name = f"{entity}.imported"
        return [(self.now, self.user_id, name, entity, str(i), details) for i in ids]

    def _created(self, entity: str, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        created = ChangeAction.CREATED
        return [(self.batch_id, entity, i, created, None, None) for i in ids]

    async def insert_organizations(self, session: AsyncSession, cards: Sequence[Card]) -> None:
        now = self.now
        records = [
            (v["name"], v["inn"], v["email"], v["notes"], now, now)
            for v in (c.values for c in cards)
        ]
        ids = await repository.insert_with_ids(session, Organization, _ORG_INSERT, records)
        self.result.ids.update((c.ref, i) for c, i in zip(cards, ids, strict=True))
        await repository.record_changes(session, self._created("organization", ids))
        await repository.record_audit(
            session, self._audit("organization", ids, ChangeAction.CREATED)
        )

    async def insert_clients(self, session: AsyncSession, cards: Sequence[Card]) -> None:
        now = self.now
        records = [
            (
                c.values["name"],
                c.values["position"],
                c.values["email"],
                c.values["notes"],
                self.card_id(c.org) if c.org is not None else None,
                now,
                now,
            )
            for c in cards
        ]
        ids = await repository.insert_with_ids(session, Client, _CLIENT_INSERT, records)
        self.result.ids.update((c.ref, i) for c, i in zip(cards, ids, strict=True))
        await repository.record_changes(session, self._created("client", ids))
        await repository.record_audit(session, self._audit("client", ids, ChangeAction.CREATED))

    async def insert_phones(
        self, session: AsyncSession, items: Sequence[tuple[Card, PhoneValue, bool]]
    ) -> None:
        """Numbers of new cards are not recorded one by one: they go with their card."""
        of_new_cards: list[tuple[Any, ...]] = []
        of_base_cards: list[tuple[Any, ...]] = []
        for card, phone, shared in items:
            owner = self.card_id(card)
            is_client = card.kind == "client"
            record = (
                phone.raw,
                phone.e164,
                phone.extension,
                phone.kind,
                shared,
                owner if is_client else None,
                None if is_client else owner,
                self.now,
            )
            (of_new_cards if card.existing_id is None else of_base_cards).append(record)
        await repository.bulk_insert(session, Phone, _PHONE_INSERT, of_new_cards)
        ids = await repository.insert_with_ids(session, Phone, _PHONE_INSERT, of_base_cards)
        await repository.record_changes(session, self._created("phone", ids))

    async def _update(
        self,
        session: AsyncSession,
        cards: Sequence[Card],
        table: type[Base],
        entity: str,
        columns: Sequence[str],
    ) -> None:
        current = await repository.current_values(
            session, table, [c.existing_id for c in cards if c.existing_id is not None], columns
        )
        changes = []
        updates: list[tuple[int, dict[str, Any]]] = []
        for card in cards:
            assert card.existing_id is not None
            after: dict[str, Any] = {}
            for column, (_, value) in card.changes().items():
                if column == "organization_id" and card.org is not None:
                    value = self.card_id(card.org)
                after[column] = value
            after["updated_at"] = self.now
            now_values = current.get(card.existing_id)
            if now_values is None:
                raise LookupError(f"{entity} {card.existing_id} was deleted during the import")
            before = {k: _json_value(now_values[k]) for k in after}
            updates.append((card.existing_id, after))
            changes.append(
                (
                    self.batch_id,
                    entity,
                    card.existing_id,
                    ChangeAction.UPDATED,
                    before,
                    {k: _json_value(v) for k, v in after.items()},
                )
            )
        await repository.update_rows(session, table, updates)
        await repository.record_changes(session, changes)
        ids = [c.existing_id for c in cards if c.existing_id is not None]
        await repository.record_audit(session, self._audit(entity, ids, ChangeAction.UPDATED))

    async def update_organizations(self, session: AsyncSession, cards: Sequence[Card]) -> None:
        await self._update(session, cards, Organization, "organization", _ORG_COLUMNS)

    async def update_clients(self, session: AsyncSession, cards: Sequence[Card]) -> None:
        await self._update(session, cards, Client, "client", _CLIENT_COLUMNS)


class Work(NamedTuple):
    """What a plan writes, in the order it is written."""

    new_orgs: list[Card]
    changed_orgs: list[Card]
    new_clients: list[Card]
    changed_clients: list[Card]
    phones: list[tuple[Card, PhoneValue, bool]]

    @property
    def units(self) -> int:
        return sum(len(part) for part in self)


def plan_work(plan: Plan) -> Work:
    with _gc_frozen():
        orgs = [c for c in plan.cards if c.kind == "organization"]
        clients = [c for c in plan.cards if c.kind == "client"]
        return Work(
            new_orgs=[c for c in orgs if c.existing_id is None],
            changed_orgs=[c for c in orgs if c.existing_id is not None and c.changes()],
            new_clients=[c for c in clients if c.existing_id is None],
            changed_clients=[c for c in clients if c.existing_id is not None and c.changes()],
            phones=[(c, p, shared) for c in plan.cards for p, shared in c.new_phones],
        )


async def apply_plan(
    sessionmaker: async_sessionmaker[AsyncSession],
    batch_id: int,
    plan: Plan,
    *,
    user_id: int | None,
    written_at: datetime,
    on_progress: ProgressCallback | None = None,
    work: Work | None = None,
) -> ApplyResult:
    """Write the plan in chunked transactions, recording in import_changes every card made
    and every row changed; new rows carry `written_at` (the batch's start) as their time.
    `work`: the plan's `plan_work`, if the caller has it already."""
    with _gc_frozen():
        work = plan_work(plan) if work is None else work
        applier = _Applier(sessionmaker, batch_id, user_id, on_progress, work.units, written_at)
        await applier._chunked(work.new_orgs, applier.insert_organizations)
        await applier._chunked(work.changed_orgs, applier.update_organizations)
        await applier._chunked(work.new_clients, applier.insert_clients)
        await applier._chunked(work.changed_clients, applier.update_clients)
        await applier._chunked(work.phones, applier.insert_phones)
    for card in plan.cards:
        if card.existing_id is not None:
            applier.result.ids[card.ref] = card.existing_id
    return applier.result


def _suggestions_report(plan: Plan, ids: dict[int, int], limit: int = 1000) -> list[dict[str, Any]]:
    out = []
    for s in plan.suggestions[:limit]:
        out.append(
            {
                "kind": s.kind,
                "card_id": ids.get(s.card.ref, s.card.existing_id),
                "other_id": ids.get(s.other.ref, s.other.existing_id),
                "reason": s.reason,
            }
        )
    return out


async def claim_batch(sessionmaker: async_sessionmaker[AsyncSession], batch_id: int) -> bool:
    """Move a queued batch to running; False if another run has it (or it is not queued), so
    a job delivered twice runs once."""
    async with sessionmaker() as session:
        claimed = await repository.claim(session, batch_id)
        await session.commit()
        return claimed


async def run_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    batch_id: int,
    data_dir: Path,
    limits: Limits,
    *,
    user_id: int | None,
    on_progress: ProgressCallback | None = None,
) -> ImportBatch | None:
    """Run a queued batch: plan against the base as it is now and write it; on any failure
    (or cancellation) undo what was written and mark it failed. None if it was not queued."""
    if not await claim_batch(sessionmaker, batch_id):
        return None
    try:
        with _gc_frozen():  # the steps below freeze what they keep alive for the whole run
            return await _run_claimed(
                sessionmaker, batch_id, data_dir, limits, user_id, on_progress
            )
    except BaseException as exc:
        await asyncio.shield(_fail(sessionmaker, batch_id, "write_failed", _short(exc), undo=True))
        raise
    finally:
        await asyncio.shield(_remove_working_files(sessionmaker, batch_id, data_dir))


async def _remove_working_files(
    sessionmaker: async_sessionmaker[AsyncSession], batch_id: int, data_dir: Path
) -> None:
    """The upload and preview of a batch whose run is over (done or failed)."""
    async with sessionmaker() as session:
        batch = await repository.get_batch(session, batch_id)
    if batch is not None and batch.status in (BatchStatus.DONE, BatchStatus.FAILED):
        await asyncio.to_thread(files.remove_working_files, data_dir, batch.stored_name)


async def _run_claimed(
    sessionmaker: async_sessionmaker[AsyncSession],
    batch_id: int,
    data_dir: Path,
    limits: Limits,
    user_id: int | None,
    on_progress: ProgressCallback | None,
) -> ImportBatch:
    async with sessionmaker() as session:
        batch = await repository.get_batch(session, batch_id)
    assert batch is not None
    stored = batch.stored_name
    try:
        prepared = await prepare_batch(batch, data_dir, limits, keep_frozen=True)
        async with sessionmaker() as session:
            plan = await make_plan(session, prepared)
    except FileRejected as exc:
        return await _fail(sessionmaker, batch_id, exc.code.value, exc.message, undo=False)
    async with sessionmaker() as session:
        batch = await repository.get_batch(session, batch_id)
        assert batch is not None
        work = plan_work(plan)
        batch.progress_total = work.units
        batch.progress_done = 0
        batch.counts = plan.counts()
        written_at = batch.started_at or utcnow()
        await session.commit()
    rejected = await asyncio.to_thread(
        files.write_rejected,
        files.rejected_path(data_dir, stored),
        plan,
        prepared.source,
        len(prepared.headers),
    )
    try:
        result = await apply_plan(
            sessionmaker,
            batch_id,
            plan,
            user_id=user_id,
            written_at=written_at,
            on_progress=on_progress,
            work=work,
        )
    except Exception as exc:
        return await _fail(sessionmaker, batch_id, "write_failed", _short(exc), undo=True)
    async with sessionmaker() as session:
        batch = await repository.get_batch(session, batch_id)
        assert batch is not None
        if batch.status is not BatchStatus.RUNNING:  # given up meanwhile: undo, not done
            raise ImportStateError("the run was given up while it wrote")
        batch.status = BatchStatus.DONE
        batch.finished_at = utcnow()
        batch.report = {
            **_kept_report(batch),
            "rejects": dict(plan.rejects()),
            "rejected_rows": rejected,
            "suggestions": _suggestions_report(plan, result.ids),
        }
        await audit.record(
            session,
            user_id=user_id,
            action="import.run",
            entity="import",
            entity_id=str(batch_id),
            details={"counts": batch.counts},
        )
        await session.commit()
        return batch


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."


async def _fail(
    sessionmaker: async_sessionmaker[AsyncSession],
    batch_id: int,
    code: str,
    message: str,
    *,
    undo: bool,
) -> ImportBatch:
    async with sessionmaker() as session:
        if undo:
            await _undo_changes(session, batch_id)
        batch = await repository.get_batch(session, batch_id)
        assert batch is not None
        batch.status = BatchStatus.FAILED
        batch.error_code = code
        batch.error_message = message
        batch.finished_at = utcnow()
        await audit.record(
            session,
            user_id=None,
            action="import.failed",
            entity="import",
            entity_id=str(batch_id),
            details={"code": code},
        )
        await session.commit()
        return batch


# -- runs that died, files kept too long ------------------------------------------------------

RUN_LOST: Final = "run_lost"
"""Error code of a run whose process died (it was given up and undone by the sweep)."""
EXPIRED: Final = "expired"
"""Error code of a batch never run within the retention time (its file was deleted)."""


@dataclass(frozen=True, slots=True)
class SweepResult:
    lost_runs: list[int]
    expired: list[int]
    files_removed: int


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    data_dir: Path,
    *,
    now: datetime,
    run_limit: timedelta,
    keep_files: timedelta,
) -> SweepResult:
    """Give up runs still `running` longer than any run may last (their process died):
    undo what they wrote and mark them failed. Delete the files of batches finished more
    than `keep_files` ago, and of batches never run that long after their upload (failed,
    `expired`)."""
    lost = await _give_up_lost_runs(sessionmaker, data_dir, now - run_limit)
    expired, removed = await _remove_old_files(sessionmaker, data_dir, now - keep_files)
    return SweepResult(lost, expired, removed)


async def _give_up_lost_runs(
    sessionmaker: async_sessionmaker[AsyncSession], data_dir: Path, started_before: datetime
) -> list[int]:
    async with sessionmaker() as session:
        candidates = await repository.stale_runs(session, started_before)
    lost = []
    for batch_id in candidates:
        async with sessionmaker() as session:
            message = "the run stopped without finishing (its process ended); nothing was kept"
            if not await repository.give_up_run(
                session, batch_id, started_before, RUN_LOST, message
            ):
                await session.rollback()
                continue
            await _undo_changes(session, batch_id)
            await audit.record(
                session,
                user_id=None,
                action="import.failed",
                entity="import",
                entity_id=str(batch_id),
                details={"code": RUN_LOST},
            )
            await session.commit()
        lost.append(batch_id)
        await _remove_working_files(sessionmaker, batch_id, data_dir)
    return lost


_FINISHED: Final = (BatchStatus.DONE, BatchStatus.FAILED, BatchStatus.UNDONE)
_NOT_RUN: Final = (BatchStatus.UPLOADED, BatchStatus.PREVIEWED)


async def _remove_old_files(
    sessionmaker: async_sessionmaker[AsyncSession], data_dir: Path, before: datetime
) -> tuple[list[int], int]:
    kept = await asyncio.to_thread(files.kept_files, data_dir)
    if not kept:
        return [], 0
    expired: list[int] = []
    going: list[Path] = []
    async with sessionmaker() as session:
        batches = {b.stored_name: b for b in await repository.batches_by_stored_name(session, kept)}
        for stored, paths in kept.items():
            batch = batches.get(stored)
            if batch is None:  # its batch was never committed: go once it is old too
                going += [p for p in paths if _modified_at(p) < before]
                continue
            ended = batch.undone_at or batch.finished_at
            if batch.status in _FINISHED and ended is not None and ended < before:
                going += paths
            elif batch.status in _NOT_RUN and batch.created_at < before:
                batch.status = BatchStatus.FAILED
                batch.error_code = EXPIRED
                batch.error_message = "not imported within the time its file is kept"
                batch.finished_at = utcnow()
                expired.append(batch.id)
                going += paths
        await session.commit()
    for path in going:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    return expired, len(going)


def _modified_at(path: Path) -> datetime:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except FileNotFoundError:  # gone meanwhile
        return utcnow()


# -- undo ---------------------------------------------------------------------------------------


async def _edited_since(session: AsyncSession, batch_id: int) -> dict[str, list[int]]:
    """Cards the batch updated whose fields no longer hold what the batch wrote."""
    found: dict[str, list[int]] = {}
    for entity, table in (("client", Client), ("organization", Organization)):
        changes = await repository.updated_changes(session, batch_id, entity)
        if not changes:
            continue
        columns = sorted({k for c in changes for k in (c.after or {})})
        current = await repository.current_values(
            session, table, [c.entity_id for c in changes], columns
        )
        for change in changes:
            now = current.get(change.entity_id)
            after = change.after or {}
            if now is None or any(
                now[k] != repository.parse_stored(k, v) for k, v in after.items()
            ):
                found.setdefault(entity, []).append(change.entity_id)
    return found


async def _undo_changes(session: AsyncSession, batch_id: int) -> dict[str, int]:
    """Put the base back as it was before the batch (no checks; flushed, not committed)."""
    going_with_cards = await repository.phones_of_created_cards(session, batch_id)
    deleted = await repository.delete_created(session, batch_id, Phone, "phone")
    counts = {"phones_deleted": going_with_cards + deleted}
    for entity, table in (("client", Client), ("organization", Organization)):
        restores = [
            (c.entity_id, {k: repository.parse_stored(k, v) for k, v in (c.before or {}).items()})
            for c in await repository.updated_changes(session, batch_id, entity)
        ]
        await repository.update_rows(session, table, restores)
        counts[f"{entity}s_restored"] = len(restores)
    counts["clients_deleted"] = await repository.delete_created(session, batch_id, Client, "client")
    counts["organizations_deleted"] = await repository.delete_created(
        session, batch_id, Organization, "organization"
    )
    return counts


async def undo_batch(
    session: AsyncSession, batch: ImportBatch, *, user_id: int | None
) -> dict[str, int]:
    """Undo a finished batch in the caller's transaction; UndoConflict if that would destroy
    work done since (the caller commits)."""
    if batch.status not in (BatchStatus.DONE, BatchStatus.FAILED):
        # A failed run was undone when it failed; undoing it again clears anything left.
        raise ImportStateError(f"batch is {batch.status.value}; only a finished batch is undone")
    references = await repository.foreign_references(
        session, batch.id, batch.started_at or utcnow()
    )
    edited = await _edited_since(session, batch.id)
    if references or edited:
        raise UndoConflict({"references": references, "edited": edited})
    counts = await _undo_changes(session, batch.id)
    batch.status = BatchStatus.UNDONE
    batch.undone_at = utcnow()
    await audit.record(
        session,
        user_id=user_id,
        action="import.undone",
        entity="import",
        entity_id=str(batch.id),
        details=counts,
    )
    await session.flush()
    return counts


# -- batches: upload, mapping, start -------------------------------------------------------------


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def create_batch(
    session: AsyncSession,
    *,
    received: Path,
    declared_name: str,
    data_dir: Path,
    limits: Limits,
    region: str,
    area_code: str,
    user_id: int | None,
) -> ImportBatch:
    """A batch for an uploaded file (moved into the data dir); FileRejected if it is refused,
    ValueError for an unknown region or a bad area code. `received` is removed in every case."""
    try:
        identity = phone_identity(region, area_code)
        region, area_code = identity.region, identity.area_code
        info = await asyncio.to_thread(inspect_file, received, declared_name, limits)
        stored = files.new_stored_name(info.kind)
        digest, size = await asyncio.to_thread(file_digest, received)
        await asyncio.to_thread(shutil.move, received, files.upload_path(data_dir, stored))
    finally:
        await asyncio.to_thread(received.unlink, missing_ok=True)
    batch = ImportBatch(
        file_name=Path(declared_name).name[:255] or "upload",
        stored_name=stored,
        file_kind=info.kind,
        sha256=digest,
        size_bytes=size,
        uploaded_by=user_id,
        status=BatchStatus.UPLOADED,
        sheets=list(info.sheets),
        sheet=info.sheet,
        headers=info.headers,
        mapping=mapping_to_json(info.mapping),
        region=region,
        area_code=area_code,
        counts={},
        report={"samples": info.samples},
    )
    session.add(batch)
    await session.flush()
    await audit.record(
        session,
        user_id=user_id,
        action="import.uploaded",
        entity="import",
        entity_id=str(batch.id),
        details={"file": batch.file_name, "sha256": digest, "bytes": size},
    )
    return batch


async def configure_batch(
    session: AsyncSession,
    batch: ImportBatch,
    *,
    data_dir: Path,
    limits: Limits,
    mapping: Mapping[str, str | Sequence[str]] | None,
    template: str | None = None,
    region: str | None = None,
    area_code: str | None = None,
    sheet: str | None = None,
    save_as: str | None = None,
    user_id: int | None = None,
) -> Plan | None:
    """Choose the sheet, mapping (given, or a saved template), region and area code, then
    preview. A new sheet without a mapping or template only has its columns read and the
    mapping guessed (None: no preview). Raises MappingError, ValueError (bad region/area),
    FileRejected, LookupError."""
    if batch.status not in (BatchStatus.UPLOADED, BatchStatus.PREVIEWED):
        raise ImportStateError(f"batch is {batch.status.value}")
    if region is not None or area_code is not None:
        phone_identity(region or batch.region, batch.area_code if area_code is None else area_code)
        batch.region = (region or batch.region).strip().upper()
        batch.area_code = (batch.area_code if area_code is None else area_code).strip()
    if sheet is not None and sheet != batch.sheet:
        if batch.file_kind != "xlsx" or sheet not in batch.sheets:
            raise FileRejected(FileErrorCode.NO_SUCH_SHEET, f"no sheet named {sheet!r}")
        path = files.upload_path(data_dir, batch.stored_name)
        batch.headers, samples = await asyncio.to_thread(
            head_of, path, "xlsx", batch.sheets, sheet, limits
        )
        batch.sheet = sheet
        batch.report = {"samples": samples}
        if mapping is None and template is None:
            # Only the sheet changed: its columns are read and guessed, nothing is checked
            # yet (the guess may lack a name column; the person maps it by hand).
            batch.mapping = mapping_to_json(guess_mapping(batch.headers))
            batch.counts = {}
            batch.status = BatchStatus.UPLOADED
            batch.previewed_at = None
            await asyncio.to_thread(
                files.preview_path(data_dir, batch.stored_name).unlink, missing_ok=True
            )
            return None
    if template is not None:
        saved = await repository.template_by_name(session, template)
        if saved is None:
            raise LookupError(f"no template named {template!r}")
        mapping = saved.mapping
    chosen = parse_mapping(mapping if mapping is not None else batch.mapping, batch.headers)
    batch.mapping = mapping_to_json(chosen)
    if save_as:
        await save_template(session, save_as, chosen, user_id=user_id)
    return await preview_batch(session, batch, data_dir, limits)


async def save_template(
    session: AsyncSession, name: str, mapping: ColumnMapping, *, user_id: int | None
) -> ImportTemplate:
    """Create or replace the template `name`."""
    template = await repository.template_by_name(session, name)
    if template is None:
        template = ImportTemplate(name=name, created_by=user_id)
        session.add(template)
    template.mapping = mapping_to_json(mapping)
    await session.flush()
    return template


async def start_batch(session: AsyncSession, batch: ImportBatch, *, user_id: int | None) -> None:
    """Queue a previewed batch (the caller commits, which sends the run job). A batch still
    queued may be started again: if its job was lost, the new one runs it; if not, only one
    of them claims it."""
    if batch.status is BatchStatus.QUEUED:
        return
    if batch.status is not BatchStatus.PREVIEWED:
        raise ImportStateError(f"batch is {batch.status.value}; preview it first")
    batch.status = BatchStatus.QUEUED
    batch.started_at = utcnow()
    batch.progress_done = 0
    await audit.record(
        session,
        user_id=user_id,
        action="import.started",
        entity="import",
        entity_id=str(batch.id),
        details={"mapping": batch.mapping, "region": batch.region, "area_code": batch.area_code},
    )


# -- reading back what a batch kept ---------------------------------------------------------


async def read_preview(
    path: Path, offset: int, limit: int, decision: str | None
) -> tuple[list[dict[str, Any]], int]:
    return await asyncio.to_thread(files.read_preview, path, offset, limit, decision)


LOCALES: Final = ("ru", "en")


@functools.cache
def rejected_texts(locale: str) -> files.RejectedTexts:
    """The rejected-rows file's words in `locale` (ru or en; others get ru), from the import
    page's catalogue, so the file and the page say the same."""
    from callcenter.main import UI_DIR

    chosen = locale if locale in LOCALES else LOCALES[0]
    path = UI_DIR / "i18n" / "imports" / f"{chosen}.json"
    catalogue: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    prefix = "imports.reason."
    return files.RejectedTexts(
        line=catalogue["imports.rejected.line"],
        reason=catalogue["imports.rejected.reason"],
        message=catalogue["imports.rejected.message"],
        sheet=catalogue["imports.rejected.sheet"],
        reasons={k.removeprefix(prefix): v for k, v in catalogue.items() if k.startswith(prefix)},
    )


async def render_rejected(path: Path, headers: Sequence[str], kind: str, locale: str) -> bytes:
    render = files.rejected_csv if kind == "csv" else files.rejected_xlsx
    return await asyncio.to_thread(render, path, headers, rejected_texts(locale))
