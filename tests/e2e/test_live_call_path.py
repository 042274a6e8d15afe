"""The operator's page fed through the whole live path, with no call event injected by hand.

A real `AmiSimulator` (TCP AMI server) and a real `AmiAdapter` (built by `make_adapter` for the
live server's context) run on the live server's event loop, so every card the browser shows
has gone simulator → TCP → AMI client → translate → ingest/commit → realtime stream →
websocket → browser.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import select

from callcenter.calls.agents import extension_of
from callcenter.calls.models import Call, Outcome
from callcenter.calls.state import CallStatus
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, OrganizationIn, PhoneIn
from callcenter.events import Party
from pbx_adapter.simulator import DEFAULT_QUEUES
from tests.e2e.conftest import (
    WAIT_MS,
    LivePbx,
    LiveServer,
    eventually,
    sign_in,
    wait_connected,
)

pytestmark = pytest.mark.browser

ANNA = "Local/101@agents"
MARIA_STORED = "+7 916 123-45-67"
MARIA_DIALS = "89161234567"
MARIA_E164 = "+79161234567"
RINGALL = next(spec for spec in DEFAULT_QUEUES if spec.strategy == "ringall")


# --------------------------------------------------------------------------- helpers


def seed_maria(server: LiveServer) -> int:
    """Мария Сидорова, бухгалтер of ООО Ромашка, with her mobile stored as "+7 916 123-45-67"."""

    async def seed() -> int:
        async with server.ctx.sessionmaker() as session:
            org = await clients.create_organization(
                session, server.ctx.phones, OrganizationIn(name="ООО Ромашка")
            )
            client = await clients.create_client(
                session,
                server.ctx.phones,
                ClientIn(
                    name="Мария Сидорова",
                    organization_id=org.id,
                    position="бухгалтер",
                    phones=[PhoneIn(raw=MARIA_STORED)],
                ),
            )
            await session.commit()
            return client.id

    return server.run(seed())


def call_row(server: LiveServer, call_key: str) -> Call | None:
    async def load() -> Call | None:
        async with server.ctx.sessionmaker() as session:
            return (
                await session.scalars(select(Call).where(Call.call_key == call_key))
            ).one_or_none()

    return server.run(load())


def card_id(card: Locator) -> int:
    value = card.get_attribute("data-call-id")
    assert value is not None
    return int(value)


def expect_card_of_maria(card: Locator) -> None:
    expect(card.get_by_test_id("pop-client-name")).to_have_text("Мария Сидорова", timeout=WAIT_MS)
    expect(card.get_by_test_id("pop-organization")).to_have_text("ООО Ромашка")
    expect(card.get_by_test_id("pop-position")).to_have_text("бухгалтер")
    expect(card.get_by_test_id("pop-number")).to_contain_text("916")
    expect(card.get_by_test_id("pop-caller-name")).to_contain_text("Мария")


def expect_state(card: Locator, state: str) -> None:
    expect(card.get_by_test_id("pop-status")).to_have_attribute(
        "data-state", state, timeout=WAIT_MS
    )


def reload_connected(page: Page) -> None:
    page.reload()
    wait_connected(page)


# --------------------------------------------------------------------------- tests


def test_given_a_known_caller_dialling_in_then_the_card_survives_reloads_and_takes_an_outcome(
    live_server: LiveServer, pbx: LivePbx, page: Page
) -> None:
    anna = live_server.create_user("anna", name="Анна Смирнова", extensions=["101"])
    maria_id = seed_maria(live_server)
    sign_in(page, "anna")
    expect(page.get_by_test_id("user-name")).to_have_text("Анна Смирнова")
    expect(page.get_by_test_id("empty-state")).to_be_visible()

    linkedid = pbx.do(lambda sim: sim.ring(ANNA, MARIA_DIALS, "Мария"))
    cards = page.get_by_test_id("pop-card")
    expect(cards).to_have_count(1, timeout=WAIT_MS)
    expect_card_of_maria(cards)
    expect_state(cards, "ringing")
    expect(page.get_by_test_id("empty-state")).to_be_hidden()
    expect(cards.get_by_test_id("pop-outcomes")).to_be_hidden()
    call_id = card_id(cards)

    # A reload while it rings: the snapshot brings the card back, once.
    reload_connected(page)
    expect(cards).to_have_count(1)
    expect_card_of_maria(cards)
    expect_state(cards, "ringing")
    assert card_id(cards) == call_id

    pbx.do(lambda sim: sim.answer(linkedid))
    expect_state(cards, "connected")
    timer = cards.get_by_test_id("pop-timer")
    expect(timer).to_have_text(re.compile(r"^0:0\d$"))
    expect_card_of_maria(cards)
    expect(timer).to_have_text(re.compile(r"^0:0[2-9]$"), timeout=WAIT_MS)  # it runs

    # A reload mid-call: still one card, connected, the timer still counting from the
    # answer (not restarted by the reload).
    reload_connected(page)
    expect(cards).to_have_count(1)
    expect_state(cards, "connected")
    expect(timer).to_have_text(re.compile(r"^0:(0[2-9]|[1-5]\d)$"))
    first = timer.inner_text()
    expect(timer).not_to_have_text(first, timeout=3_000)
    expect_card_of_maria(cards)
    assert card_id(cards) == call_id
    ringing = [
        e
        for e in page.evaluate("window.callcenter.eventLog")
        if e["type"] == "call.ringing" and e["call"] == call_id
    ]
    assert ringing == [], "a ring replayed after the reload"

    pbx.do(lambda sim: sim.hangup(linkedid))
    expect_state(cards, "ended")
    expect(cards.get_by_test_id("pop-outcomes")).to_be_visible()
    done = cards.get_by_test_id("outcome-completed")
    expect(done).to_be_visible()
    expect(done).to_have_attribute("aria-pressed", "false")
    with page.expect_response(
        lambda r: r.url.endswith(f"/api/calls/{call_id}") and r.request.method == "PATCH"
    ) as saved:
        done.click()
    assert saved.value.ok, saved.value.text()
    expect(done).to_have_attribute("aria-pressed", "true")
    expect(cards).to_have_count(1)

    record = page.request.get(f"/api/calls/{call_id}")
    assert record.ok, record.text()
    body = record.json()
    assert body["call_key"] == linkedid
    assert body["outcome"] == "completed"
    assert body["status"] == "ended"
    assert body["end_reason"] == "completed"
    assert body["ended_by"] == "caller"
    assert body["caller_num"] == MARIA_DIALS
    assert body["caller_name"] == "Мария"
    assert body["caller_e164"] == MARIA_E164
    assert body["client_id"] == maria_id
    assert body["agent"] == ANNA
    assert body["agent_user_id"] == anna.id
    assert body["answered_at"] is not None
    assert body["ended_at"] is not None
    assert body["started_at"] <= body["answered_at"] <= body["ended_at"]

    row = call_row(live_server, linkedid)
    assert row is not None
    assert row.id == call_id
    assert row.outcome_by == anna.id
    assert row.talk_seconds is not None
    assert row.talk_seconds >= 1


def test_given_a_ringall_queue_when_one_operator_answers_then_the_other_card_is_withdrawn(
    live_server: LiveServer, pbx: LivePbx, browser: Browser, page: Page
) -> None:
    first, second = RINGALL.members[0], RINGALL.members[1]
    assert (extension_of(first), extension_of(second)) == ("104", "105")
    olga = live_server.create_user("olga", name="Ольга Берг", extensions=["104"])
    live_server.create_user("pavel", name="Павел Ким", extensions=["105"])
    maria_id = seed_maria(live_server)

    other_context = browser.new_context(
        base_url=live_server.url,
        locale="ru-RU",
        timezone_id="Europe/Moscow",
        viewport={"width": 1180, "height": 860},
    )
    other_context.set_default_timeout(7_000)
    errors: list[str] = []
    other_context.on("weberror", lambda error: errors.append(str(error.error)))
    try:
        other = other_context.new_page()
        sign_in(page, "olga")
        sign_in(other, "pavel")

        linkedid = pbx.do(
            lambda sim: sim.start_call(
                queue=RINGALL.name, caller_num=MARIA_DIALS, caller_name="Мария"
            )
        )
        olga_card = page.get_by_test_id("pop-card")
        pavel_card = other.get_by_test_id("pop-card")
        for card in (olga_card, pavel_card):
            expect(card).to_have_count(1, timeout=WAIT_MS)
            expect_state(card, "ringing")
            expect_card_of_maria(card)
        assert card_id(olga_card) == card_id(pavel_card)
        pbx.settle()
        ringing = call_row(live_server, linkedid)
        assert ringing is not None
        assert set(ringing.ringing_agents or ()) >= {first, second}

        pbx.do(lambda sim: sim.answer(linkedid, first))
        expect_state(olga_card, "connected")
        expect(olga_card.get_by_test_id("pop-timer")).to_have_text(re.compile(r"^\d+:\d\d$"))
        other.bring_to_front()
        expect(pavel_card.get_by_test_id("pop-withdrawn-reason")).to_have_text(
            "Звонок принят другим оператором", timeout=WAIT_MS
        )
        expect_state(pavel_card, "withdrawn")
        expect(pavel_card).to_have_count(0, timeout=WAIT_MS)
        expect(other.get_by_test_id("empty-state")).to_be_visible()
        page.bring_to_front()
        expect(olga_card).to_have_count(1)
        expect_state(olga_card, "connected")

        answered = eventually(
            lambda: (r := call_row(live_server, linkedid)) and r.answered_at and r
        )
        assert answered
        assert answered.agent == first
        assert answered.agent_user_id == olga.id
        assert answered.queue == RINGALL.name
        assert answered.client_id == maria_id
        assert answered.caller_e164 == MARIA_E164
        assert not answered.ringing_agents

        # The one who lost the ring sees nothing of the call after a reload either.
        reload_connected(other)
        expect(other.get_by_test_id("pop-card")).to_have_count(0)

        pbx.do(lambda sim: sim.hangup(linkedid, by="agent"))
        expect_state(olga_card, "ended")
        expect(olga_card.get_by_test_id("outcome-sale")).to_be_visible()
        olga_card.get_by_test_id("outcome-sale").click()
        expect(olga_card.get_by_test_id("outcome-sale")).to_have_attribute("aria-pressed", "true")
        # The wrong-number rules may close this short call first; the operator's click wins.
        ended = eventually(
            lambda: (r := call_row(live_server, linkedid)) and r.outcome is Outcome.SALE and r
        )
        assert ended, call_row(live_server, linkedid)
        assert ended.status is CallStatus.ENDED
        assert ended.ended_by is Party.AGENT
        assert ended.ended_at is not None
        expect(other.get_by_test_id("pop-card")).to_have_count(0)
    finally:
        other_context.close()
    assert not errors, f"uncaught errors in the second operator's page: {errors}"
