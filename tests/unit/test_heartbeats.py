"""The process's one heartbeat loop: slots spread over the interval, one session lookup per
slot, revoked sessions closed, stalled sockets not waited for."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

import pytest

from callcenter.realtime.heartbeats import Heartbeats

REVOKED = 4401
HEARTBEAT = '{"type":"heartbeat"}'


class FakeSocket:
    def __init__(self, *, stalled: bool = False) -> None:
        self.sent: list[str] = []
        self.closed_with: int | None = None
        self.got_something = asyncio.Event()
        self.unstall = asyncio.Event()
        if not stalled:
            self.unstall.set()

    async def send_text(self, data: str) -> None:
        await self.unstall.wait()
        self.sent.append(data)
        self.got_something.set()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed_with = code
        self.got_something.set()


class Sessions:
    """The session lookup: which tokens are live, and what each call asked about."""

    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.asked: list[set[str]] = []
        self.down = False

    async def __call__(self, tokens: Sequence[str]) -> Collection[str]:
        self.asked.append(set(tokens))
        if self.down:
            raise ConnectionError("database away")
        return self.live & set(tokens)


async def _settle() -> None:
    """Let the send tasks that `beat_slot` started run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def _stopped(beats: Heartbeats) -> None:
    while beats.running:  # noqa: ASYNC110 (the loop task is the heartbeats' own)
        await asyncio.sleep(0.01)


@pytest.fixture
async def sessions() -> Sessions:
    return Sessions({"anna", "igor"})


async def test_given_sockets_that_connect_together_then_they_are_spread_over_the_slots(
    sessions: Sessions,
) -> None:
    beats = Heartbeats(sessions, 15.0, beat=HEARTBEAT, revoked_code=REVOKED, slices=4)
    entries = [beats.add(FakeSocket(), "anna") for _ in range(10)]

    assert beats.slot_sizes() == [3, 3, 2, 2]
    assert len(beats) == 10
    for entry in entries[:3]:
        beats.discard(entry)
    beats.discard(entries[0])  # twice: no effect
    assert sorted(beats.slot_sizes()) == [1, 2, 2, 2]
    assert len(beats) == 7
    await beats.close()


async def test_given_a_slot_then_its_sessions_are_checked_in_one_lookup_and_the_live_beat(
    sessions: Sessions,
) -> None:
    beats = Heartbeats(sessions, 15.0, beat=HEARTBEAT, revoked_code=REVOKED, slices=2)
    sockets = [FakeSocket() for _ in range(4)]
    for socket, token in zip(sockets, ["anna", "igor", "anna", "igor"], strict=True):
        beats.add(socket, token)

    await beats.beat_slot(0)
    await _settle()

    assert sessions.asked == [{"anna"}]  # slot 0 holds sockets 0 and 2, both anna's
    assert [s.sent for s in sockets] == [[HEARTBEAT], [], [HEARTBEAT], []]
    await beats.close()


async def test_given_a_revoked_session_then_its_socket_is_closed_and_no_longer_beaten(
    sessions: Sessions,
) -> None:
    beats = Heartbeats(sessions, 15.0, beat=HEARTBEAT, revoked_code=REVOKED, slices=1)
    kept, revoked = FakeSocket(), FakeSocket()
    beats.add(kept, "anna")
    beats.add(revoked, "olga")  # no live session

    await beats.beat_slot(0)
    await _settle()

    assert revoked.closed_with == REVOKED
    assert revoked.sent == []
    assert kept.sent == [HEARTBEAT]
    assert len(beats) == 1
    await beats.beat_slot(0)
    await _settle()
    assert sessions.asked[-1] == {"anna"}
    await beats.close()


async def test_given_the_sessions_cannot_be_checked_then_nobody_is_closed_or_beaten(
    sessions: Sessions,
) -> None:
    beats = Heartbeats(sessions, 15.0, beat=HEARTBEAT, revoked_code=REVOKED, slices=1)
    socket = FakeSocket()
    beats.add(socket, "anna")
    sessions.down = True

    await beats.beat_slot(0)
    await _settle()

    assert (socket.sent, socket.closed_with, len(beats)) == ([], None, 1)
    sessions.down = False
    await beats.beat_slot(0)
    await _settle()
    assert socket.sent == [HEARTBEAT]
    await beats.close()


async def test_given_a_stalled_socket_then_the_others_are_beaten_and_it_gets_no_second_beat(
    sessions: Sessions,
) -> None:
    beats = Heartbeats(sessions, 15.0, beat=HEARTBEAT, revoked_code=REVOKED, slices=1)
    stalled, healthy = FakeSocket(stalled=True), FakeSocket()
    beats.add(stalled, "anna")
    beats.add(healthy, "igor")

    await beats.beat_slot(0)
    await _settle()
    await beats.beat_slot(0)
    await _settle()

    assert healthy.sent == [HEARTBEAT, HEARTBEAT]
    assert stalled.sent == []
    assert sessions.asked == [{"anna", "igor"}, {"igor"}]
    stalled.unstall.set()
    await _settle()
    assert stalled.sent == [HEARTBEAT]
    await beats.close()


async def test_given_a_first_socket_then_the_loop_runs_until_the_last_has_gone(
    sessions: Sessions,
) -> None:
    beats = Heartbeats(sessions, 0.01, beat=HEARTBEAT, revoked_code=REVOKED, slices=2)
    assert not beats.running
    socket = FakeSocket()
    entry = beats.add(socket, "anna")
    assert beats.running

    await asyncio.wait_for(socket.got_something.wait(), 5)
    assert socket.sent[0] == HEARTBEAT
    beats.discard(entry)
    await asyncio.wait_for(_stopped(beats), 5)  # by itself, within a tick
    again = FakeSocket()
    beats.add(again, "igor")
    await asyncio.wait_for(again.got_something.wait(), 5)
    await beats.close()
    assert not beats.running
