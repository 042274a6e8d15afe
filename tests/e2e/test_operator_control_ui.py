"""The operator's call control in a real browser, through the live path: a call button on the
client card and a call-back from the missed-calls worklist (the simulator records the
Originate each click sends), and pausing with a reason from the header."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from callcenter.calls.models import Call
from callcenter.calls.state import CallStatus
from callcenter.cli_pbx import make_adapter
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, PhoneIn
from pbx_adapter.runner import AmiAdapter
from pbx_adapter.simulator import AmiSimulator, CallTiming
from tests.e2e.conftest import PASSWORD, LiveServer, wait_connected

pytestmark = pytest.mark.browser

T = TypeVar("T")
AMI_USER, AMI_SECRET = "crm", "control-ui-secret"
ANNA = "Local/101@agents"
WAIT_MS = 10_000
STILL = CallTiming(
    ring_s=(600.0, 600.0), ring_timeout_s=600.0, talk_s=(600.0, 600.0), patience_s=(600.0, 600.0)
)


@dataclass
class LivePbx:
    server: LiveServer
    sim: AmiSimulator
    adapter: AmiAdapter

    def do(self, action: Callable[[AmiSimulator], T]) -> T:
        async def on_loop() -> T:
            return action(self.sim)

        return self.server.run(on_loop())

    def sent(self, action: str) -> list[dict[str, str]]:
        return self.do(lambda sim: [a for a in sim.actions if a.get("Action") == action])


@pytest.fixture
def pbx(live_server: LiveServer) -> Iterator[LivePbx]:
    async def start() -> tuple[AmiSimulator, AmiAdapter, asyncio.Task[None]]:
        sim = AmiSimulator("127.0.0.1", 0, AMI_USER, AMI_SECRET, timing=STILL, seed=9)
        await sim.start()
        adapter = make_adapter(live_server.ctx, sim.host, sim.port, AMI_USER, AMI_SECRET)
        task = asyncio.create_task(adapter.run(), name="e2e-control-adapter")
        await adapter.client.wait_connected(10)
        await adapter.pipeline.flush()
        return sim, adapter, task

    sim, adapter, task = live_server.run(start(), timeout=20)
    try:
        yield LivePbx(live_server, sim, adapter)
    finally:

        async def stop() -> None:
            await adapter.stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
            await sim.stop()

        live_server.run(stop(), timeout=20)


def sign_in(page: Page, login: str) -> None:
    page.goto("/login")
    page.get_by_test_id("login-input").fill(login)
    page.get_by_test_id("password-input").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(re.compile(r"/operator$"), timeout=WAIT_MS)
    wait_connected(page)


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


def eventually(check: Callable[[], T], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


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
    [originate] = eventually(lambda: pbx.sent("Originate"))
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
    eventually(lambda: len(pbx.sent("Originate")) == 2)
    call_back = pbx.sent("Originate")[1]
    assert (call_back["Channel"], call_back["Exten"]) == ("Local/101@agents", "+380441234567")
    expect(item).to_have_attribute("data-attempted", "1", timeout=WAIT_MS)
    item.get_by_test_id("worklist-done").click()
    expect(item).to_have_count(0, timeout=WAIT_MS)
    assert len(pbx.sent("Originate")) == 2, "a double click dialled twice"


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
    [paused] = pbx.sent("QueuePause")
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
    assert pbx.sent("QueuePause")[-1]["Paused"] == "false"
