"""Report endpoints: who sees what, exports that neutralise formulas, plans and their progress."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from openpyxl import load_workbook
from sqlalchemy import select, update

from callcenter.auth.models import AuditEntry
from callcenter.calls.models import Call, Outcome
from callcenter.context import AppContext
from callcenter.tasks.models import Task
from tests.factories import login_as
from tests.report_fixture import DAY, load_day

DAY_PARAMS = {"from": DAY.isoformat(), "to": DAY.isoformat()}


async def test_given_an_operator_when_asking_for_reports_then_only_their_own_figures_are_shown(
    ctx: AppContext, client: AsyncClient
) -> None:
    anna, boris = await _day(ctx)
    await login_as(client, "anna")

    agents = (await client.get("/api/reports/agents", params=DAY_PARAMS)).json()
    queues = await client.get("/api/reports/queues", params=DAY_PARAMS)
    others = await client.get("/api/reports/agents", params={**DAY_PARAMS, "user_id": boris.id})
    own_drill = agents["rows"][0]["figures"]["answered"]["drill"]
    boris_drill = own_drill.replace(f"user_id={anna.id}", f"user_id={boris.id}")
    queue_drill = f"/api/reports/calls?set=queue:offered&from={DAY}&to={DAY}"

    assert [row["label"] for row in agents["rows"]] == ["Anna"]
    assert queues.status_code == 403
    assert others.status_code == 403
    assert (await client.get(own_drill)).json()["total"] == 4
    assert (await client.get(boris_drill)).status_code == 403
    assert (await client.get(queue_drill)).status_code == 403
    assert (await client.get("/api/reports/queues.csv", params=DAY_PARAMS)).status_code == 403


async def test_given_formula_like_names_when_exported_then_the_cells_are_text_in_xlsx_and_csv(
    ctx: AppContext, client: AsyncClient
) -> None:
    await _day(ctx)
    async with ctx.sessionmaker() as session:
        await session.execute(update(Call).where(Call.queue == "sales").values(queue="=1+2"))
        await session.execute(update(Call).where(Call.call_key == "S1").values(notes="@SUM(A1:A9)"))
        await session.commit()
    await login_as(client, "sup")

    xlsx = await client.get("/api/reports/queues.xlsx", params=DAY_PARAMS)
    csv_text = (await client.get("/api/reports/queues.csv", params=DAY_PARAMS)).text
    calls = await client.get(
        "/api/reports/calls.xlsx", params={**DAY_PARAMS, "set": "queue:answered"}
    )

    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[1][:5] == ["'=1+2", 7, 4, 2, 1]
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    rows = list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))
    assert rows[1][:5] == ["'=1+2", "7", "4", "2", "1"]
    call_sheet = load_workbook(io.BytesIO(calls.content)).active
    values = [c.value for row in call_sheet.iter_rows() for c in row]
    assert "'@SUM(A1:A9)" in values
    assert "'=1+2" in values
    async with ctx.sessionmaker() as session:
        exported = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "report.exported"))
        ).all()
    assert [(e.entity_id, e.details["format"]) for e in exported] == [
        ("queues", "xlsx"),
        ("queues", "csv"),
        ("calls", "xlsx"),
    ]


async def test_given_plans_when_outcomes_change_then_progress_counts_them_and_drills_to_them(
    ctx: AppContext, client: AsyncClient
) -> None:
    anna, _ = await _day(ctx)
    now = datetime.now(UTC)
    async with ctx.sessionmaker() as session:
        await session.execute(
            update(Call)
            .where(Call.call_key.in_(["S1", "S5", "P1", "D1"]))
            .values(started_at=now - timedelta(minutes=5), ended_at=now - timedelta(minutes=1))
        )
        session.add(Task(title="t", assignee_id=anna.id, done_at=now))
        await session.commit()
    csrf = await login_as(client, "sup")
    headers = {"X-CSRF-Token": csrf}
    for metric, target in (("deals", 10), ("calls_answered", 5), ("closed", 2)):
        body = {"user_id": anna.id, "metric": metric, "period": "day", "target": target}
        assert (await client.put("/api/plans", json=body, headers=headers)).status_code == 200
    again = {"user_id": anna.id, "metric": "deals", "period": "day", "target": 3}
    await client.put("/api/plans", json=again, headers=headers)
    bad = await client.put(
        "/api/plans",
        json={"queue": "sales", "metric": "closed", "period": "day", "target": 1},
        headers=headers,
    )

    await login_as(client, "anna")
    progress = (await client.get("/api/plans/progress")).json()
    done = {
        item["target"]["metric"]: (item["done"], item["target"]["target"])
        for item in progress["items"]
    }
    deals = next(i for i in progress["items"] if i["target"]["metric"] == "deals")
    listed = (await client.get(deals["drill"])).json()
    async with ctx.sessionmaker() as session:
        await session.execute(
            update(Call).where(Call.call_key == "P1").values(outcome=Outcome.SALE)
        )
        await session.commit()
    later = (await client.get("/api/plans/progress")).json()

    assert bad.status_code == 422
    assert done == {"deals": (1, 3), "calls_answered": (4, 5), "closed": (1, 2)}
    assert [c["caller_name"] for c in listed["items"]] == ["S1"]
    assert {i["target"]["metric"]: i["done"] for i in later["items"]}["deals"] == 2
    assert (
        await client.get("/api/plans/progress", params={"user_id": anna.id + 1})
    ).status_code == 403


async def _day(ctx: AppContext):  # type: ignore[no-untyped-def]
    async with ctx.sessionmaker() as session:
        return await load_day(session)
