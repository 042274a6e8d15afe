"""The operator's live page in a real browser, fed by the real call pipeline.

Calls are driven by PBX call events through the same sink an adapter uses (dedupe → state
machine → records → commit → publish), so the browser sees exactly the payloads production
sends, and a reload finds real call rows in the snapshot.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from callcenter.calls.models import Call, Outcome
from callcenter.calls.state import CallStatus
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, OrganizationIn, PhoneIn
from callcenter.events import CallTransferred, Direction, EndReason
from callcenter.tasks.models import Task
from tests.e2e.conftest import (
    ANNA,
    LiveServer,
    answer,
    eventually,
    hang_up,
    login_via_api,
    open_operator_page,
    ring,
    wait_connected,
)

pytestmark = pytest.mark.browser

IGOR = "Local/102@agents"
MARIA_PHONE = "8 916 111-22-33"


def _now() -> datetime:
    return datetime.now(UTC)


def seed_maria(server: LiveServer) -> int:
    """Мария Сидорова of ООО «Ромашка», with an open task and an earlier call."""

    async def seed() -> int:
        async with server.ctx.sessionmaker() as session:
            org = await clients.create_organization(
                session,
                server.ctx.phones,
                OrganizationIn(name="ООО «Ромашка»", phones=[PhoneIn(raw="+7 495 123-45-67")]),
            )
            client = await clients.create_client(
                session,
                server.ctx.phones,
                ClientIn(
                    name="Мария Сидорова",
                    organization_id=org.id,
                    position="бухгалтер",
                    phones=[PhoneIn(raw=MARIA_PHONE)],
                ),
            )
            session.add(
                Task(
                    title="Выставить счёт за декабрь",
                    client_id=client.id,
                    due_at=_now() + timedelta(days=2),
                )
            )
            earlier = _now() - timedelta(days=2)
            session.add(
                Call(
                    pbx="default",
                    call_key="earlier-1",
                    direction=Direction.INBOUND,
                    status=CallStatus.ENDED,
                    caller_num="89161112233",
                    caller_e164="+79161112233",
                    started_at=earlier,
                    answered_at=earlier + timedelta(seconds=5),
                    ended_at=earlier + timedelta(minutes=3),
                    end_reason=EndReason.COMPLETED,
                    agent_name="Игорь Петров",
                    client_id=client.id,
                    organization_id=org.id,
                    outcome=Outcome.CALL_BACK,
                    notes="Просила перезвонить после 15:00",
                )
            )
            await session.commit()
            return client.id

    return server.run(seed())


def call_row(server: LiveServer, key: str) -> Call:
    async def load() -> Call:
        async with server.ctx.sessionmaker() as session:
            return (await session.scalars(select(Call).where(Call.call_key == key))).one()

    return server.run(load())


def applied(page: Page) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = page.evaluate("window.callcenter.eventLog")
    return log


def test_given_a_known_caller_when_the_call_rings_connects_and_ends_then_the_card_follows(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", name="Анна Смирнова", extensions=["101"])
    seed_maria(live_server)
    login_via_api(page, "anna")
    open_operator_page(page)
    expect(page.get_by_test_id("empty-state")).to_be_visible()

    ring(live_server, "c1", "89161112233", name="MARIA")
    card = page.get_by_test_id("pop-card")
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("pop-client-name")).to_have_text("Мария Сидорова")
    expect(card.get_by_test_id("pop-organization")).to_have_text("ООО «Ромашка»")
    expect(card.get_by_test_id("pop-position")).to_have_text("бухгалтер")
    expect(card.get_by_test_id("pop-number")).to_have_text(re.compile(r"916"))
    expect(card.get_by_test_id("pop-status")).to_have_attribute("data-state", "ringing")
    expect(card.get_by_test_id("pop-task")).to_contain_text("Выставить счёт за декабрь")
    expect(card.get_by_test_id("pop-last-call")).to_contain_text("Перезвонить")
    expect(card.get_by_test_id("pop-last-call")).to_contain_text("после 15:00")
    expect(page.get_by_test_id("empty-state")).to_be_hidden()
    expect(card.get_by_test_id("outcome-completed")).to_have_count(0)

    answer(live_server, "c1")
    expect(card.get_by_test_id("pop-status")).to_have_attribute("data-state", "connected")
    timer = card.get_by_test_id("pop-timer")
    expect(timer).to_have_text(re.compile(r"^0:0\d$"))
    first = timer.inner_text()
    expect(timer).not_to_have_text(first, timeout=3_000)  # it runs
    card.get_by_test_id("pop-notes").fill("Счёт отправлен на почту")
    page.screenshot(path="/tmp/operator.png", full_page=True)

    # A second tab of the same operator follows the outcome chosen in the first one.
    other = page.context.new_page()
    open_operator_page(other)
    expect(other.get_by_test_id("pop-card")).to_have_count(1)
    page.bring_to_front()  # a background tab gets few animation frames: clicks would crawl

    hang_up(live_server, "c1")
    expect(card.get_by_test_id("pop-status")).to_have_attribute("data-state", "ended")
    expect(card.get_by_test_id("outcome-completed")).to_be_visible()
    for value in Outcome:
        expect(card.get_by_test_id(f"outcome-{value.value}")).to_be_visible()
    card.get_by_test_id("outcome-completed").click()
    expect(card.get_by_test_id("outcome-completed")).to_have_attribute("aria-pressed", "true")
    # (The call was 1-3 s long: the wrong-number rules may close it first; the click wins.)
    row = eventually(lambda: (r := call_row(live_server, "c1")).outcome is Outcome.COMPLETED and r)
    assert row, "the operator's outcome was not saved"
    call_id = row.id
    assert page.request.get(f"/api/calls/{call_id}").json()["outcome"] == "completed"
    expect(other.get_by_test_id("outcome-completed")).to_have_attribute("aria-pressed", "true")

    card.get_by_test_id("pop-notes-save").click()
    expect(card.get_by_test_id("pop-notes-state")).to_have_text("Сохранено")
    assert call_row(live_server, "c1").notes == "Счёт отправлен на почту"

    card.get_by_test_id("pop-close").click()
    expect(page.get_by_test_id("pop-card")).to_have_count(0)
    expect(page.get_by_test_id("empty-state")).to_be_visible()


def test_given_a_ringing_call_when_the_page_reloads_then_the_card_is_shown_once(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", extensions=["101"])
    seed_maria(live_server)
    login_via_api(page, "anna")
    open_operator_page(page)
    ring(live_server, "c2", "+79161112233")
    expect(page.get_by_test_id("pop-card")).to_have_count(1)
    assert call_row(live_server, "c2").ringing_agents == [ANNA]

    page.reload()
    wait_connected(page)
    cards = page.get_by_test_id("pop-card")
    expect(cards).to_have_count(1)
    expect(cards.get_by_test_id("pop-client-name")).to_have_text("Мария Сидорова")
    expect(cards.get_by_test_id("pop-status")).to_have_attribute("data-state", "ringing")

    answer(live_server, "c2")
    expect(cards.get_by_test_id("pop-status")).to_have_attribute("data-state", "connected")
    page.reload()
    wait_connected(page)
    expect(cards).to_have_count(1)
    expect(cards.get_by_test_id("pop-status")).to_have_attribute("data-state", "connected")
    expect(cards.get_by_test_id("pop-timer")).to_have_text(re.compile(r"^\d+:\d\d$"))
    expect(cards.get_by_test_id("pop-client-name")).to_have_text("Мария Сидорова")
    page.wait_for_timeout(300)
    expect(cards).to_have_count(1)


def test_given_the_socket_drops_when_a_call_rings_meanwhile_then_it_arrives_exactly_once(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", extensions=["101"])
    login_via_api(page, "anna")
    open_operator_page(page)
    ring(live_server, "before", "89031234567")
    expect(page.get_by_test_id("pop-card")).to_have_count(1)

    page.evaluate("window.callcenter.events.socket.close()")
    ring(live_server, "during", "89037654321", name="Пётр")
    expect(page.get_by_test_id("pop-card")).to_have_count(2)
    wait_connected(page)
    statuses = page.evaluate("window.callcenter.statusLog")
    assert statuses[-2:] == ["reconnecting", "connected"], statuses
    during = call_row(live_server, "during").id
    ringing = [e for e in applied(page) if e["type"] == "call.ringing" and e["call"] == during]
    assert len(ringing) == 1
    ids = [e["id"] for e in applied(page)]
    assert len(ids) == len(set(ids))
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("pop-card")).to_have_count(2)


def test_given_an_unknown_caller_then_one_click_creates_the_card_and_a_lost_ring_goes_away(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", extensions=["101"])
    live_server.create_user("igor", name="Игорь Петров", extensions=["102"])
    login_via_api(page, "anna")
    open_operator_page(page)
    ring(live_server, "c4", "84957778899", name="Пётр Васильев", agents=(ANNA, IGOR))
    card = page.locator("[data-testid=pop-card]")
    expect(card.get_by_test_id("pop-new-caller")).to_be_visible()
    expect(card.get_by_test_id("pop-new-name")).to_have_value("Пётр Васильев")
    card.get_by_test_id("pop-create-client").click()
    expect(card.get_by_test_id("pop-client-name")).to_have_text("Пётр Васильев")
    expect(card.get_by_test_id("pop-new-caller")).to_be_hidden()
    found = page.request.get("/api/lookup", params={"phone": "+74957778899"}).json()
    assert [o["client_name"] for o in found["owners"]] == ["Пётр Васильев"]

    answer(live_server, "c4", agent=IGOR)
    expect(card.get_by_test_id("pop-withdrawn-reason")).to_have_text(
        "Звонок принят другим оператором"
    )
    expect(card).to_have_count(0, timeout=7_000)


def test_given_a_shared_number_and_two_calls_at_once_then_both_cards_show_and_owner_is_picked(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", extensions=["101"])
    seed_maria(live_server)

    async def share() -> None:
        async with live_server.ctx.sessionmaker() as session:
            for name in ("Олег Ершов", "Ирина Ершова"):
                await clients.create_client(
                    session,
                    live_server.ctx.phones,
                    ClientIn(name=name, phones=[PhoneIn(raw="+7 812 600-70-80", shared=True)]),
                )
            await session.commit()

    live_server.run(share())
    login_via_api(page, "anna")
    open_operator_page(page)
    ring(live_server, "shared", "88126007080", name="ERSHOV")
    ring(live_server, "maria", MARIA_PHONE)
    cards = page.get_by_test_id("pop-card")
    expect(cards).to_have_count(2)
    shared = cards.filter(has=page.get_by_test_id("pop-owners"))
    options = shared.get_by_test_id("pop-owner-option")
    expect(options).to_have_count(2)
    expect(shared.get_by_test_id("pop-client-name")).to_have_count(0)
    options.filter(has_text="Ирина Ершова").click()
    expect(shared.get_by_test_id("pop-client-name")).to_have_text("Ирина Ершова")
    expect(cards.get_by_test_id("pop-client-name")).to_have_count(2)


def test_given_a_connected_call_when_the_operator_transfers_it_then_the_card_moves_on(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", extensions=["101"])
    seed_maria(live_server)
    login_via_api(page, "anna")
    open_operator_page(page)
    ring(live_server, "c9", "+79161112233")
    answer(live_server, "c9")
    card = page.get_by_test_id("pop-card")
    expect(card.get_by_test_id("pop-status")).to_have_attribute("data-state", "connected")

    live_server.ingest(
        CallTransferred(
            call_key="c9",
            event_id="c9:transfer",
            at=_now(),
            from_agent=ANNA,
            to_agent=IGOR,
            to_agent_name="Игорь Петров",
        )
    )

    expect(card.get_by_test_id("pop-withdrawn-reason")).to_contain_text("переведён")
    expect(card).to_have_count(0, timeout=8_000)
    assert call_row(live_server, "c9").agent == IGOR
