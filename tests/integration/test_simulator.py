"""The AMI simulator seen from a bare TCP client: replay, generation, actions, faults."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.events import CallAnswered, CallEnded, CallQueued, CallStarted
from pbx_adapter.frames import Frame, FrameParser, iter_stream, serialize_frame
from pbx_adapter.simulator import (
    AmiSimulator,
    CallTiming,
    QueueSpec,
    load_replay,
    main,
    replay_schedule,
)
from pbx_adapter.translate import TranslatorState, translate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ami"
USER, SECRET = "crm", "sim-secret"
FAST = CallTiming(scale=0.01, patience_s=(60.0, 90.0))


async def eventually(check: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within_s}s")
        await asyncio.sleep(0.01)


class RawClient:
    """A bare AMI client: writes actions, keeps every byte and frame it receives."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = FrameParser()
        self.data = bytearray()
        self.reads: list[bytes] = []
        self.frames: list[Frame] = []
        self.closed = asyncio.Event()
        self._ids = 0
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, sim: AmiSimulator) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        return cls(reader, writer)

    async def _read(self) -> None:
        try:
            while chunk := await self.reader.read(65536):
                self.reads.append(chunk)
                self.data.extend(chunk)
                self.frames.extend(self.parser.feed(chunk))
        except ConnectionError:
            pass
        finally:
            self.closed.set()

    def send(self, action: str, **fields: str) -> str:
        self._ids += 1
        action_id = f"t-{self._ids}"
        self.writer.write(serialize_frame({"Action": action, "ActionID": action_id, **fields}))
        return action_id

    async def ask(self, action: str, **fields: str) -> list[Frame]:
        """Send an action; its answer frames (the response, then any list events)."""
        action_id = self.send(action, **fields)
        await eventually(lambda: self._answered(action_id))
        return [f for f in self.frames if f.get("ActionID") == action_id]

    def _answered(self, action_id: str) -> bool:
        mine = [f for f in self.frames if f.get("ActionID") == action_id]
        if not mine:
            return False
        if mine[0].get("EventList") == "start":
            return mine[-1].get("Event", "").endswith("Complete")
        return True

    async def login(self, secret: str = SECRET) -> Frame:
        return (await self.ask("Login", Username=USER, Secret=secret))[0]

    def events(self, name: str | None = None) -> list[Frame]:
        return [
            f
            for f in self.frames
            if "Event" in f and "ActionID" not in f and (name is None or f["Event"] == name)
        ]

    async def close(self) -> None:
        self.writer.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
async def sim() -> AsyncIterator[AmiSimulator]:
    simulator = AmiSimulator("127.0.0.1", 0, USER, SECRET, timing=FAST, seed=3)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def client(sim: AmiSimulator) -> AsyncIterator[RawClient]:
    raw = await RawClient.connect(sim)
    yield raw
    await raw.close()


# ----------------------------------------------------------------- login and actions


async def test_given_a_connection_then_the_banner_comes_first_and_actions_need_a_login(
    sim: AmiSimulator, client: RawClient
) -> None:
    refused = await client.ask("Ping")
    assert refused[0] == {
        "Response": "Error",
        "ActionID": refused[0]["ActionID"],
        "Message": "Permission denied",
    }
    assert client.parser.banner == "Asterisk Call Manager/9.0.0"
    assert (await client.login("wrong"))["Response"] == "Error"
    assert sim.logged_in == 0
    accepted = await client.login()
    assert (accepted["Response"], accepted["Message"]) == ("Success", "Authentication accepted")
    assert sim.logged_in == 1
    pong = (await client.ask("Ping"))[0]
    assert (pong["Response"], pong["Ping"]) == ("Success", "Pong")
    await eventually(lambda: bool(client.events("FullyBooted")))
    goodbye = (await client.ask("Logoff"))[0]
    assert goodbye["Response"] == "Goodbye"
    await asyncio.wait_for(client.closed.wait(), 5)


async def test_given_actions_when_received_then_every_one_is_recorded_in_order(
    sim: AmiSimulator, client: RawClient
) -> None:
    await client.login()
    await client.ask("QueuePause", Interface="Local/102@agents", Paused="true", Reason="Обед")
    await client.ask("QueueAdd", Queue="sales", Interface="Local/107@agents", MemberName="Оп 107")
    await client.ask("QueueRemove", Queue="sales", Interface="Local/107@agents")
    originate = await client.ask(
        "Originate", Channel="Local/101@agents", Exten="100", Context="x", Async="true"
    )
    assert originate[0]["Message"] == "Originate successfully queued"
    await client.ask("Events", EventMask="on")
    assert [a["Action"] for a in sim.actions] == [
        "Login",
        "QueuePause",
        "QueueAdd",
        "QueueRemove",
        "Originate",
        "Events",
    ]
    assert sim.actions[1]["Reason"] == "Обед"
    responses = [f for f in client.frames if f.get("Event") == "OriginateResponse"]
    assert [r["ActionID"] for r in responses] == [originate[0]["ActionID"]]
    assert [e["Event"] for e in client.events() if e["Event"].startswith("QueueMember")] == [
        "QueueMemberPause",
        "QueueMemberAdded",
        "QueueMemberRemoved",
    ]
    members = await client.ask("QueueStatus", Queue="support")
    paused = [m for m in members if m.get("Event") == "QueueMember" and m["Paused"] == "1"]
    assert [(m["Location"], m["PausedReason"]) for m in paused] == [("Local/102@agents", "Обед")]


# ----------------------------------------------------------------- live state


async def test_given_a_ringing_then_answered_then_ended_call_then_core_show_channels_follows(
    sim: AmiSimulator, client: RawClient
) -> None:
    await client.login()
    linkedid = sim.ring("101", "89161234567", "Ёлкин Пётр")
    ringing = channels(await client.ask("CoreShowChannels"))
    assert {c["Linkedid"] for c in ringing} == {linkedid}
    by_name = {c["Channel"].rsplit("-", 1)[0]: c for c in ringing}
    assert by_name["IAX2/127.0.0.1:4570"]["CallerIDName"] == "Ёлкин Пётр"
    assert by_name["IAX2/127.0.0.1:4570"]["Application"] == "Dial"
    assert re.fullmatch(r"\d\d:\d\d:\d\d", by_name["IAX2/127.0.0.1:4570"]["Duration"])
    assert sorted(c["ChannelStateDesc"] for c in ringing) == ["Ring", "Ringing", "Up"]

    sim.answer(linkedid)
    talking = channels(await client.ask("CoreShowChannels"))
    bridges = {c["Channel"].split("-")[0]: c["BridgeId"] for c in talking}
    assert bridges["IAX2/127.0.0.1:4570"]
    assert bridges["IAX2/127.0.0.1:4570"] == next(
        c["BridgeId"] for c in talking if c["Channel"].endswith(";1")
    )

    sim.hangup(linkedid)
    answer = await client.ask("CoreShowChannels")
    assert channels(answer) == []
    assert answer[-1]["Event"] == "CoreShowChannelsComplete"
    assert answer[-1]["ListItems"] == "0"
    ended = translate_all(client.events())
    assert [type(e) for e in ended if isinstance(e, CallEnded | CallAnswered)] == [
        CallAnswered,
        CallEnded,
    ]


async def test_given_callers_waiting_and_agents_paused_then_queue_status_lists_them() -> None:
    sim = AmiSimulator(
        "127.0.0.1",
        0,
        USER,
        SECRET,
        queues=[QueueSpec("support", "8001", ("Local/101@agents",), timeout_s=3000)],
        timing=FAST,
    )
    async with sim:
        raw = await RawClient.connect(sim)
        try:
            await raw.login()
            await raw.ask("QueuePause", Interface="Local/101@agents", Paused="true")
            first = sim.start_call("support", "+79161234567", "Иван Петров")
            second = sim.start_call("support", "anonymous", "")
            status = await raw.ask("QueueStatus")
            kinds = [f.get("Event") for f in status[1:]]
            assert kinds == [
                "QueueParams",
                "QueueMember",
                "QueueEntry",
                "QueueEntry",
                "QueueStatusComplete",
            ]
            params, member, entry1, entry2, complete = status[1:]
            assert (params["Queue"], params["Calls"], params["Strategy"]) == (
                "support",
                "2",
                "rrmemory",
            )
            assert (member["Location"], member["Paused"]) == ("Local/101@agents", "1")
            assert [(e["Uniqueid"], e["Position"]) for e in (entry1, entry2)] == [
                (first, "1"),
                (second, "2"),
            ]
            assert entry1["CallerIDName"] == "Иван Петров"
            assert complete["ListItems"] == "4"
            sim.hangup(first)
            entries = [f for f in await raw.ask("QueueStatus") if f.get("Event") == "QueueEntry"]
            assert [(e["Uniqueid"], e["Position"]) for e in entries] == [(second, "1")]
            await eventually(lambda: bool(raw.events("QueueCallerAbandon")))
            abandon = raw.events("QueueCallerAbandon")
            assert abandon[0]["Uniqueid"] == first
        finally:
            await raw.close()


# ----------------------------------------------------------------- replay


def test_given_a_speed_factor_then_the_replay_schedule_scales_the_recorded_gaps() -> None:
    frames = [
        {"Event": "FullyBooted"},
        {"Event": "A", "Timestamp": "100.0"},
        {"Event": "B"},
        {"Event": "C", "Timestamp": "102.5"},
        {"Event": "D", "Timestamp": "101.0"},
    ]
    assert replay_schedule(frames, 1.0) == [0.0, 0.0, 0.0, 2.5, 2.5]
    assert replay_schedule(frames, 5.0) == [0.0, 0.0, 0.0, 0.5, 0.5]
    assert replay_schedule(frames, None) == [0.0] * 5
    with pytest.raises(ValueError, match="speed"):
        replay_schedule(frames, -1.0)


async def test_given_a_speed_factor_then_the_replay_takes_at_least_the_scaled_time() -> None:
    recorded = load_replay(FIXTURES / "basic_20calls.ami")
    window = [f for f in recorded if 1795906366.0 <= float(f.get("Timestamp", 0)) < 1795906368.5]
    span = float(window[-1]["Timestamp"]) - float(window[0]["Timestamp"])
    assert span > 2.0
    async with AmiSimulator("127.0.0.1", 0, USER, SECRET, replay=window, speed=8.0) as sim:
        raw = await RawClient.connect(sim)
        try:
            await raw.login()
            began = time.monotonic()
            await asyncio.wait_for(sim.replay_done.wait(), 10)
            took = time.monotonic() - began
            await eventually(lambda: len(raw.events()) >= len(window) + 1)
        finally:
            await raw.close()
    assert took >= span / 8.0 - 0.05
    assert raw.events()[1:] == window


async def test_given_no_client_then_the_replay_waits_and_after_a_cut_it_resumes_where_it_was() -> (
    None
):
    recorded = load_replay(FIXTURES / "basic_20calls.ami")[:400]
    async with AmiSimulator(
        "127.0.0.1", 0, USER, SECRET, replay=recorded, speed=50.0, chunk_gap_s=0.0
    ) as sim:
        await asyncio.sleep(0.3)
        assert sim.replay_position == 0, "nobody logged in: the cursor stays"
        first = await RawClient.connect(sim)
        await first.login()
        await eventually(lambda: len(first.events()) > 50)
        sim.cut()
        await asyncio.wait_for(first.closed.wait(), 5)
        stopped_at = sim.replay_position
        await asyncio.sleep(0.3)
        assert sim.replay_position == stopped_at, "the link is down: the cursor stays"
        second = await RawClient.connect(sim)
        try:
            await second.login()
            await asyncio.wait_for(sim.replay_done.wait(), 20)
            await eventually(lambda: bool(second.events()) and second.events()[-1] == recorded[-1])
        finally:
            await first.close()
            await second.close()
    before = first.events()[1:]
    after = second.events()[1:]
    assert before == recorded[: len(before)]
    resumed_at = recorded.index(after[0])
    assert len(before) <= resumed_at <= stopped_at, "resumed, not restarted"
    assert after == recorded[resumed_at:]


# ----------------------------------------------------------------- generation


async def test_given_a_call_rate_then_generated_calls_are_well_formed_and_translate() -> None:
    async with AmiSimulator(
        "127.0.0.1", 0, USER, SECRET, rate=60.0, timing=CallTiming(scale=0.005), seed=11
    ) as sim:
        raw = await RawClient.connect(sim)
        try:
            await raw.login()
            await eventually(lambda: ended_trunk_calls(raw.events()) >= 25, within_s=20)
        finally:
            await raw.close()
    frames = list(iter_stream(bytes(raw.data)))
    assert frames == raw.frames
    events = [f for f in frames if "Event" in f and f["Event"] != "FullyBooted"]
    assert all("Timestamp" in f and "Privilege" in f for f in events)
    stamps = [float(f["Timestamp"]) for f in events]
    assert stamps == sorted(stamps)

    by_channel: dict[str, list[str]] = defaultdict(list)
    for frame in events:
        if "Uniqueid" in frame:
            by_channel[frame["Uniqueid"]].append(frame["Event"])
    finished = {uid: names for uid, names in by_channel.items() if "Hangup" in names}
    assert finished
    for names in finished.values():
        assert names[0] == "Newchannel"
        assert names[-1] == "Hangup"

    trunks = [f for f in events if f["Event"] == "Newchannel" and f["Channel"].startswith("IAX2/")]
    assert all(f["Uniqueid"] == f["Linkedid"] and f["Context"] == "trunk-in" for f in trunks)
    numbers = [f["CallerIDNum"] for f in trunks]
    assert len({number_format(n) for n in numbers}) >= 4, numbers
    assert any(re.search("[А-Яа-яЁё]", f["CallerIDName"]) for f in trunks)
    legs = [f for f in events if f["Event"] == "Newchannel" and f["Channel"].startswith("Local/")]
    assert legs
    assert {f["Linkedid"] for f in legs} <= {f["Uniqueid"] for f in trunks}
    assert all(re.fullmatch(r"Local/10[1-6]@agents-[0-9a-f]{8};[12]", f["Channel"]) for f in legs)
    called = Counter(f["Event"] for f in events)
    for name in ("QueueCallerJoin", "AgentCalled", "AgentConnect", "AgentComplete"):
        assert called[name] > 0, name

    produced = translate_all(events)
    started = {e.call_key for e in produced if isinstance(e, CallStarted)}
    ended = {e.call_key for e in produced if isinstance(e, CallEnded)}
    queued = {e.call_key for e in produced if isinstance(e, CallQueued)}
    trunk_done = {uid for uid in finished if uid in {f["Uniqueid"] for f in trunks}}
    assert trunk_done <= ended <= started
    assert trunk_done <= queued


async def test_given_split_offsets_then_the_frame_is_written_in_separate_tcp_segments() -> None:
    async with AmiSimulator("127.0.0.1", 0, USER, SECRET, chunk_gap_s=0.1) as sim:
        raw = await RawClient.connect(sim)
        try:
            await raw.login()
            await eventually(lambda: bool(raw.events("FullyBooted")))
            frame = {"Event": "Newchannel", "CallerIDName": "Щукина", "Uniqueid": "1.1"}
            data = serialize_frame(frame)
            cut = data.index("Щ".encode()) + 1
            reads_before = len(raw.reads)
            await sim.emit(frame, split_at=[cut])
            await eventually(lambda: bool(raw.events("Newchannel")))
            assert raw.events("Newchannel") == [frame]
            assert raw.reads[reads_before:] == [data[:cut], data[cut:]]
        finally:
            await raw.close()


# ----------------------------------------------------------------- faults


async def test_given_a_stall_then_nothing_is_answered_until_it_ends(
    sim: AmiSimulator, client: RawClient
) -> None:
    await client.login()
    sim.stall(0.6)
    action_id = client.send("Ping")
    await asyncio.sleep(0.3)
    assert not [f for f in client.frames if f.get("ActionID") == action_id]
    await eventually(lambda: any(f.get("ActionID") == action_id for f in client.frames))
    assert not client.closed.is_set()


async def test_given_a_restart_then_connections_drop_and_every_channel_is_gone(
    sim: AmiSimulator, client: RawClient
) -> None:
    await client.login()
    sim.ring("Local/104@agents", "1425874", "ООО Ромашка")
    assert len(sim.live_channels()) == 3
    sim.restart()
    await asyncio.wait_for(client.closed.wait(), 5)
    again = await RawClient.connect(sim)
    try:
        await again.login()
        assert channels(await again.ask("CoreShowChannels")) == []
        entries = [f for f in await again.ask("QueueStatus") if f.get("Event") == "QueueEntry"]
        assert entries == []
    finally:
        await again.close()


def test_given_bad_arguments_then_the_command_line_refuses_them() -> None:
    assert main(["--rate", "-1"]) == 2
    with pytest.raises(SystemExit):
        main(["--replay", "x.ami", "--rate", "1"])


# ----------------------------------------------------------------- helpers


def channels(answer: list[Frame]) -> list[Frame]:
    return [f for f in answer if f.get("Event") == "CoreShowChannel"]


def ended_trunk_calls(events: list[Frame]) -> int:
    return sum(
        1 for f in events if f.get("Event") == "Hangup" and f.get("Channel", "").startswith("IAX2")
    )


def number_format(number: str) -> str:
    if number == "anonymous":
        return "anonymous"
    if number.startswith("+7"):
        return "plus"
    if number.startswith("+"):
        return "foreign"
    if len(number) == 7:
        return "local"
    if len(number) == 10:
        return "ten"
    return number[0] + "-eleven"


def translate_all(frames: list[Frame]) -> list[object]:
    state = TranslatorState()
    produced: list[object] = []
    for frame in frames:
        state, events = translate(state, frame, pbx="sim", arrival=datetime.now(UTC))
        produced.extend(events)
    return produced
