"""The AMI reader drops events nothing reads, unparsed, and that changes no call or queue event."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from callcenter.events import PbxEvent
from pbx_adapter.frames import EventFilter, Frame, FrameParser, serialize_frame
from pbx_adapter.translate import EVENTS_READ, TranslatorState, translate, translate_queue
from tests.helpers_ami import ARRIVAL, PBX, STREAMS

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ami"


def _parse(data: bytes, wanted: EventFilter | None) -> tuple[list[Frame], FrameParser]:
    parser = FrameParser(wanted=wanted)
    return parser.feed(data), parser


def _pbx_events(frames: Iterable[Frame]) -> list[PbxEvent]:
    state = TranslatorState()
    out: list[PbxEvent] = []
    for frame in frames:
        before = state
        state, calls = translate(before, frame, pbx=PBX, arrival=ARRIVAL)
        out.extend(calls)
        out.extend(translate_queue(before, frame, pbx=PBX, arrival=ARRIVAL))
    return out


@pytest.mark.parametrize("name", STREAMS)
def test_given_a_recorded_stream_when_filtered_then_call_and_queue_events_are_identical(
    name: str,
) -> None:
    data = (FIXTURES / f"{name}.ami").read_bytes()

    every, _ = _parse(data, None)
    read, parser = _parse(data, EVENTS_READ)

    assert parser.ignored == len(every) - len(read)
    # Most of what Asterisk sends is for nobody here (Newexten, most VarSets, ...).
    assert parser.ignored > len(every) / 3
    assert _pbx_events(read) == _pbx_events(every)


def _frame(**headers: str) -> bytes:
    return serialize_frame(headers)


def test_given_events_nobody_reads_when_fed_then_they_are_counted_not_returned() -> None:
    data = b"".join(
        [
            _frame(Event="Newexten", Channel="SIP/1-01", Uniqueid="1.1"),
            _frame(Event="DeviceStateChange", Device="SIP/1", State="INUSE"),
            _frame(Event="Newchannel", Channel="SIP/1-01", Uniqueid="1.1"),
        ]
    )

    frames, parser = _parse(data, EVENTS_READ)

    assert [f["Event"] for f in frames] == ["Newchannel"]
    assert parser.ignored == 2


def test_given_varsets_when_fed_then_only_the_variables_read_are_kept() -> None:
    data = b"".join(
        [
            _frame(Event="VarSet", Channel="SIP/1-01", Variable="BRIDGEPEER", Value="x"),
            _frame(Event="VarSet", Channel="SIP/1-01", Variable="QUEUESTATUSX", Value="x"),
            _frame(Event="VarSet", Channel="SIP/1-01", Variable="QUEUESTATUS", Value="TIMEOUT"),
            # The variable's line is the frame's last one here.
            _frame(Event="VarSet", Value="/rec/1.wav", Variable="MIXMONITOR_FILENAME"),
        ]
    )

    frames, parser = _parse(data, EVENTS_READ)

    assert [f["Variable"] for f in frames] == ["QUEUESTATUS", "MIXMONITOR_FILENAME"]
    assert parser.ignored == 2


def test_given_answers_and_odd_frames_when_fed_then_they_are_always_parsed() -> None:
    data = b"".join(
        [
            # An answer to an action is ours whatever its name.
            _frame(Event="CoreShowChannel", ActionID="snap-1", Channel="SIP/1-01"),
            # Not `Event:` first: parsed, the filter cannot tell.
            _frame(Privilege="call,all", Event="Newexten", Channel="SIP/1-01"),
            _frame(Response="Success", ActionID="ping-1", Ping="Pong"),
        ]
    )

    frames, parser = _parse(data, EVENTS_READ)

    assert len(frames) == 3
    assert parser.ignored == 0


def test_given_a_filter_when_extended_then_the_extra_event_is_read() -> None:
    wanted = EventFilter({"Newchannel"}).including("Shutdown")

    frames, _ = _parse(_frame(Event="Shutdown", Shutdown="Cleanly"), wanted)

    assert frames == [{"Event": "Shutdown", "Shutdown": "Cleanly"}]
