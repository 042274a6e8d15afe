"""`callcenter import FILE`: the same checks, preview, run and report as the web import."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.imports import files, service
from callcenter.imports.mapping import MappingError, parse_cli_mapping
from callcenter.imports.models import BatchStatus, ImportBatch
from callcenter.imports.plan import Decision, Plan
from callcenter.imports.reader import FileRejected

_SHOWN_REJECTS = 10


def add_import_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "import",
        help="import clients and organisations from an .xlsx or .csv export",
        description="Preview, then import a client base; every batch can be undone.",
    )
    command.add_argument("file", nargs="?", type=Path, help="the .xlsx or .csv file")
    command.add_argument(
        "--mapping",
        action="append",
        default=[],
        metavar="FIELD=COLUMN,...",
        help="columns by header, e.g. full_name=ФИО,phone=Телефон (repeatable; default: guessed)",
    )
    command.add_argument("--template", help="use a saved mapping template")
    command.add_argument("--save-template", metavar="NAME", help="save the mapping under NAME")
    command.add_argument("--region", help="default region of the numbers (default: settings)")
    command.add_argument("--area", help="area code for local numbers (default: settings)")
    command.add_argument("--sheet", help="worksheet to read (default: the first non-empty one)")
    command.add_argument("--dry-run", action="store_true", help="preview only, write nothing")
    command.add_argument("--yes", action="store_true", help="do not ask before importing")
    command.add_argument("--undo", type=int, metavar="BATCH", help="undo a finished import")
    command.set_defaults(handler=run_import_command)


def run_import_command(args: argparse.Namespace, settings: Settings) -> int:
    console = Console()
    try:
        if args.undo is not None:
            return asyncio.run(_undo(console, settings, args.undo))
        if args.file is None:
            console.print("[red]error:[/] give a FILE to import (or --undo BATCH)")
            return 2
        if not args.file.is_file():
            console.print(f"[red]error:[/] no file {args.file}")
            return 1
        return asyncio.run(_import(console, settings, args))
    except (FileRejected, MappingError, ValueError, LookupError) as exc:
        code = exc.code.value if isinstance(exc, FileRejected) else "error"
        console.print(f"[red]{code}:[/] {getattr(exc, 'message', exc)}")
        return 1


def _sessions(settings: Settings) -> tuple[async_sessionmaker[AsyncSession], AsyncEngine]:
    from callcenter.db import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    return make_sessionmaker(engine), engine


async def _import(console: Console, settings: Settings, args: argparse.Namespace) -> int:
    source: Path = args.file
    mapping: dict[str, list[str]] | None = None
    for text in args.mapping:
        for name, columns in parse_cli_mapping(text).items():
            mapping = mapping or {}
            mapping.setdefault(name, []).extend(columns)
    sessionmaker, engine = _sessions(settings)
    limits = service.limits_from(settings)
    data_dir = settings.data_dir
    try:
        incoming = files.imports_dir(data_dir)
        with tempfile.NamedTemporaryFile(dir=incoming, suffix=".part", delete=False) as copy:
            received = Path(copy.name)
        await asyncio.to_thread(shutil.copyfile, source, received)
        async with sessionmaker() as session:
            batch = await service.create_batch(
                session,
                received=received,
                declared_name=source.name,
                data_dir=data_dir,
                limits=limits,
                region=args.region or settings.default_region,
                area_code=settings.default_area_code if args.area is None else args.area,
                user_id=None,
            )
            plan = await service.configure_batch(
                session,
                batch,
                data_dir=data_dir,
                limits=limits,
                mapping=mapping,
                template=args.template,
                sheet=args.sheet,
                save_as=args.save_template,
            )
            if plan is None:  # only the sheet was chosen: preview it with the guessed mapping
                plan = await service.configure_batch(
                    session, batch, data_dir=data_dir, limits=limits, mapping=batch.mapping
                )
            assert plan is not None
            await session.commit()
            batch_id = batch.id
            _print_preview(console, batch, plan)
        if args.dry_run:
            console.print(f"dry run: nothing written (batch {batch_id} stays previewed)")
            return 0
        if not args.yes and not _confirm(console):
            console.print("nothing written")
            return 1
        async with sessionmaker() as session:
            stored = await session.get(ImportBatch, batch_id)
            assert stored is not None
            await service.start_batch(session, stored, user_id=None)
            await session.commit()
        finished = await _run_with_progress(console, sessionmaker, batch_id, settings)
        return await _report(console, finished, data_dir, settings.locale)
    finally:
        await engine.dispose()


def _confirm(console: Console) -> bool:
    if not sys.stdin.isatty():
        console.print("[yellow]not a terminal:[/] pass --yes to import without asking")
        return False
    return console.input("Import? [y/N] ").strip().lower() in {"y", "yes", "д", "да"}


def _print_preview(console: Console, batch: ImportBatch, plan: Plan) -> None:
    console.print(
        f"[bold]{batch.file_name}[/] ({batch.file_kind}"
        + (f", sheet {batch.sheet!r}" if batch.sheet else "")
        + f"), region {batch.region}, area code {batch.area_code or '-'}"
    )
    mapping = Table("field", "columns", title="mapping")
    for field, columns in batch.mapping.items():
        mapping.add_row(field, ", ".join(columns))
    console.print(mapping)
    counts = plan.counts()
    summary = Table("rows", *[d.value for d in Decision], title="preview")
    summary.add_row(str(counts["rows"]), *[str(counts[d.value]) for d in Decision])
    console.print(summary)
    console.print(
        f"clients: {counts['clients_created']} new, {counts['clients_updated']} updated; "
        f"organisations: {counts['organizations_created']} new, "
        f"{counts['organizations_updated']} updated; numbers added: {counts['phones_added']}; "
        f"merge suggestions: {counts['suggestions']}"
    )
    rejects = [r for r in plan.rows if r.decision is Decision.REJECT]
    if rejects:
        table = Table("row", "reason", "message", title=f"first rejected rows of {len(rejects)}")
        for row in rejects[:_SHOWN_REJECTS]:
            table.add_row(str(row.line), row.reason.value if row.reason else "", row.message)
        console.print(table)


async def _run_with_progress(
    console: Console,
    sessionmaker: async_sessionmaker[AsyncSession],
    batch_id: int,
    settings: Settings,
) -> ImportBatch:
    columns = (
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("import", total=None)

        async def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        finished = await service.run_batch(
            sessionmaker,
            batch_id,
            settings.data_dir,
            service.limits_from(settings),
            user_id=None,
            on_progress=on_progress,
        )
    if finished is None:
        raise LookupError(f"batch {batch_id} was taken by another run")
    return finished


async def _report(console: Console, batch: ImportBatch, data_dir: Path, locale: str) -> int:
    if batch.status is not BatchStatus.DONE:
        console.print(f"[red]import failed ({batch.error_code}):[/] {batch.error_message}")
        console.print("nothing was kept: everything written was undone")
        return 1
    counts = batch.counts
    console.print(
        f"[green]done:[/] batch {batch.id}: {counts['create']} created, {counts['update']} "
        f"updated, {counts['merge']} merged, {counts['unchanged']} unchanged, "
        f"{counts['reject']} rejected"
    )
    if counts["reject"]:
        content = await service.render_rejected(
            files.rejected_path(data_dir, batch.stored_name), batch.headers, "csv", locale
        )
        path = files.imports_dir(data_dir) / f"import-{batch.id}-rejected.csv"
        await asyncio.to_thread(path.write_bytes, content)
        console.print(f"rejected rows with reasons: {path}")
    console.print(f"undo with: callcenter import --undo {batch.id}")
    return 0


async def _undo(console: Console, settings: Settings, batch_id: int) -> int:
    sessionmaker, engine = _sessions(settings)
    try:
        async with sessionmaker() as session:
            batch = await session.get(ImportBatch, batch_id)
            if batch is None:
                console.print(f"[red]error:[/] no import {batch_id}")
                return 1
            try:
                counts = await service.undo_batch(session, batch, user_id=None)
            except service.UndoConflict as exc:
                console.print(f"[red]cannot undo:[/] {exc.details}")
                return 1
            except service.ImportStateError as exc:
                console.print(f"[red]cannot undo:[/] {exc}")
                return 1
            await session.commit()
        console.print(f"[green]undone:[/] batch {batch_id}: {counts}")
        return 0
    finally:
        await engine.dispose()
