"""The client card on the operator's page in a real browser: the timeline, a task in one click
from the call card, a logged meeting, the person picked on a company number, the overdue list."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from callcenter.auth.models import Role
from callcenter.calls.models import Call, Outcome
from callcenter.calls.state import CallStatus
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, OrganizationIn, PhoneIn
from callcenter.events import (
    AgentRinging,
    CallAnswered,
    CallStarted,
    Direction,
    EndReason,
)
from callcenter.tasks.models import Meeting, Task
from tests.e2e.conftest import ANNA, LiveServer, hang_up, login_via_api, open_operator_page

pytestmark = pytest.mark.browser


def _now() -> datetime:
    return datetime.now(UTC)


def talk(server: LiveServer, key: str, caller: str) -> None:
    """A call from `caller` rings Анна's phone and she answers."""
    at = _now()
    server.ingest(
        CallStarted(
            call_key=key,
            event_id=f"{key}:start",
            at=at,
            direction=Direction.INBOUND,
            caller_num=caller,
            callee_num="84950000000",
        ),
        AgentRinging(call_key=key, event_id=f"{key}:ring", at=at, agent=ANNA, queue="support"),
        CallAnswered(call_key=key, event_id=f"{key}:answer", at=at, agent=ANNA, queue="support"),
    )


def seed(server: LiveServer) -> dict[str, int]:
    """ООО «Ромашка» (+7 495 123-45-67) with Мария (+7 916 111-22-33, an earlier call) and Пётр."""

    async def run() -> dict[str, int]:
        async with server.ctx.sessionmaker() as session:
            org = await clients.create_organization(
                session,
                server.ctx.phones,
                OrganizationIn(name="ООО «Ромашка»", phones=[PhoneIn(raw="+7 495 123-45-67")]),
            )
            maria = await clients.create_client(
                session,
                server.ctx.phones,
                ClientIn(
                    name="Мария Сидорова",
                    organization_id=org.id,
                    position="бухгалтер",
                    phones=[PhoneIn(raw="+7 916 111-22-33")],
                ),
            )
            petr = await clients.create_client(
                session,
                server.ctx.phones,
                ClientIn(name="Пётр Иванов", organization_id=org.id, position="директор"),
            )
            earlier = _now() - timedelta(days=2)
            session.add(
                Call(
                    pbx="default",
                    call_key="earlier",
                    direction=Direction.INBOUND,
                    status=CallStatus.ENDED,
                    caller_num="89161112233",
                    caller_e164="+79161112233",
                    started_at=earlier,
                    answered_at=earlier,
                    ended_at=earlier + timedelta(minutes=3),
                    talk_seconds=180.0,
                    end_reason=EndReason.COMPLETED,
                    agent_name="Игорь Петров",
                    client_id=maria.id,
                    organization_id=org.id,
                    outcome=Outcome.CALL_BACK,
                    notes="Просила перезвонить после 15:00",
                    recording="rec/earlier.wav",
                )
            )
            await session.commit()
            return {"org": org.id, "maria": maria.id, "petr": petr.id}

    return server.run(run())


def load(server: LiveServer, model: type, **where: object) -> list:  # type: ignore[type-arg]
    async def run() -> list:  # type: ignore[type-arg]
        async with server.ctx.sessionmaker() as session:
            query = select(model).filter_by(**where)
            return list((await session.scalars(query)).all())

    return server.run(run())


def test_given_a_known_caller_then_the_card_shows_the_timeline_a_task_in_one_click_and_a_meeting(
    live_server: LiveServer, page: Page
) -> None:
    anna = live_server.create_user("anna", name="Анна Смирнова", extensions=["101"])
    ids = seed(live_server)
    login_via_api(page, "anna")
    open_operator_page(page)

    talk(live_server, "c1", "89161112233")
    card = page.get_by_test_id("pop-card")
    timeline = card.get_by_test_id("crm-timeline")
    expect(timeline).to_have_attribute("data-state", "ready")
    calls = timeline.locator("[data-testid=crm-entry][data-kind=call]")
    expect(calls).to_have_count(2)  # this call and the earlier one
    earlier = calls.filter(has_text="после 15:00")
    expect(earlier).to_contain_text("Перезвонить")
    expect(earlier).to_contain_text("Игорь Петров")
    expect(earlier.get_by_test_id("crm-entry-recording")).to_be_visible()

    card.get_by_test_id("crm-task").click()
    expect(card.get_by_test_id("crm-status")).to_contain_text("Задача создана")
    task_entry = timeline.locator("[data-testid=crm-entry][data-kind=task]")
    expect(task_entry).to_contain_text("Перезвонить: Мария Сидорова")
    [task] = load(live_server, Task)
    call_id = load(live_server, Call, call_key="c1")[0].id
    assert (task.client_id, task.organization_id, task.assignee_id, task.call_id) == (
        ids["maria"],
        ids["org"],
        anna.id,
        call_id,
    )
    assert task.due_at is not None
    assert timedelta(hours=23) < task.due_at - _now() < timedelta(hours=25)

    card.get_by_test_id("crm-meeting").click()
    form = card.get_by_test_id("crm-meeting-form")
    expect(form).to_be_visible()
    expect(card.get_by_test_id("crm-meeting-subject")).to_have_value("Встреча: Мария Сидорова")
    card.get_by_test_id("crm-meeting-place").fill("Офис клиента")
    card.get_by_test_id("crm-meeting-result").fill("Договорились о поставке в декабре")
    card.get_by_test_id("crm-meeting-save").click()
    expect(form).to_be_hidden()
    meeting_entry = timeline.locator("[data-testid=crm-entry][data-kind=meeting]")
    expect(meeting_entry).to_contain_text("Договорились о поставке в декабре")
    expect(meeting_entry).to_contain_text("Мария Сидорова")
    [meeting] = load(live_server, Meeting)
    assert meeting.done_at is not None
    assert (meeting.client_id, meeting.call_id, meeting.place) == (
        ids["maria"],
        call_id,
        "Офис клиента",
    )

    hang_up(live_server, "c1")
    expect(calls.first).not_to_contain_text("Идёт разговор")  # the live call's entry follows it
    card.get_by_test_id("crm-tag-input").fill("VIP")
    card.get_by_test_id("crm-tag-input").press("Enter")
    expect(card.get_by_test_id("crm-tag")).to_have_text(["VIP×"])
    page.screenshot(path="/tmp/client_card.png", full_page=True)


def test_given_the_company_number_calls_then_the_operator_picks_the_person_on_the_line(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", extensions=["101"])
    ids = seed(live_server)
    login_via_api(page, "anna")
    open_operator_page(page)

    talk(live_server, "c2", "84951234567")
    card = page.get_by_test_id("pop-card")
    expect(card.get_by_test_id("pop-client-name")).to_have_text("ООО «Ромашка»")
    options = card.get_by_test_id("crm-pick")
    expect(options).to_have_count(3)
    expect(options.nth(0)).to_contain_text("Мария Сидорова")
    expect(options.nth(1)).to_contain_text("Пётр Иванов")
    expect(options.nth(2)).to_have_attribute("aria-pressed", "true")  # nobody picked yet
    company_calls = card.locator("[data-testid=crm-entry][data-kind=call]")
    expect(company_calls).to_have_count(2)  # the company's timeline: this and Мария's call

    options.nth(1).click()
    expect(options.nth(1)).to_have_attribute("aria-pressed", "true")
    expect(card.locator("[data-testid=crm-entry][data-kind=call]")).to_have_count(1)

    def picked() -> int | None:
        return load(live_server, Call, call_key="c2")[0].client_id

    deadline = _now() + timedelta(seconds=5)
    while picked() != ids["petr"] and _now() < deadline:
        page.wait_for_timeout(50)
    assert picked() == ids["petr"]


def test_given_an_overdue_task_then_it_is_listed_and_closed_with_a_result(
    live_server: LiveServer, page: Page
) -> None:
    anna = live_server.create_user("anna", extensions=["101"])
    ids = seed(live_server)

    async def overdue() -> None:
        async with live_server.ctx.sessionmaker() as session:
            session.add(
                Task(
                    title="Выставить счёт",
                    client_id=ids["maria"],
                    assignee_id=anna.id,
                    due_at=_now() - timedelta(hours=3),
                )
            )
            await session.commit()

    live_server.run(overdue())
    login_via_api(page, "anna")
    open_operator_page(page)

    panel = page.get_by_test_id("crm-overdue")
    item = panel.get_by_test_id("crm-overdue-item")
    expect(item).to_contain_text("Выставить счёт")
    expect(item).to_contain_text("Мария Сидорова")
    item.get_by_test_id("crm-overdue-close").click()
    item.get_by_test_id("crm-overdue-result").fill("Счёт отправлен")
    item.get_by_test_id("crm-overdue-close").click()
    expect(panel).to_be_hidden()
    [task] = load(live_server, Task)
    assert (task.result, task.closed_by) == ("Счёт отправлен", anna.id)
    assert re.match(r"\d{4}-", task.done_at.isoformat())


def test_given_an_admin_then_the_audit_page_lists_who_viewed_a_card_and_others_are_refused(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", extensions=["101"])
    live_server.create_user("root", name="Админ", role=Role.ADMIN)
    ids = seed(live_server)
    login_via_api(page, "anna")
    assert page.request.get(f"/api/clients/{ids['maria']}").ok
    page.goto("/admin/audit")
    expect(page.get_by_test_id("audit-error")).to_have_text(
        "Журнал доступен только администраторам."
    )

    login_via_api(page, "root")
    page.goto(f"/admin/audit?client_id={ids['maria']}")
    rows = page.get_by_test_id("audit-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("view")
    expect(rows.first).to_contain_text(f"client {ids['maria']}")
    expect(rows.first).to_contain_text("Анна Смирнова")
    page.get_by_test_id("audit-client").fill("")
    page.get_by_test_id("audit-action").fill("login*")
    page.get_by_test_id("audit-apply").click()
    expect(rows).to_have_count(2)  # Анна's sign-in and the admin's
    page.screenshot(path="/tmp/audit_page.png", full_page=True)
