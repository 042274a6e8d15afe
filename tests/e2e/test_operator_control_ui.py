"""The operator's call control in a real browser, through the live path: a call button on the
client card and a call-back from the missed-calls worklist (the simulator records the
Originate each click sends), and pausing with a reason from the header."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from callcenter.calls.models import Call
from callcenter.calls.state import CallStatus
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, PhoneIn
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


@pytest.fixture
def pbx_seed() -> int:
    return 9


def seed_client(server: LiveServer, name: str, phone: str) -> int:
    async def seed() -> int:
        async with server.ctx.sessionmaker() as session:
            client = await clients.create_client(
                session, server.ctx.phones, ClientIn(name=name, phones=[PhoneIn(raw=phone)])
            )
            await session.commit()
            return client.id

    return server.run(seed())


def ended(server: LiveServer, call_key: str) -> bool:
    async def load() -> bool:
        async with server.ctx.sessionmaker() as session:
            row = await session.scalar(select(Call).where(Call.call_key == call_key))
            return row is not None and row.status is CallStatus.ENDED

    return server.run(load())


def test_given_a_client_card_and_a_missed_call_when_clicking_call_then_originate_is_sent_once(
    live_server: LiveServer, pbx: LivePbx, page: Page
) -> None:
    anna = live_server.create_user("anna", name="Анна Смирнова", extensions=["101"])
    seed_client(live_server, "Мария Сидорова", "+7 916 123-45-67")
    sign_in(page, "anna")
    worklist = page.get_by_test_id("worklist")
    expect(worklist.get_by_test_id("worklist-empty")).to_be_visible()

    # A call from Мария rings Анна, is answered and ends: her card offers a call button.
    linkedid = pbx.do(lambda sim: sim.ring(ANNA, "89161234567", "Мария"))
    card = page.get_by_test_id("pop-card")
    expect(card.get_by_test_id("pop-client-name")).to_have_text("Мария Сидорова", timeout=WAIT_MS)
    expect(card.get_by_test_id("dial-button")).to_have_count(0)
    pbx.do(lambda sim: sim.answer(linkedid))
    pbx.do(lambda sim: sim.hangup(linkedid))
    expect(card.get_by_test_id("pop-status")).to_have_attribute("data-state", "ended")
    button = card.get_by_test_id("dial-button")
    with page.expect_response(lambda r: r.url.endswith("/api/outbound-calls")) as answered:
        button.dblclick()
    assert answered.value.status == 202, answered.value.text()
    expect(page.get_by_test_id("toast")).to_contain_text("+7 916 123-45-67")
    expect(button).to_be_disabled()
    [originate] = eventually(lambda: pbx.actions("Originate"))
    assert {k: v for k, v in originate.items() if k != "ActionID"} == {
        "Action": "Originate",
        "Channel": "Local/101@agents",
        "Exten": "89161234567",
        "Context": "from-internal",
        "Priority": "1",
        "CallerID": '"Мария Сидорова" <89161234567>',
        "Variable": (
            f"CRM_ORIGINATED=1,CRM_REQUEST_ID={answered.value.json()['request_id']},"
            f"CRM_USER_ID={anna.id}"
        ),
        "Timeout": "30000",
        "Async": "true",
    }

    # A caller gives up in Анна's queue: the worklist offers a one-click call-back.
    missed = pbx.do(lambda sim: sim.start_call("support", "+380441234567", "Олег"))
    pbx.do(lambda sim: sim.hangup(missed))
    assert eventually(lambda: ended(live_server, missed)), "the missed call was not recorded"
    worklist.get_by_test_id("worklist-refresh").click()
    item = worklist.get_by_test_id("worklist-item")
    expect(item).to_have_count(1, timeout=WAIT_MS)
    expect(item.get_by_test_id("worklist-name")).to_have_text("Олег")
    expect(worklist.get_by_test_id("worklist-count")).to_have_text("1")
    item.get_by_test_id("worklist-call-back").click()
    eventually(lambda: len(pbx.actions("Originate")) == 2)
    call_back = pbx.actions("Originate")[1]
    assert (call_back["Channel"], call_back["Exten"]) == ("Local/101@agents", "+380441234567")
    expect(item).to_have_attribute("data-attempted", "1", timeout=WAIT_MS)
    item.get_by_test_id("worklist-done").click()
    expect(item).to_have_count(0, timeout=WAIT_MS)
    assert len(pbx.actions("Originate")) == 2, "a double click dialled twice"


def test_given_an_operator_when_pausing_with_a_reason_then_the_header_shows_paused(
    live_server: LiveServer, pbx: LivePbx, page: Page
) -> None:
    live_server.create_user("anna", name="Анна Смирнова", extensions=["101"])
    sign_in(page, "anna")
    state = page.get_by_test_id("presence-state")
    expect(state).to_have_attribute("data-state", "available", timeout=WAIT_MS)
    expect(state).to_have_text("На линии")

    page.get_by_test_id("pause-button").click()
    page.get_by_test_id("pause-reason").select_option("break")
    expect(page.get_by_test_id("pause-text")).to_be_hidden()
    page.get_by_test_id("pause-submit").click()

    expect(state).to_have_attribute("data-state", "paused")
    expect(state).to_have_text("Пауза: Перерыв")
    [paused] = pbx.actions("QueuePause")
    assert (paused["Interface"], paused["Paused"], paused["Reason"]) == (
        "Local/101@agents",
        "true",
        "break",
    )
    assert "Queue" not in paused

    # The PBX reports it too: a reload shows the same.
    page.reload()
    wait_connected(page)
    expect(state).to_have_text("Пауза: Перерыв", timeout=WAIT_MS)

    page.get_by_test_id("unpause-button").click()
    expect(state).to_have_attribute("data-state", "available")
    assert pbx.actions("QueuePause")[-1]["Paused"] == "false"
