"""`AmiPbxControl` through a real `AmiClient` against the AMI simulator over TCP: the exact AMI
action each button sends (as the simulator recorded it), and the events that follow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import pytest

from callcenter.control.pbx import ControlStatus, SpyMode
from pbx_adapter.ami import AmiClient
from pbx_adapter.control import AmiPbxControl, DeviceNaming, spy_data
from pbx_adapter.frames import Frame
from pbx_adapter.simulator import AmiSimulator

USER, SECRET = "crm", "control-tests-secret"


async def eventually(check: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within_s}s")
        await asyncio.sleep(0.01)


class Link:
    """A logged-in client, the control on it, and every event the client received."""

    def __init__(self, sim: AmiSimulator, naming: DeviceNaming) -> None:
        self.sim = sim
        self.frames: list[Frame] = []
        self.client = AmiClient(
            "127.0.0.1",
            sim.port,
            USER,
            SECRET,
            on_frame=self._on_frame,
            ping_interval_s=0.2,
            dead_after_s=1.0,
            backoff_initial_s=0.05,
            backoff_max_s=0.3,
            action_timeout_s=3.0,
            seed=1,
        )
        self.control = AmiPbxControl(self.client, naming)

    async def _on_frame(self, frame: Frame, arrival: datetime) -> None:
        self.frames.append(frame)

    def events(self, name: str) -> list[Frame]:
        return [f for f in self.frames if f.get("Event") == name]

    def sent(self, action: str) -> list[dict[str, str]]:
        return [a for a in self.sim.actions if a.get("Action") == action]


@pytest.fixture
async def sim() -> AsyncIterator[AmiSimulator]:
    simulator = AmiSimulator("127.0.0.1", 0, USER, SECRET, seed=11)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def link(sim: AmiSimulator) -> AsyncIterator[Link]:
    running = Link(sim, DeviceNaming("PJSIP/{ext}", "from-internal", ring_timeout_s=25))
    task = asyncio.create_task(running.client.run())
    await running.client.wait_connected(5)
    yield running
    await asyncio.wait_for(running.client.stop(), 5)
    await asyncio.gather(task, return_exceptions=True)


def without_id(action: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in action.items() if k != "ActionID"}


async def test_given_a_pause_with_a_reason_then_queuepause_carries_it_and_the_event_follows(
    link: Link,
) -> None:
    result = await link.control.pause("Local/102@agents", "support", True, "lunch")

    assert result.status is ControlStatus.OK
    [sent] = link.sent("QueuePause")
    assert without_id(sent) == {
        "Action": "QueuePause",
        "Interface": "Local/102@agents",
        "Paused": "true",
        "Queue": "support",
        "Reason": "lunch",
    }
    assert sent["ActionID"] == result.action_id
    await eventually(lambda: bool(link.events("QueueMemberPause")))
    [event] = link.events("QueueMemberPause")
    assert (event["Queue"], event["Interface"], event["Paused"], event["PausedReason"]) == (
        "support",
        "Local/102@agents",
        "1",
        "lunch",
    )


async def test_given_an_unpause_in_every_queue_then_neither_queue_nor_reason_is_sent(
    link: Link,
) -> None:
    await link.control.pause("Local/101@agents", None, True, "break")

    result = await link.control.pause("Local/101@agents", None, False, "")

    assert result.status is ControlStatus.OK
    assert without_id(link.sent("QueuePause")[-1]) == {
        "Action": "QueuePause",
        "Interface": "Local/101@agents",
        "Paused": "false",
    }
    await eventually(lambda: len(link.events("QueueMemberPause")) == 2)
    assert link.events("QueueMemberPause")[-1]["Paused"] == "0"
    states = await link.control.member_states("Local/101@agents")
    assert states.status is ControlStatus.OK
    assert [(m.queue, m.paused) for m in states.members] == [("support", False)]


async def test_given_an_unknown_interface_when_paused_then_the_pbx_message_comes_back(
    link: Link,
) -> None:
    result = await link.control.pause("Local/999@agents", None, True, "lunch")

    assert result.status is ControlStatus.REFUSED
    assert result.message == "Interface not found"


async def test_given_a_member_added_and_removed_then_queueadd_and_queueremove_are_exact(
    link: Link,
) -> None:
    added = await link.control.add_member("sales", "PJSIP/107", "Оператор 107", 2, False)
    again = await link.control.add_member("sales", "PJSIP/107", "Оператор 107", 2, False)
    removed = await link.control.remove_member("sales", "PJSIP/107")

    assert (added.status, again.status, removed.status) == (
        ControlStatus.OK,
        ControlStatus.REFUSED,
        ControlStatus.OK,
    )
    assert "Already there" in again.message
    assert without_id(link.sent("QueueAdd")[0]) == {
        "Action": "QueueAdd",
        "Queue": "sales",
        "Interface": "PJSIP/107",
        "MemberName": "Оператор 107",
        "Penalty": "2",
        "Paused": "false",
    }
    assert without_id(link.sent("QueueRemove")[0]) == {
        "Action": "QueueRemove",
        "Queue": "sales",
        "Interface": "PJSIP/107",
    }
    await eventually(lambda: bool(link.events("QueueMemberRemoved")))
    [joined] = link.events("QueueMemberAdded")
    assert (joined["MemberName"], joined["Penalty"], joined["Membership"]) == (
        "Оператор 107",
        "2",
        "dynamic",
    )


@pytest.mark.parametrize(
    ("mode", "options"),
    [(SpyMode.LISTEN, "qbES"), (SpyMode.WHISPER, "qbESw"), (SpyMode.BARGE, "qbESB")],
)
async def test_given_a_spy_mode_then_the_supervisors_phone_runs_chanspy_on_the_agents(
    link: Link, mode: SpyMode, options: str
) -> None:
    result = await link.control.spy("201", "101", mode, request_id=f"spy-{mode.value}")

    assert result.status is ControlStatus.OK
    [sent] = link.sent("Originate")
    assert sent == {
        "Action": "Originate",
        "Channel": "PJSIP/201",
        "Application": "ChanSpy",
        "Data": f"PJSIP/101-,{options}",
        "CallerID": f'"{mode.value} 101" <101>',
        "Variable": f"CRM_ORIGINATED=1,CRM_SPY={mode.value}",
        "Timeout": "25000",
        "Async": "true",
        "ActionID": f"spy-{mode.value}",
    }
    assert sent["Data"] == spy_data("PJSIP/101-", mode)


async def test_given_a_click_to_call_then_the_operators_phone_dials_out_in_the_context(
    link: Link,
) -> None:
    result = await link.control.originate_call(
        "101",
        "84951234567",
        '"ООО Ромашка" <84951234567>',
        request_id="cc-dial-1-ab",
        variables={"CRM_REQUEST_ID": "1"},
    )

    assert result.status is ControlStatus.OK
    assert link.sent("Originate") == [
        {
            "Action": "Originate",
            "Channel": "PJSIP/101",
            "Exten": "84951234567",
            "Context": "from-internal",
            "Priority": "1",
            "CallerID": '"ООО Ромашка" <84951234567>',
            "Variable": "CRM_ORIGINATED=1,CRM_REQUEST_ID=1",
            "Timeout": "25000",
            "Async": "true",
            "ActionID": "cc-dial-1-ab",
        }
    ]
    await eventually(lambda: bool(link.events("OriginateResponse")))
    assert link.events("OriginateResponse")[0]["ActionID"] == "cc-dial-1-ab"


async def test_given_an_originate_whose_answer_is_lost_then_it_reports_unknown_and_is_never_resent(
    link: Link,
) -> None:
    link.sim.cut_on_next("Originate")

    lost = await link.control.originate_call(
        "101", "89161234567", "<89161234567>", request_id="cc-dial-7-x", variables={}
    )
    await link.client.wait_connected(5)
    retried = await link.control.originate_call(
        "101", "89161234567", "<89161234567>", request_id="cc-dial-7-x", variables={}
    )

    assert lost.status is ControlStatus.UNKNOWN
    assert retried.status is ControlStatus.UNKNOWN
    assert [a["ActionID"] for a in link.sent("Originate")] == ["cc-dial-7-x"]


async def test_given_no_link_when_acting_then_nothing_is_sent_and_the_result_says_so(
    sim: AmiSimulator,
) -> None:
    idle = Link(sim, DeviceNaming())

    paused = await idle.control.pause("Local/101@agents", None, True, "lunch")
    dialled = await idle.control.originate_call("101", "100", "<100>", request_id="x", variables={})
    states = await idle.control.member_states("Local/101@agents")

    assert {paused.status, dialled.status, states.status} == {ControlStatus.NOT_CONNECTED}
    assert sim.actions == []


def test_given_device_naming_then_bad_templates_and_extensions_are_refused() -> None:
    with pytest.raises(ValueError, match="ext"):
        DeviceNaming("PJSIP/101")
    naming = DeviceNaming("PJSIP/{ext}")
    assert naming.spy_prefix("101") == "PJSIP/101-"
    for bad in ("10,1", "101\r\nAction: Logoff", "", "PJSIP/101"):
        with pytest.raises(ValueError, match="extension"):
            naming.channel(bad)
