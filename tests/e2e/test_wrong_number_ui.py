"""A short call closed by the wrong-number rules: the operator's card says so and why, in the
operator's language, and one click undoes it for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    LiveServer,
    answer,
    eventually,
    hang_up,
    login_via_api,
    open_operator_page,
    ring,
)
from tests.e2e.test_operator_ui import call_row

pytestmark = pytest.mark.browser


def short_call(server: LiveServer, key: str, talk_s: float) -> None:
    """A caller rings Anna, she answers, the caller hangs up `talk_s` later."""
    at = datetime.now(UTC) - timedelta(seconds=talk_s + 2)
    ring(server, key, "89161234567", at=at)
    answered = at + timedelta(seconds=2)
    answer(server, key, at=answered)
    hang_up(server, key, at=answered + timedelta(seconds=talk_s))


@pytest.mark.parametrize(
    ("locale", "closed", "reason", "undo"),
    [
        ("ru", "Закрыт автоматически", "Разговор 1,2 с — короче 5 с, заметок нет", "Отменить"),
        ("en", "Closed automatically", "Talked 1.2 s — less than 5 s, and no notes", "Undo"),
    ],
)
def test_given_short_call_when_rules_close_it_then_card_explains_and_one_click_undoes(
    live_server: LiveServer, page: Page, locale: str, closed: str, reason: str, undo: str
) -> None:
    live_server.create_user("anna", extensions=["101"], locale=locale)
    login_via_api(page, "anna")
    open_operator_page(page)

    short_call(live_server, "c1", talk_s=1.2)

    card = page.get_by_test_id("pop-card")
    notice = card.get_by_test_id("pop-auto-closed")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(closed)
    reasons = notice.get_by_test_id("pop-auto-closed-reason")
    expect(reasons.first).to_have_text(reason)
    expect(reasons.nth(1)).to_contain_text("1,2" if locale == "ru" else "1.2")  # hung up
    expect(card.get_by_test_id("outcome-wrong_number")).to_have_attribute("aria-pressed", "true")
    button = notice.get_by_test_id("pop-auto-closed-undo")
    expect(button).to_have_text(undo)

    button.click()
    expect(notice).to_be_hidden()
    expect(card.get_by_test_id("outcome-wrong_number")).to_have_attribute("aria-pressed", "false")
    row = eventually(
        lambda: (r := call_row(live_server, "c1")).wrong_number_undone_at is not None and r
    )
    assert row, "the undo was not saved"
    assert row.outcome is None
