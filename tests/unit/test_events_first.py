"""`EventsFirst`: the event websocket goes straight to its endpoint, everything else to the
app behind it."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from callcenter.realtime.api import EVENTS_PATH, EventsFirst


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])


async def _receive() -> Message:
    return {"type": "websocket.connect"}


async def _send(message: Message) -> None:
    return None


def _scope(kind: str, path: str, root_path: str = "") -> dict[str, Any]:
    return {"type": kind, "path": path, "root_path": root_path, "headers": []}


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    served = Recorder()
    monkeypatch.setattr("callcenter.realtime.api._events_endpoint", served)
    return served.paths


async def test_given_the_event_socket_then_the_endpoint_serves_it_and_the_app_never_sees_it(
    endpoint: list[str],
) -> None:
    app = Recorder()
    first = EventsFirst(app)

    await first(_scope("websocket", EVENTS_PATH), _receive, _send)
    await first(_scope("websocket", "/cc" + EVENTS_PATH, root_path="/cc"), _receive, _send)

    assert endpoint == [EVENTS_PATH, "/cc" + EVENTS_PATH]
    assert app.paths == []


async def test_given_anything_else_then_the_app_behind_serves_it(endpoint: list[str]) -> None:
    app = Recorder()
    first = EventsFirst(app)

    await first(_scope("http", EVENTS_PATH), _receive, _send)
    await first(_scope("websocket", "/other"), _receive, _send)
    await first(_scope("websocket", EVENTS_PATH, root_path="/cc"), _receive, _send)

    assert app.paths == [EVENTS_PATH, "/other", EVENTS_PATH]
    assert endpoint == []
