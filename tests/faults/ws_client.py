"""A Python client of the `/ws` resume protocol, as `ui/shared/event_client.js` speaks it:
snapshot → last ids per topic → open, send `resume`, wait for `ready` → events; after a drop,
reconnect and resume from the last ids; `reload` (or close code 4000) → a fresh snapshot.

It keeps every event the server delivered, duplicates included (the browser would drop a
duplicate silently; a fault test must see it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

CLOSE_RELOAD = 4000


def event_seq(event_id: str) -> tuple[str, int]:
    epoch, _, seq = event_id.rpartition("-")
    return epoch, int(seq)


@dataclass
class ResumingClient:
    base_url: str
    cookie: str
    last_ids: dict[str, str] = field(default_factory=dict)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    reloads: list[dict[str, str]] = field(default_factory=list)
    """The snapshot positions each reload started again from."""
    connects: int = 0
    _ws: ClientConnection | None = None

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws"

    async def load_snapshot(self) -> None:
        async with httpx.AsyncClient(
            base_url=self.base_url, cookies={"cc_session": self.cookie}
        ) as http:
            response = await http.get("/api/realtime/snapshot")
            response.raise_for_status()
            self.last_ids = dict(response.json()["last_ids"])

    async def connect(self, within_s: float = 10.0) -> None:
        """Open, resume from the last ids, and wait for `ready` (reloading if told to)."""
        async with asyncio.timeout(within_s):
            while True:
                try:
                    ws = await connect(
                        self.ws_url,
                        additional_headers={"Cookie": f"cc_session={self.cookie}"},
                        origin=self.base_url,  # type: ignore[arg-type]
                        open_timeout=5,
                    )
                except (OSError, TimeoutError):
                    await asyncio.sleep(0.05)
                    continue
                self.connects += 1
                await ws.send(json.dumps({"type": "resume", "last_ids": self.last_ids}))
                try:
                    first = json.loads(await ws.recv())
                except ConnectionClosed as closed:
                    await ws.close()
                    if closed.rcvd is not None and closed.rcvd.code == CLOSE_RELOAD:
                        await self._reload()
                    await asyncio.sleep(0.05)
                    continue
                if first.get("type") == "reload":
                    await ws.close()
                    await self._reload()
                    continue
                assert first.get("type") == "ready", first
                self._ws = ws
                return

    async def _reload(self) -> None:
        await self.load_snapshot()
        self.reloads.append(dict(self.last_ids))

    def drop(self) -> bool:
        """The network goes: the socket is reset without a closing handshake (False when
        there is no open socket to drop)."""
        if self._ws is None:
            return False
        self._ws.transport.abort()
        return True

    async def receive_until_closed(self) -> None:
        """Take events until the link breaks (a reload asked for is done before returning)."""
        ws = self._ws
        assert ws is not None
        try:
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "heartbeat":
                    continue
                if kind == "reload":
                    await self._reload()
                    break
                self.delivered.append(message)
                self.last_ids[message["topic"]] = str(message["id"])
        except ConnectionClosed as closed:
            if closed.rcvd is not None and closed.rcvd.code == CLOSE_RELOAD:
                await self._reload()
        finally:
            self._ws = None
            with contextlib.suppress(Exception):
                await ws.close()
            ws.transport.abort()
