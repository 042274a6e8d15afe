"""The supervisors' wallboard in a real browser, fed by the whole live path.

A real `AmiSimulator` (TCP AMI server) and the app's own `AmiAdapter` (`make_adapter`: call
sink, live queue board, PBX control) run on the live server's loop, so every change the
wallboard shows went simulator → TCP → translate → records and live board → `queues.updated`
→ websocket → browser, and every button the supervisor presses goes browser → API → AMI
action → simulator (which records it) → AMI event → back to the wallboard.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from callcenter.auth.models import Role
from tests.e2e.conftest import WAIT_MS, LivePbx, LiveServer, login_via_api, wait_connected

pytestmark = pytest.mark.browser

MARIA_DIALS = "89161234567"


@pytest.fixture
def pbx_seed() -> int:
    return 11


# --------------------------------------------------------------------------- helpers


def open_wallboard(page: Page, server: LiveServer, *, query: str = "") -> None:
    server.create_user("sveta", name="Светлана Орлова", role=Role.SUPERVISOR, extensions=["200"])
    login_via_api(page, "sveta")
    page.goto(f"/supervisor{query}")
    wait_connected(page)


def tile(page: Page, queue: str) -> Locator:
    return page.locator(f"[data-testid=queue-tile][data-queue='{queue}']")


def agent(page: Page, extension: str) -> Locator:
    return page.locator(f"[data-testid=agent-row][data-extension='{extension}']")


def kpi(card: Locator, key: str) -> Locator:
    return card.get_by_test_id(f"kpi-{key}")


# --------------------------------------------------------------------------- tests


def test_given_calls_played_by_the_pbx_then_the_wallboard_follows_them_and_pauses_an_agent(
    live_server: LiveServer, pbx: LivePbx, page: Page
) -> None:
    open_wallboard(page, live_server)
    support = tile(page, "support")
    expect(support).to_be_visible()
    expect(tile(page, "sales")).to_be_visible()
    expect(support.get_by_test_id("tile-waiting")).to_have_text("0")
    expect(kpi(support, "offered")).to_have_text("0")
    expect(page.get_by_test_id("waiting-none")).to_be_visible()
    for extension in ("101", "102", "103"):
        expect(agent(page, extension).get_by_test_id("agent-state")).to_have_attribute(
            "data-state", "idle"
        )

    # A caller joins the support queue; the queue rings its first member.
    linkedid = pbx.do(
        lambda sim: sim.start_call(queue="support", caller_num=MARIA_DIALS, caller_name="Мария")
    )
    expect(support.get_by_test_id("tile-waiting")).to_have_text("1", timeout=WAIT_MS)
    waiting = page.get_by_test_id("waiting-row")
    expect(waiting).to_have_count(1)
    expect(waiting.get_by_test_id("waiting-caller")).to_contain_text("Мария")
    expect(waiting.get_by_test_id("waiting-caller")).to_contain_text(MARIA_DIALS)
    expect(waiting.get_by_test_id("waiting-queue")).to_have_text("support")
    expect(waiting.get_by_test_id("waiting-wait")).to_have_text(re.compile(r"^0:0[1-9]$"))
    expect(support.get_by_test_id("tile-longest")).to_have_text(re.compile(r"^0:0[1-9]$"))
    anna = agent(page, "101")
    expect(anna.get_by_test_id("agent-state")).to_have_attribute("data-state", "ringing")
    expect(anna.get_by_test_id("agent-detail")).to_contain_text("Мария")

    # The agent answers: in a call with the caller, nobody waits.
    pbx.do(lambda sim: sim.answer(linkedid))
    expect(anna.get_by_test_id("agent-state")).to_have_attribute(
        "data-state", "in_call", timeout=WAIT_MS
    )
    expect(anna.get_by_test_id("agent-state")).to_have_text("Разговаривает")
    expect(anna.get_by_test_id("agent-detail")).to_have_text(f"с Мария ({MARIA_DIALS})")
    expect(support.get_by_test_id("tile-waiting")).to_have_text("0")
    expect(page.get_by_test_id("waiting-row")).to_have_count(0)

    # Listen in: the supervisor's phone (200) is rung into ChanSpy on the agent's phone.
    anna.get_by_test_id("agent-listen").click()
    expect(page.get_by_test_id("toast")).to_contain_text("слушать разговор Оператор 101")
    spies = pbx.actions("Originate")
    assert [(a["Channel"], a["Application"], a["Data"]) for a in spies] == [
        ("Local/200@agents", "ChanSpy", "Local/101@agents-,qbES")
    ]

    # Hang up: today's counters take the call.
    pbx.do(lambda sim: sim.hangup(linkedid))
    expect(kpi(support, "offered")).to_have_text("1", timeout=WAIT_MS)
    expect(kpi(support, "answered")).to_have_text("1")
    expect(kpi(support, "abandoned")).to_have_text("0")
    expect(kpi(support, "service_level")).to_have_text("100 %")
    expect(anna.get_by_test_id("agent-state")).to_have_attribute("data-state", "idle")
    expect(anna.get_by_test_id("agent-listen")).to_have_count(0)

    # Each figure explains itself on focus.
    level = support.locator("[data-kpi=service_level]")
    level.focus()
    expect(level.locator(".kpi__formula")).to_be_visible()
    expect(level.locator(".kpi__formula")).to_contain_text("20")

    # Pause an agent with a reason from the page: QueuePause reaches the PBX, and the PBX's
    # QueueMemberPause comes back to the wall.
    igor = agent(page, "102")
    igor.get_by_test_id("agent-pause").click()
    dialog = page.get_by_test_id("pause-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("pause-reason-lunch").check()
    dialog.get_by_test_id("pause-confirm").click()
    expect(dialog).to_be_hidden()
    expect(igor.get_by_test_id("agent-state")).to_have_attribute(
        "data-state", "paused", timeout=WAIT_MS
    )
    expect(igor.get_by_test_id("agent-detail")).to_have_text("Обед")
    expect(igor.get_by_test_id("agent-since")).to_have_text(re.compile(r"^0:0\d$"))
    pauses = pbx.actions("QueuePause")
    assert [(a["Interface"], a.get("Paused"), a.get("Reason")) for a in pauses] == [
        ("Local/102@agents", "true", "lunch")
    ]
    expect(support.get_by_test_id("tile-agents")).to_contain_text("На паузе: 1")

    igor.get_by_test_id("agent-unpause").click()
    expect(igor.get_by_test_id("agent-state")).to_have_attribute(
        "data-state", "idle", timeout=WAIT_MS
    )
    assert [a.get("Paused") for a in pbx.actions("QueuePause")] == ["true", "false"]


def test_given_a_low_threshold_when_a_caller_waits_then_the_tile_raises_an_alarm_in_words(
    live_server: LiveServer, pbx: LivePbx, page: Page
) -> None:
    open_wallboard(page, live_server)
    support = tile(page, "support")
    expect(support).to_have_attribute("data-alarm", "false")

    support.get_by_test_id("tile-settings").click()
    dialog = page.get_by_test_id("settings-dialog")
    dialog.get_by_test_id("settings-max-wait").fill("2")
    with page.expect_response(
        lambda r: r.url.endswith("/api/queues/support/settings") and r.request.method == "PUT"
    ) as saved:
        dialog.get_by_test_id("settings-save").click()
    assert saved.value.ok, saved.value.text()
    assert saved.value.json()["alarm_longest_wait_s"] == 2
    expect(dialog).to_be_hidden()

    pbx.do(lambda sim: sim.start_call(queue="support", caller_num="4951234567"))
    expect(support.get_by_test_id("tile-waiting")).to_have_text("1", timeout=WAIT_MS)
    alarm = support.locator("[data-testid=tile-alarm][data-alarm=longest_wait]")
    expect(alarm).to_have_text(re.compile(r"^Звонящий ждёт 0:0[2-9] \(порог 0:02\)$"))
    expect(support).to_have_attribute("data-alarm", "true")
    expect(tile(page, "sales")).to_have_attribute("data-alarm", "false")

    # The thresholds survive a reload (they come back with the snapshot).
    page.reload()
    wait_connected(page)
    expect(support).to_have_attribute("data-alarm", "true")
    support.get_by_test_id("tile-settings").click()
    expect(page.get_by_test_id("settings-max-wait")).to_have_value("2")


def test_given_a_supervisor_when_they_add_and_remove_a_queue_member_then_the_pbx_and_wall_follow(
    live_server: LiveServer, pbx: LivePbx, page: Page
) -> None:
    open_wallboard(page, live_server)
    pavel = agent(page, "104")
    expect(pavel.get_by_test_id("agent-queue-name")).to_have_text(["sales"])

    page.get_by_test_id("add-member").click()
    dialog = page.get_by_test_id("add-dialog")
    dialog.get_by_test_id("add-queue").select_option("support")
    dialog.get_by_test_id("add-agent").fill("104")
    dialog.get_by_test_id("add-confirm").click()
    expect(dialog).to_be_hidden()
    expect(pavel.get_by_test_id("agent-queue-name")).to_have_text(
        ["sales", "support"], timeout=WAIT_MS
    )
    added = pbx.actions("QueueAdd")
    assert [(a["Queue"], a["Interface"]) for a in added] == [("support", "Local/104@agents")]
    expect(tile(page, "support").get_by_test_id("tile-agents")).to_contain_text("Свободны: 4")

    pavel.locator("[data-testid=agent-queue][data-queue=support]").get_by_test_id(
        "agent-remove"
    ).click()
    confirm = page.get_by_test_id("confirm-dialog")
    expect(confirm).to_contain_text("Оператор 104")
    confirm.get_by_test_id("confirm-yes").click()
    expect(pavel.get_by_test_id("agent-queue-name")).to_have_text(["sales"], timeout=WAIT_MS)
    removed = pbx.actions("QueueRemove")
    assert [(a["Queue"], a["Interface"]) for a in removed] == [("support", "Local/104@agents")]
    expect(tile(page, "support").get_by_test_id("tile-agents")).to_contain_text("Свободны: 3")


def test_given_tv_mode_then_no_button_shows_and_english_switches_the_wall(
    live_server: LiveServer, pbx: LivePbx, page: Page
) -> None:
    page.set_viewport_size({"width": 1920, "height": 1080})
    open_wallboard(page, live_server, query="?tv=1")
    support = tile(page, "support")
    expect(support).to_be_visible()
    expect(page.locator("html")).to_have_class(re.compile(r"\btv\b"))
    expect(agent(page, "101")).to_be_visible()
    expect(agent(page, "101").get_by_test_id("agent-pause")).to_be_hidden()
    expect(support.get_by_test_id("tile-settings")).to_be_hidden()
    expect(page.get_by_test_id("add-member")).to_be_hidden()
    expect(page.get_by_test_id("agent-remove").first).to_be_hidden()
    expect(page.get_by_test_id("tv-toggle")).to_have_attribute("href", "/supervisor")
    # Big numerals: the waiting count is drawn larger than at laptop size.
    size = support.get_by_test_id("tile-waiting").evaluate(
        "node => parseFloat(getComputedStyle(node).fontSize)"
    )
    assert size >= 70

    page.get_by_test_id("lang-en").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_title("Queues — Callcenter")
    expect(support.locator(".big__label").first).to_have_text("Waiting")
    expect(agent(page, "101").get_by_test_id("agent-state")).to_have_text("Available")
    expect(support.locator("[data-kpi=offered] .kpi__label")).to_have_text("Offered")


def test_given_an_operator_then_the_wallboard_says_not_allowed(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", extensions=["101"])
    login_via_api(page, "anna")
    page.goto("/supervisor")
    expect(page.get_by_test_id("not-allowed")).to_be_visible()
    expect(page.get_by_test_id("not-allowed")).to_contain_text("для супервизоров")
    expect(page.get_by_test_id("wall")).to_be_hidden()
    expect(page.get_by_test_id("tv-toggle")).to_be_hidden()


def test_given_nobody_signed_in_then_the_wallboard_sends_to_the_login_page(
    live_server: LiveServer, page: Page
) -> None:
    page.goto("/supervisor?tv=1")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fsupervisor%3Ftv%3D1$"))
