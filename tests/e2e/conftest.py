"""Browser tests: the real app under uvicorn in a background thread, driven by real Chromium.

`live_server` runs `create_app` on a migrated SQLite copy (the `settings` fixture of
tests/conftest.py) on a free 127.0.0.1 port; its `run()` executes a coroutine on the
server's own event loop, so tests can insert rows, create users and push call events
through the real services while the browser watches.

Chromium is Debian's /usr/bin/chromium (Playwright's own browser download is not used).
Without it the browser tests skip, unless CALLCENTER_REQUIRE_SERVICES=1 (CI): then they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from callcenter.auth.models import Role, User
from callcenter.cli_pbx import make_adapter
from callcenter.config import Settings
from callcenter.context import AppContext, build_context
from callcenter.events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallStarted,
    Direction,
    EndReason,
    Party,
)
from callcenter.main import create_app
from pbx_adapter.runner import AmiAdapter
from pbx_adapter.simulator import AmiSimulator, CallTiming
from tests.factories import make_user

CHROMIUM = Path(os.environ.get("CALLCENTER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_SERVICES = os.environ.get("CALLCENTER_REQUIRE_SERVICES") == "1"
PASSWORD = "correct-horse-battery-1"
"""The password every test user gets unless a test says otherwise."""

T = TypeVar("T")


@dataclass
class LiveServer:
    """The running app: its URL, its context, and a way into its event loop."""

    url: str
    ctx: AppContext
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        """Run `coro` on the server's loop (where the engine and the streams live)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def create_user(
        self,
        login: str,
        *,
        name: str = "Анна Смирнова",
        password: str = PASSWORD,
        role: Role = Role.OPERATOR,
        extensions: Sequence[str] = (),
        locale: str = "ru",
    ) -> User:
        """A user made by the real auth service (committed)."""
        return self.run(
            _create_user(
                self.ctx,
                login=login,
                name=name,
                password=password,
                role=role,
                extensions=list(extensions),
                locale=locale,
            )
        )

    def ingest(self, *events: CallEvent) -> None:
        """Apply PBX call events exactly as an adapter in this process would."""
        self.run(self.ctx.call_event_sink()(list(events)))

    def publish(self, topic: str, event_type: str, payload: dict[str, Any]) -> str:
        return self.run(self.ctx.streams.publish(topic, event_type, payload))


async def _create_user(
    ctx: AppContext,
    *,
    login: str,
    name: str,
    password: str,
    role: Role,
    extensions: list[str],
    locale: str,
) -> User:
    async with ctx.sessionmaker() as session:
        user = await make_user(
            session,
            login=login,
            name=name,
            password=password,
            role=role,
            extensions=extensions,
            queues=["support"] if extensions else [],
            locale=locale,
        )
        await session.commit()
    return user


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The real app on a free 127.0.0.1 port, served from a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"allowed_origins": [url], "host": "127.0.0.1"})
    ctx = build_context(settings)
    app = create_app(ctx=ctx)
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        loop="none",
        ws="websockets-sansio",
        ws_per_message_deflate=False,  # as `callcenter serve` runs it
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
        finally:
            loop.run_until_complete(ctx.close())
            loop.close()

    thread = threading.Thread(target=serve, name="uvicorn-e2e", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if failure or not thread.is_alive():
            raise RuntimeError(f"the app did not start: {failure!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not start within 15 s")
        time.sleep(0.02)
    try:
        yield LiveServer(url=url, ctx=ctx, loop=loop)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
    if failure:
        raise failure[0]


@pytest.fixture(scope="module")
def browser(sqlite_template: Path) -> Iterator[Browser]:
    """Debian's Chromium, headless.

    While Playwright's sync API is open it marks its own event loop as running in this
    thread, so nothing here may call `asyncio.run()` meanwhile: the migrated template
    database is made first (hence the dependency), the app's coroutines run on the server's
    thread, and the browser lives per module so async tests elsewhere get a clean thread.
    """
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (CALLCENTER_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    ctx = browser.new_context(
        base_url=live_server.url,
        locale="ru-RU",
        timezone_id="Europe/Moscow",
        viewport={"width": 1180, "height": 860},
    )
    ctx.set_default_timeout(7_000)
    errors: list[str] = []
    ctx.on("weberror", lambda error: errors.append(str(error.error)))
    try:
        yield ctx
    finally:
        ctx.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.on("console", _echo_console_errors)
    return page


def _echo_console_errors(message: Any) -> None:
    if message.type == "error":
        print(f"[browser console] {message.text}")


def login_via_api(page: Page, login: str, password: str = PASSWORD) -> dict[str, Any]:
    """Sign in through the API inside the page's context (the cookie lands in the browser)."""
    response = page.request.post("/api/auth/login", data={"login": login, "password": password})
    assert response.ok, response.text()
    body: dict[str, Any] = response.json()
    return body


def open_operator_page(page: Page) -> None:
    """Go to /operator and wait until the live link is up."""
    page.goto("/operator")
    wait_connected(page)


def wait_connected(page: Page) -> None:
    page.wait_for_selector("[data-testid=conn-status][data-state=connected]")


def sign_in(page: Page, login: str, password: str = PASSWORD) -> None:
    """Through the login form, as an operator would; ends on /operator, connected."""
    page.goto("/login")
    page.get_by_test_id("login-input").fill(login)
    page.get_by_test_id("password-input").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(re.compile(r"/operator$"), timeout=WAIT_MS)
    wait_connected(page)


def eventually(check: Callable[[], T], timeout: float = 10.0) -> T:
    """Poll `check()` until it returns something truthy (the last value otherwise)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


# --- calls played as PBX events through the app's own sink (no simulator) -------------------

ANNA = "Local/101@agents"


def ring(
    server: LiveServer,
    key: str,
    caller: str,
    *,
    name: str = "",
    agents: Sequence[str] = (ANNA,),
    queue: str = "support",
    at: datetime | None = None,
) -> None:
    """A caller enters `queue` and the agents' phones ring."""
    at = at or datetime.now(UTC)
    server.ingest(
        CallStarted(
            call_key=key,
            event_id=f"{key}:start",
            at=at,
            direction=Direction.INBOUND,
            caller_num=caller,
            caller_name=name,
            callee_num="84950000000",
        ),
        CallQueued(call_key=key, event_id=f"{key}:queued", at=at, queue=queue, position=1),
        *[
            AgentRinging(
                call_key=key, event_id=f"{key}:ring:{agent}", at=at, agent=agent, queue=queue
            )
            for agent in agents
        ],
    )


def answer(
    server: LiveServer,
    key: str,
    agent: str = ANNA,
    *,
    queue: str = "support",
    at: datetime | None = None,
) -> None:
    server.ingest(
        CallAnswered(
            call_key=key,
            event_id=f"{key}:answer",
            at=at or datetime.now(UTC),
            agent=agent,
            queue=queue,
        )
    )


def hang_up(server: LiveServer, key: str, *, at: datetime | None = None) -> None:
    """The caller hangs up."""
    server.ingest(
        CallEnded(
            call_key=key,
            event_id=f"{key}:end",
            at=at or datetime.now(UTC),
            reason=EndReason.COMPLETED,
            ended_by=Party.CALLER,
        )
    )


# --- the live path: a simulated Asterisk and the app's own adapter ---------------------------

AMI_USER = "crm"
AMI_SECRET = "e2e-ami-secret"
WAIT_MS = 10_000
"""How long a browser expectation waits for something that crosses the whole path."""

STILL = CallTiming(
    ring_s=(600.0, 600.0),
    ring_timeout_s=600.0,
    talk_s=(600.0, 600.0),
    patience_s=(600.0, 600.0),
)
"""Nothing happens by itself within a test: no member answers or gives up ringing, no caller
loses patience, no talk ends (the test answers and hangs up)."""


@dataclass
class LivePbx:
    """The simulated Asterisk and the adapter reading it, both on the server's loop."""

    server: LiveServer
    sim: AmiSimulator
    adapter: AmiAdapter

    def do(self, action: Callable[[AmiSimulator], T]) -> T:
        """Call a (synchronous) simulator method on the loop it lives on."""

        async def on_loop() -> T:
            return action(self.sim)

        return self.server.run(on_loop())

    def actions(self, name: str) -> list[dict[str, str]]:
        """The AMI actions called `name` the simulator has received so far."""
        return self.do(lambda sim: [dict(a) for a in sim.actions if a.get("Action") == name])

    def settle(self) -> None:
        """Wait until every frame the simulator sent so far has been applied and committed."""

        async def drained() -> None:
            # Frames in flight on the socket: give the reader a moment, then drain the sink.
            for _ in range(3):
                await asyncio.sleep(0.05)
                await self.adapter.pipeline.flush()

        self.server.run(drained())


async def start_pbx(
    ctx: AppContext, *, seed: int
) -> tuple[AmiSimulator, AmiAdapter, asyncio.Task[None]]:
    """An AMI simulator (the default queues) and the app's adapter logged into it."""
    sim = AmiSimulator("127.0.0.1", 0, AMI_USER, AMI_SECRET, timing=STILL, seed=seed)
    await sim.start()
    adapter = make_adapter(ctx, sim.host, sim.port, AMI_USER, AMI_SECRET)
    task = asyncio.create_task(adapter.run(), name="e2e-pbx-adapter")
    try:
        await adapter.client.wait_connected(10)
        await sim.wait_logged_in(1, within_s=10)
        await adapter.pipeline.flush()
    except BaseException:
        await stop_pbx(sim, adapter, task)
        raise
    return sim, adapter, task


async def stop_pbx(sim: AmiSimulator, adapter: AmiAdapter, task: asyncio.Task[None]) -> None:
    await adapter.stop()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, 10)
    await sim.stop()


@pytest.fixture
def pbx_seed() -> int:
    """The simulator's random seed (a test module may override it)."""
    return 7


@pytest.fixture
def pbx(live_server: LiveServer, pbx_seed: int) -> Iterator[LivePbx]:
    """The live path on the live server's loop, stopped at teardown; a call event the adapter
    had to set aside fails the test."""
    sim, adapter, task = live_server.run(start_pbx(live_server.ctx, seed=pbx_seed), timeout=20)
    try:
        yield LivePbx(live_server, sim, adapter)
    finally:
        live_server.run(stop_pbx(sim, adapter, task), timeout=20)
    assert adapter.pipeline.poisoned == 0, "the adapter set call events aside"
