"""Tasks and meetings over the API: closing needs a result, overdue lists, the one-click task
from a call card, and reminders sent exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from callcenter.auth.models import Role
from callcenter.calls.state import CallStatus
from callcenter.context import AppContext
from callcenter.db import utcnow
from callcenter.realtime.streams import user_topic
from callcenter.tasks.models import Meeting, Task
from callcenter.tasks.reminders import REMINDER_EVENT, send_due_reminders
from tests.crm_helpers import actor, add_calls, call_row, seed_company


class RecordingStreams:
    """Keeps what is published, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def publish(self, topic: str, event_type: str, payload: Mapping[str, Any]) -> str:
        self.sent.append((topic, event_type, dict(payload)))
        return str(len(self.sent))


both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@both_databases
async def test_given_an_open_task_when_closed_without_a_result_then_422_and_with_one_closed(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    operator = await actor(ctx, Role.OPERATOR, "op")
    created = await client.post(
        "/api/tasks",
        json={"title": "Отправить счёт", "client_id": company.maria_id},
        headers=operator.headers,
    )
    task = created.json()
    close = f"/api/tasks/{task['id']}/close"

    missing = await client.post(close, json={}, headers=operator.headers)
    blank = await client.post(close, json={"result": "   "}, headers=operator.headers)
    closed = await client.post(close, json={"result": " Счёт отправлен "}, headers=operator.headers)
    twice = await client.post(close, json={"result": "ещё раз"}, headers=operator.headers)

    assert created.status_code == 201
    assert task["assignee_id"] == operator.id
    assert task["organization_id"] == company.organization_id  # from the person
    assert task["client_name"] == "Мария Сидорова"
    assert missing.status_code == 422
    assert blank.status_code == 422
    assert closed.status_code == 200
    assert closed.json()["result"] == "Счёт отправлен"
    assert closed.json()["closed_by"] == operator.id
    assert closed.json()["done_at"] is not None
    assert twice.status_code == 409


async def test_given_someone_elses_task_then_an_operator_may_not_change_it_but_a_supervisor_may(
    ctx: AppContext, client: AsyncClient
) -> None:
    anna = await actor(ctx, Role.OPERATOR, "anna")
    igor = await actor(ctx, Role.OPERATOR, "igor")
    boss = await actor(ctx, Role.SUPERVISOR, "boss")
    task = (await client.post("/api/tasks", json={"title": "Моя"}, headers=anna.headers)).json()

    by_igor = await client.patch(
        f"/api/tasks/{task['id']}", json={"title": "Чужая"}, headers=igor.headers
    )
    by_boss = await client.post(
        f"/api/tasks/{task['id']}/close", json={"result": "Сделано"}, headers=boss.headers
    )
    unknown_user = await client.post(
        "/api/tasks", json={"title": "x", "assignee_id": 999}, headers=anna.headers
    )

    assert by_igor.status_code == 403
    assert by_boss.status_code == 200
    assert unknown_user.status_code == 422


@both_databases
async def test_given_tasks_of_several_people_then_the_overdue_list_is_mine_unless_supervisor(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    anna = await actor(ctx, Role.OPERATOR, "anna")
    igor = await actor(ctx, Role.OPERATOR, "igor")
    boss = await actor(ctx, Role.SUPERVISOR, "boss")
    now = utcnow()
    async with ctx.sessionmaker() as session:
        session.add_all(
            [
                Task(
                    title="late",
                    assignee_id=anna.id,
                    due_at=now - timedelta(hours=2),
                    client_id=company.maria_id,
                ),
                Task(title="later", assignee_id=anna.id, due_at=now + timedelta(hours=2)),
                Task(
                    title="late but done",
                    assignee_id=anna.id,
                    due_at=now - timedelta(days=1),
                    done_at=now,
                    result="ok",
                ),
                Task(title="no due date", assignee_id=anna.id),
                Task(title="igor late", assignee_id=igor.id, due_at=now - timedelta(hours=1)),
                Meeting(
                    subject="met, no result",
                    assignee_id=anna.id,
                    starts_at=now - timedelta(hours=3),
                ),
                Meeting(subject="tomorrow", assignee_id=anna.id, starts_at=now + timedelta(days=1)),
            ]
        )
        await session.commit()

    mine = await client.get("/api/tasks", params={"overdue": "true"}, headers=anna.headers)
    everyone = await client.get("/api/tasks", params={"overdue": "true"}, headers=boss.headers)
    peek = await client.get("/api/tasks", params={"assignee_id": igor.id}, headers=anna.headers)
    open_ones = await client.get("/api/tasks", headers=anna.headers)
    meetings = await client.get("/api/meetings", params={"overdue": "true"}, headers=anna.headers)

    assert [t["title"] for t in mine.json()["items"]] == ["late"]
    assert mine.json()["items"][0]["overdue"] is True
    assert [t["title"] for t in everyone.json()["items"]] == ["late", "igor late"]
    assert peek.status_code == 403
    assert [t["title"] for t in open_ones.json()["items"]] == ["late", "later", "no due date"]
    assert [m["subject"] for m in meetings.json()["items"]] == ["met, no result"]


@both_databases
async def test_given_a_call_card_when_one_click_task_then_about_the_caller_due_tomorrow_for_me(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    anna = await actor(ctx, Role.OPERATOR, "anna")
    igor = await actor(ctx, Role.OPERATOR, "igor")
    [call_id] = await add_calls(
        ctx,
        call_row(
            "c1",
            started_at=utcnow(),
            client_id=company.maria_id,
            organization_id=company.organization_id,
            agent_user_id=anna.id,
        ),
    )
    before = utcnow()

    created = await client.post(f"/api/calls/{call_id}/task", json={}, headers=anna.headers)
    titled = await client.post(
        f"/api/calls/{call_id}/task", json={"title": "Перезвонить Марии"}, headers=anna.headers
    )
    foreign = await client.post(f"/api/calls/{call_id}/task", json={}, headers=igor.headers)
    missing = await client.post("/api/calls/4242/task", json={}, headers=anna.headers)

    assert created.status_code == 201, created.text
    task = created.json()
    assert (task["client_id"], task["organization_id"], task["assignee_id"], task["call_id"]) == (
        company.maria_id,
        company.organization_id,
        anna.id,
        call_id,
    )
    assert task["title"] == "89161112233"  # no notes, no caller name: the number
    due = task["due_at"]
    assert due is not None
    assert task["remind_at"] == due
    due_at = datetime.fromisoformat(due)
    assert before + timedelta(hours=23) < due_at < utcnow() + timedelta(hours=25)
    assert titled.json()["title"] == "Перезвонить Марии"
    assert foreign.status_code == 403
    assert missing.status_code == 404


@both_databases
async def test_given_a_meeting_logged_with_a_result_then_closed_with_its_participants(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    anna = await actor(ctx, Role.OPERATOR, "anna")
    start = utcnow() - timedelta(hours=2)

    logged = await client.post(
        "/api/meetings",
        json={
            "subject": "Презентация",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "place": "офис клиента",
            "organization_id": company.organization_id,
            "participant_ids": [company.petr_id, company.maria_id, company.petr_id],
            "result": "Договорились о пилоте",
        },
        headers=anna.headers,
    )
    planned = await client.post(
        "/api/meetings",
        json={
            "subject": "Пилот",
            "starts_at": (start + timedelta(days=3)).isoformat(),
            "client_id": company.maria_id,
        },
        headers=anna.headers,
    )
    backwards = await client.post(
        "/api/meetings",
        json={
            "subject": "x",
            "starts_at": start.isoformat(),
            "ends_at": (start - timedelta(hours=1)).isoformat(),
        },
        headers=anna.headers,
    )
    naive = await client.post(
        "/api/meetings",
        json={"subject": "x", "starts_at": "2026-12-01T10:00:00"},
        headers=anna.headers,
    )
    closing = await client.post(
        f"/api/meetings/{planned.json()['id']}/close", json={"result": ""}, headers=anna.headers
    )

    assert logged.status_code == 201, logged.text
    body = logged.json()
    assert body["done_at"] is not None
    assert body["result"] == "Договорились о пилоте"
    assert [p["name"] for p in body["participants"]] == ["Мария Сидорова", "Пётр Иванов"]
    assert planned.json()["done_at"] is None
    assert [p["id"] for p in planned.json()["participants"]] == [company.maria_id]
    assert planned.json()["organization_id"] == company.organization_id
    assert backwards.status_code == 422
    assert naive.status_code == 422
    assert closing.status_code == 422
    by_person = await client.get(
        "/api/meetings", params={"client_id": company.petr_id, "state": "all"}, headers=anna.headers
    )
    assert [m["subject"] for m in by_person.json()["items"]] == ["Презентация"]


@both_databases
async def test_given_due_reminders_when_sent_by_two_runs_at_once_then_each_goes_out_once(
    ctx: AppContext,
) -> None:
    anna = await actor(ctx, Role.OPERATOR, "anna")
    now = utcnow()
    async with ctx.sessionmaker() as session:
        session.add_all(
            [
                Task(
                    title="call back",
                    assignee_id=anna.id,
                    remind_at=now - timedelta(minutes=1),
                    due_at=now + timedelta(minutes=10),
                ),
                Task(title="not yet", assignee_id=anna.id, remind_at=now + timedelta(hours=1)),
                Task(
                    title="done",
                    assignee_id=anna.id,
                    remind_at=now - timedelta(minutes=5),
                    done_at=now,
                    result="ok",
                ),
                Task(title="nobody's", remind_at=now - timedelta(minutes=5)),
                Meeting(
                    subject="meeting",
                    assignee_id=anna.id,
                    starts_at=now + timedelta(minutes=15),
                    remind_at=now,
                ),
            ]
        )
        await session.commit()
    streams = RecordingStreams()

    async def run_once() -> int:
        async with ctx.sessionmaker() as session:
            return await send_due_reminders(session, streams, now)

    sent = await asyncio.gather(run_once(), run_once())
    again = await run_once()

    assert sum(sent) == 2
    assert again == 0
    assert sorted((topic, kind, p["reminder"]["title"]) for topic, kind, p in streams.sent) == [
        (user_topic(anna.id), REMINDER_EVENT, "call back"),
        (user_topic(anna.id), REMINDER_EVENT, "meeting"),
    ]
    async with ctx.sessionmaker() as session:
        reminded = (await session.scalars(select(Task).where(Task.reminded_at.is_not(None)))).all()
    assert [t.title for t in reminded] == ["call back"]


async def test_given_a_sent_reminder_when_the_task_gets_a_new_reminder_time_then_sent_again(
    ctx: AppContext, client: AsyncClient
) -> None:
    anna = await actor(ctx, Role.OPERATOR, "anna")
    now = utcnow()
    task = (
        await client.post(
            "/api/tasks",
            json={"title": "t", "remind_at": (now - timedelta(minutes=1)).isoformat()},
            headers=anna.headers,
        )
    ).json()
    streams = RecordingStreams()
    async with ctx.sessionmaker() as session:
        first = await send_due_reminders(session, streams, now)
    await client.patch(
        f"/api/tasks/{task['id']}", json={"remind_at": now.isoformat()}, headers=anna.headers
    )
    async with ctx.sessionmaker() as session:
        second = await send_due_reminders(session, streams, now + timedelta(seconds=1))

    assert (first, second) == (1, 1)


async def test_given_an_ended_call_then_its_timeline_shows_the_one_click_task(
    ctx: AppContext, client: AsyncClient
) -> None:
    company = await seed_company(ctx)
    anna = await actor(ctx, Role.OPERATOR, "anna")
    [call_id] = await add_calls(
        ctx,
        call_row(
            "c9",
            started_at=utcnow() - timedelta(minutes=5),
            client_id=company.maria_id,
            agent_user_id=anna.id,
            status=CallStatus.ENDED,
        ),
    )
    await client.post(f"/api/calls/{call_id}/task", json={"title": "Счёт"}, headers=anna.headers)

    timeline = await client.get(f"/api/clients/{company.maria_id}/timeline", headers=anna.headers)

    kinds = [(e["kind"], e.get("title")) for e in timeline.json()["items"]]
    assert kinds[:2] == [("task", "Счёт"), ("call", None)]
