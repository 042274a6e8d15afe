"""AmiClient against the AMI simulator over real TCP on 127.0.0.1 (ephemeral ports)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import pytest

from pbx_adapter.ami import (
    AmiClient,
    AmiLoginError,
    AmiNotConnected,
    OriginateOutcome,
    render_metrics,
)
from pbx_adapter.frames import EventFilter, Frame, serialize_frame
from pbx_adapter.simulator import AmiSimulator, load_replay

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ami"
USER, SECRET = "crm", "s3cret-for-tests"
CYRILLIC_NAME = "Наталья Щукина-Львова"


async def eventually(check: Callable[[], bool], within_s: float = 5.0) -> None:
    """Wait until `check()` holds (fails the test after `within_s`)."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within_s}s")
        await asyncio.sleep(0.01)


class Recorder:
    """The client's callbacks: what it delivered, and what on_connected saw."""

    def __init__(self, on_connected: Callable[[AmiClient], Awaitable[None]] | None = None) -> None:
        self.frames: list[Frame] = []
        self.arrivals: list[datetime] = []
        self.connects = 0
        self.snapshots: list[tuple[list[Frame], list[Frame]]] = []
        self._extra = on_connected

    async def on_frame(self, frame: Frame, arrival: datetime) -> None:
        self.frames.append(frame)
        self.arrivals.append(arrival)

    async def on_connected(self, client: AmiClient) -> None:
        self.connects += 1
        self.snapshots.append(await client.snapshot())
        if self._extra is not None:
            await self._extra(client)

    def events(self, name: str) -> list[Frame]:
        return [f for f in self.frames if f.get("Event") == name]


@asynccontextmanager
async def running(
    sim: AmiSimulator,
    recorder: Recorder,
    *,
    secret: str = SECRET,
    ping_interval_s: float = 0.2,
    dead_after_s: float = 1.0,
    events: EventFilter | None = None,
) -> AsyncIterator[tuple[AmiClient, asyncio.Task[None]]]:
    client = AmiClient(
        "127.0.0.1",
        sim.port,
        USER,
        secret,
        on_frame=recorder.on_frame,
        on_connected=recorder.on_connected,
        ping_interval_s=ping_interval_s,
        dead_after_s=dead_after_s,
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
        action_timeout_s=3.0,
        pbx="lab",
        seed=1,
        events=events,
    )
    task = asyncio.create_task(client.run())
    try:
        yield client, task
    finally:
        await asyncio.wait_for(client.stop(), 5)
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def sim() -> AsyncIterator[AmiSimulator]:
    simulator = AmiSimulator("127.0.0.1", 0, USER, SECRET, seed=7)
    await simulator.start()
    yield simulator
    await simulator.stop()


def actions(sim: AmiSimulator, name: str) -> list[dict[str, str]]:
    return [a for a in sim.actions if a.get("Action") == name]


async def test_given_right_credentials_when_the_client_runs_then_it_logs_in_and_resyncs(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder) as (client, _):
        await eventually(lambda: recorder.connects == 1)
        assert client.connected
        assert client.banner == "Asterisk Call Manager/9.0.0"
        login = actions(sim, "Login")
        assert len(login) == 1
        assert login[0]["Username"] == USER
        assert login[0]["Secret"] == SECRET
        await eventually(lambda: bool(recorder.events("FullyBooted")))
        health = client.health
        assert health.resyncs == 1
        assert health.reconnects == 0
        assert health.last_error == ""
    assert not client.connected
    assert actions(sim, "Logoff"), "stop() logs off politely"


async def test_given_a_wrong_secret_when_the_client_runs_then_it_fails_clearly_once(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder, secret="wrong") as (client, task):
        with pytest.raises(AmiLoginError, match="Authentication failed"):
            await asyncio.wait_for(asyncio.shield(task), 5)
        await asyncio.sleep(0.3)
        assert len(actions(sim, "Login")) == 1, "no retry loop hammering the PBX"
        assert recorder.connects == 0
        assert "refused" in client.health.last_error
        with pytest.raises(AmiNotConnected):
            await client.send_action({"Action": "Ping"})


async def test_given_a_replayed_recording_when_received_then_every_event_arrives_in_order() -> None:
    recorded = load_replay(FIXTURES / "basic_20calls.ami")
    recorder = Recorder()
    async with (
        AmiSimulator("127.0.0.1", 0, USER, SECRET, replay=recorded, speed=None) as sim,
        running(sim, recorder) as (client, _),
    ):
        await eventually(lambda: len(recorder.frames) >= len(recorded) + 1, within_s=20)
        assert recorder.frames[0]["Event"] == "FullyBooted"  # the simulator's own, on login
        assert recorder.frames[1:] == recorded
        assert recorder.arrivals == sorted(recorder.arrivals)
        assert client.health.frames_rejected == 0
        assert client.health.last_event_at == recorder.arrivals[-1]


async def test_given_a_cyrillic_name_split_mid_character_on_the_wire_then_it_arrives_whole(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder) as (client, _):
        await eventually(lambda: recorder.connects == 1)
        frame = {
            "Event": "Newchannel",
            "Privilege": "call,all",
            "Timestamp": "1795906364.287312",
            "Channel": "IAX2/127.0.0.1:4570-2899",
            "CallerIDNum": "79920049642",
            "CallerIDName": CYRILLIC_NAME,
            "Uniqueid": "1795906364.0",
            "Linkedid": "1795906364.0",
        }
        raw = serialize_frame(frame)
        name_at = raw.index(CYRILLIC_NAME.encode())
        # Inside the 1st, 4th and last two-byte letters, and inside the closing empty line.
        cuts = [name_at + 1, name_at + 7, name_at + len(CYRILLIC_NAME.encode()) - 1, len(raw) - 2]
        await sim.emit(frame, split_at=cuts)
        await eventually(lambda: bool(recorder.events("Newchannel")))
        assert recorder.events("Newchannel") == [frame]
        assert client.health.frames_rejected == 0


async def test_given_a_stalled_pbx_when_pings_go_unanswered_then_the_link_is_found_dead(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder, ping_interval_s=0.2, dead_after_s=1.0) as (client, _):
        await eventually(lambda: recorder.connects == 1)
        stalled_at = time.monotonic()
        sim.stall(60)  # far longer than any TCP-level symptom would take to show here
        await eventually(lambda: recorder.connects == 2, within_s=10)
        found_after = time.monotonic() - stalled_at
        health = client.health
        assert health.dead_links == 1
        assert health.reconnects == 1
        assert health.resyncs == 2
        assert client.connected
        assert found_after < 1.0 + 4.0, "detected by unanswered pings, not by TCP timeouts"
        assert len(actions(sim, "Login")) == 2


async def test_given_a_cut_when_the_client_reconnects_then_a_snapshot_shows_the_live_call(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder) as (client, _):
        await eventually(lambda: recorder.connects == 1)
        linkedid = sim.ring("Local/101@agents", "+79161234567", CYRILLIC_NAME)
        await eventually(lambda: bool(recorder.events("DialState")))
        sim.cut()
        # `connects` counts as the resync starts; its snapshot lands once the answer is in.
        await eventually(lambda: len(recorder.snapshots) == 2)
        channels, queues = recorder.snapshots[-1]
        live = [c for c in channels if c["Event"] == "CoreShowChannel"]
        assert {c["Linkedid"] for c in live} == {linkedid}
        assert {c["Channel"].split("-")[0] for c in live} == {
            "IAX2/127.0.0.1:4570",
            "Local/101@agents",
        }
        assert channels[-1] == {
            "Event": "CoreShowChannelsComplete",
            "ActionID": channels[-1]["ActionID"],
            "EventList": "Complete",
            "ListItems": "3",
        }
        trunk = next(c for c in live if c["Uniqueid"] == linkedid)
        assert trunk["CallerIDName"] == CYRILLIC_NAME
        assert queues[-1]["Event"] == "QueueStatusComplete"
        assert {q["Queue"] for q in queues if q["Event"] == "QueueParams"} == {"support", "sales"}
        # And a snapshot taken any time later sees the call end.
        sim.hangup(linkedid)
        channels, _ = await client.snapshot()
        assert [c["Event"] for c in channels] == ["CoreShowChannelsComplete"]


async def test_given_an_originate_whose_answer_is_lost_in_a_cut_then_it_is_never_sent_again(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder) as (client, _):
        await eventually(lambda: recorder.connects == 1)
        sim.cut_on_next("Originate")
        result = await client.originate(
            "Local/101@agents", exten="89161234567", context="outbound", caller_id="101"
        )
        assert result.outcome is OriginateOutcome.UNKNOWN
        assert result.response is None
        await eventually(lambda: recorder.connects == 2)
        relogin = [i for i, a in enumerate(sim.actions) if a["Action"] == "Login"][1]
        # Give a resending client every chance: several pings on the new link first.
        await eventually(
            lambda: sum(1 for a in sim.actions[relogin:] if a["Action"] == "Ping") >= 3
        )
        assert len(actions(sim, "Originate")) == 1
        assert actions(sim, "Originate")[0]["ActionID"] == result.action_id
        assert client.originate_outcome(result.action_id) is OriginateOutcome.UNKNOWN
        again = await client.originate(
            "Local/101@agents", exten="89161234567", context="outbound", action_id=result.action_id
        )
        assert again.outcome is OriginateOutcome.UNKNOWN
        assert len(actions(sim, "Originate")) == 1, "the same ActionID is never sent twice"
        fresh = await client.originate("Local/102@agents", exten="100", context="outbound")
        assert fresh.outcome is OriginateOutcome.ACCEPTED
        await eventually(lambda: bool(recorder.events("OriginateResponse")))
        assert recorder.events("OriginateResponse")[0]["ActionID"] == fresh.action_id
        health = client.health
        assert (health.originates_sent, health.originates_unknown) == (2, 1)


async def test_given_garbage_frames_when_received_then_they_are_counted_and_ignored(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder) as (client, _):
        await eventually(lambda: recorder.connects == 1)
        await sim.send_raw(b"this is not AMI at all\r\n\r\n")
        await sim.send_raw(b"Foo: no event, no response\r\n\r\n")
        await sim.send_raw(b"\xff\xfe\x00garbage\r\n\r\n", split_at=[2])
        await sim.emit({"Event": "Newexten", "Uniqueid": "1.1", "Application": "NoOp"})
        await eventually(lambda: bool(recorder.events("Newexten")))
        assert client.health.frames_rejected == 3
        assert client.connected
        assert recorder.connects == 1, "garbage does not drop the link"
        assert (await client.send_action({"Action": "Ping"}))["Ping"] == "Pong"


async def test_given_events_during_on_connected_then_they_are_delivered_after_it(
    sim: AmiSimulator,
) -> None:
    seen_inside: list[int] = []

    async def emit_during_resync(client: AmiClient) -> None:
        await sim.emit({"Event": "Newexten", "Uniqueid": "2.2", "Application": "Wait"})
        await asyncio.sleep(0.2)
        seen_inside.append(len(recorder.events("Newexten")))

    recorder = Recorder(emit_during_resync)
    async with running(sim, recorder):
        await eventually(lambda: recorder.connects == 1)
        await eventually(lambda: bool(recorder.events("Newexten")))
        assert seen_inside == [0]


async def test_given_queue_actions_when_sent_then_each_gets_its_single_response(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder) as (client, _):
        await eventually(lambda: recorder.connects == 1)
        added = await client.send_action(
            {"Action": "QueueAdd", "Queue": "support", "Interface": "Local/107@agents"}
        )
        assert added["Message"] == "Added interface to queue"  # panoramisk would wait forever
        paused = await client.send_action(
            {
                "Action": "QueuePause",
                "Interface": "Local/107@agents",
                "Paused": "true",
                "Reason": "Обед",
            }
        )
        assert paused["Response"] == "Success"
        removed = await client.send_action(
            {"Action": "QueueRemove", "Queue": "support", "Interface": "Local/107@agents"}
        )
        assert removed["Response"] == "Success"
        again = await client.send_action(
            {"Action": "QueueRemove", "Queue": "support", "Interface": "Local/107@agents"}
        )
        assert again["Response"] == "Error"
        await eventually(lambda: bool(recorder.events("QueueMemberRemoved")))
        pause = recorder.events("QueueMemberPause")[0]
        assert (pause["Paused"], pause["PausedReason"]) == ("1", "Обед")


async def test_given_a_header_with_a_line_break_when_sent_then_it_is_refused_unsent(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder) as (client, _):
        await eventually(lambda: recorder.connects == 1)
        with pytest.raises(ValueError, match="line break"):
            await client.originate(
                "Local/101@agents", exten="100", context="x", caller_id="x\r\nAction: Command"
            )
        assert actions(sim, "Originate") == []
        assert actions(sim, "Command") == []


async def test_given_a_running_client_when_metrics_are_rendered_then_they_show_its_health(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder) as (client, _):
        await eventually(lambda: recorder.connects == 1)
        await sim.send_raw(b"junk\r\n\r\n")
        await eventually(lambda: client.health.frames_rejected == 1)
        text = render_metrics(client).decode()
        assert 'callcenter_ami_connected{pbx="lab"} 1.0' in text
        assert 'callcenter_ami_resyncs_total{pbx="lab"} 1.0' in text
        assert 'callcenter_ami_frames_rejected_total{pbx="lab"} 1.0' in text
        assert 'callcenter_ami_originates_sent_total{pbx="lab"} 0.0' in text
        standalone = render_metrics(client.health, pbx="other").decode()
        assert 'callcenter_ami_reconnects_total{pbx="other"} 0.0' in standalone


async def test_given_an_event_filter_then_unread_events_are_counted_and_the_rest_delivered(
    sim: AmiSimulator,
) -> None:
    recorder = Recorder()
    async with running(sim, recorder, events=EventFilter({"Newchannel"})) as (client, _):
        await eventually(lambda: recorder.connects == 1)
        before = client.health.frames_ignored  # the login's own events (FullyBooted, ...)
        await sim.send_raw(
            serialize_frame({"Event": "Newexten", "Channel": "SIP/1-01"})
            + serialize_frame({"Event": "Newchannel", "Channel": "SIP/1-01", "Uniqueid": "1.1"})
        )
        await eventually(lambda: bool(recorder.events("Newchannel")))
        assert recorder.events("Newexten") == []
        ignored = client.health.frames_ignored
        assert ignored == before + 1
        assert client.health.frames_rejected == 0
        text = render_metrics(client).decode()
        assert f'callcenter_ami_frames_ignored_total{{pbx="lab"}} {float(ignored)}' in text
        # The client's own `Shutdown` handling still sees the event.
        await sim.send_raw(serialize_frame({"Event": "Shutdown", "Shutdown": "Cleanly"}))
        await eventually(lambda: bool(recorder.events("Shutdown")))


async def test_given_no_pbx_listening_then_the_client_backs_off_and_connects_later() -> None:
    probe = AmiSimulator("127.0.0.1", 0, USER, SECRET)
    await probe.start()
    port = probe.port
    await probe.stop()
    recorder = Recorder()
    late = AmiSimulator("127.0.0.1", port, USER, SECRET)
    async with running(late, recorder) as (client, _):
        await eventually(lambda: client.health.connect_failures >= 2)
        assert not client.connected
        await late.start()
        try:
            await eventually(lambda: recorder.connects == 1)
        finally:
            await client.stop()
            await late.stop()


async def test_given_on_connected_fails_then_the_link_is_dropped_and_the_resync_retried(
    sim: AmiSimulator,
) -> None:
    failures: list[int] = []

    async def fail_once(client: AmiClient) -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("database unavailable")

    recorder = Recorder(fail_once)
    async with running(sim, recorder) as (client, _):
        await eventually(lambda: recorder.connects == 2)
        await eventually(lambda: client.connected)
        assert client.health.resyncs == 2
        assert len(actions(sim, "Login")) == 2


async def test_given_a_link_cut_again_and_again_when_each_link_worked_then_no_backoff_builds_up(
    sim: AmiSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []
    original = AmiClient._backoff

    def recording(self: AmiClient, attempt: int) -> float:
        attempts.append(attempt)
        return original(self, attempt)

    monkeypatch.setattr(AmiClient, "_backoff", recording)
    recorder = Recorder()
    async with running(sim, recorder):
        for cuts in range(1, 5):
            await eventually(lambda n=cuts: len(recorder.snapshots) == n)
            sim.cut()
        await eventually(lambda: len(recorder.snapshots) == 5)

    assert attempts == [0, 0, 0, 0]
