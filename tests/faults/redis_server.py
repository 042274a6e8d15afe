"""A private `redis-server` that a test kills (SIGKILL) and starts again on the same port.

Like the deployment's Redis it keeps nothing on disk (no RDB snapshot, no AOF), so a
restart loses every key: leases, fencing counters, event streams, shared queue views.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from asyncio.subprocess import DEVNULL, STDOUT, Process
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, binary: str, directory: Path, port: int | None = None) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.starts = 0
        self._process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, within_s: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        if self.running:
            raise RuntimeError("redis-server is running already")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = self.directory / f"redis-{self.starts}.log"
        # The server gets its own copy of the log file's descriptor: ours is closed at once.
        with log.open("wb") as output:
            self._process = await asyncio.create_subprocess_exec(
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--protected-mode",
                "no",
                stdout=output,
                stderr=STDOUT,
                stdin=DEVNULL,
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while not await self._answers_ping():
            if not self.running:
                raise RuntimeError(f"redis-server exited: {log.read_text(errors='replace')}")
            if loop.time() > deadline:
                raise RuntimeError(f"redis-server not ready within {within_s:g}s")
            await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no save, every connection reset."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        async with asyncio.timeout(10):
            await process.wait()

    async def _answers_ping(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            async with asyncio.timeout(1.0):
                return (await reader.readline()).startswith(b"+PONG")
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
