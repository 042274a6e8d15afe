"""The login page in a real browser: errors, the redirect after login, the language switch."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from callcenter.auth.ratelimit import LoginRateLimiter
from tests.e2e.conftest import PASSWORD, LiveServer, wait_connected

pytestmark = pytest.mark.browser


def _sign_in(page: Page, login: str, password: str) -> None:
    page.get_by_test_id("login-input").fill(login)
    page.get_by_test_id("password-input").fill(password)
    page.get_by_test_id("login-submit").click()


def _switch_and_save(page: Page, locale: str) -> None:
    """Click the language switch and wait until the server has stored the choice."""
    with page.expect_response(lambda r: r.url.endswith("/api/auth/me/locale")) as saved:
        page.get_by_test_id(f"lang-{locale}").click()
    assert saved.value.ok, saved.value.text()


def test_given_a_wrong_password_when_signing_in_then_an_error_is_shown(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", extensions=["101"])
    page.goto("/login")
    _sign_in(page, "anna", "not-the-password")
    error = page.get_by_test_id("login-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("Неверный логин или пароль.")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_test_id("password-input")).to_have_value("")


def test_given_the_right_password_when_signing_in_then_the_operator_page_opens(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", name="Анна Смирнова", extensions=["101"])
    page.goto("/login?next=//evil.example/steal")
    _sign_in(page, "anna", PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/operator")
    expect(page.get_by_test_id("user-name")).to_have_text("Анна Смирнова")
    wait_connected(page)
    # Back on /login while signed in: straight on to the page asked for.
    page.goto("/login?next=/operator")
    expect(page).to_have_url(f"{live_server.url}/operator")


def test_given_too_many_attempts_when_signing_in_then_the_wait_is_shown(
    live_server: LiveServer, page: Page
) -> None:
    live_server.ctx.login_limiter = LoginRateLimiter(2)
    live_server.create_user("anna")
    page.goto("/login")
    for _ in range(2):
        _sign_in(page, "anna", "wrong-password")
        expect(page.get_by_test_id("login-error")).to_have_text("Неверный логин или пароль.")
    _sign_in(page, "anna", "wrong-password")
    error = page.get_by_test_id("login-error")
    expect(error).to_have_text(re.compile(r"Слишком много попыток.*\d+ с\."))
    expect(page.get_by_test_id("login-submit")).to_be_disabled()


def test_given_a_language_chosen_then_texts_change_and_the_choice_survives_reload(
    live_server: LiveServer, browser: Browser, page: Page
) -> None:
    live_server.create_user("anna", extensions=["101"], locale="ru")
    page.goto("/login")
    expect(page.locator("h1")).to_have_text("Вход в систему")
    page.get_by_test_id("lang-en").click()
    expect(page.locator("h1")).to_have_text("Sign in")
    expect(page.get_by_test_id("login-submit")).to_have_text("Sign in")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.reload()
    expect(page.locator("h1")).to_have_text("Sign in")

    # Chosen before signing in: kept for the user.
    _sign_in(page, "anna", PASSWORD)
    expect(page).to_have_url(re.compile(r"/operator$"))
    wait_connected(page)
    expect(page.get_by_test_id("conn-status")).to_have_text("Online")
    expect(page.get_by_test_id("logout")).to_have_text("Log out")

    # Switched back on the operator page: saved on the server, so another browser sees it.
    _switch_and_save(page, "ru")
    expect(page.get_by_test_id("logout")).to_have_text("Выйти")
    expect(page.get_by_test_id("lang-ru")).to_have_attribute("aria-pressed", "true")
    page.reload()
    wait_connected(page)
    expect(page.get_by_test_id("logout")).to_have_text("Выйти")
    me = page.request.get("/api/auth/me").json()
    assert me["user"]["locale"] == "ru"

    _switch_and_save(page, "en")
    expect(page.get_by_test_id("logout")).to_have_text("Log out")
    other = browser.new_context(base_url=live_server.url, locale="ru-RU")
    try:
        fresh = other.new_page()
        fresh.goto("/login")
        expect(fresh.locator("h1")).to_have_text("Вход в систему")
        _sign_in(fresh, "anna", PASSWORD)
        expect(fresh).to_have_url(re.compile(r"/operator$"))
        expect(fresh.get_by_test_id("logout")).to_have_text("Log out")
        expect(fresh.locator("html")).to_have_attribute("lang", "en")
    finally:
        other.close()
    page.bring_to_front()

    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/operator")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Foperator$"))
