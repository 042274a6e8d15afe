"""The incremental AMI frame parser: chunking never changes the frames, garbage never raises."""

from __future__ import annotations

import random
import string
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_adapter.frames import (
    CLIENT_KINDS,
    MAX_FRAME_BYTES,
    Frame,
    FrameParser,
    iter_stream,
    parse_frame,
    serialize_frame,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ami"
BANNER = b"Asterisk Call Manager/9.0.0\r\n"
CYRILLIC_NAME = "Наталья Щукина-Львова"


@cache
def stream(name: str) -> bytes:
    return (FIXTURES / f"{name}.ami").read_bytes()


@cache
def whole(name: str) -> tuple[Frame, ...]:
    return tuple(iter_stream(stream(name)))


def feed_in_chunks(data: bytes, sizes: list[int]) -> tuple[list[Frame], FrameParser]:
    parser = FrameParser()
    frames: list[Frame] = []
    position = 0
    index = 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        frames.extend(parser.feed(data[position : position + size]))
        position += size
        index += 1
    return frames, parser


def event_frame(name: str = CYRILLIC_NAME) -> bytes:
    return serialize_frame(
        {
            "Event": "Newchannel",
            "Channel": "IAX2/127.0.0.1:4570-2899",
            "CallerIDNum": "79920049642",
            "CallerIDName": name,
            "Uniqueid": "1795906364.0",
        }
    )


def test_given_a_recording_when_parsed_whole_then_it_has_every_frame_and_no_rejects() -> None:
    parser = FrameParser()
    frames = parser.feed(stream("basic_20calls"))
    assert parser.banner == "Asterisk Call Manager/9.0.0"
    assert len(frames) == stream("basic_20calls").count(b"\r\n\r\n")
    assert frames[0] == {
        "Response": "Success",
        "ActionID": "crm-1",
        "Message": "Authentication accepted",
    }
    assert parser.rejected == []
    assert parser.pending_bytes == 0


@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        ("basic_20calls", [1]),
        ("basic_20calls", [3, 5, 7]),
        ("mixed_60calls", [13]),
        ("mixed_60calls", [64, 1, 1500]),
        ("mixed_60calls", [4096]),
    ],
)
def test_given_a_recording_when_fed_in_small_chunks_then_the_frames_are_those_of_the_whole(
    name: str, sizes: list[int]
) -> None:
    frames, parser = feed_in_chunks(stream(name), sizes)
    assert tuple(frames) == whole(name)
    assert parser.rejected == []


def test_given_a_recording_when_fed_in_random_chunks_then_the_frames_are_those_of_the_whole() -> (
    None
):
    rng = random.Random(20)
    sizes = [rng.randint(1, 700) for _ in range(997)]
    frames, _ = feed_in_chunks(stream("mixed_60calls"), sizes)
    assert tuple(frames) == whole("mixed_60calls")


def test_given_a_cyrillic_name_split_inside_a_character_when_fed_then_it_arrives_whole() -> None:
    frame = event_frame()
    name_at = frame.index(CYRILLIC_NAME.encode())
    name_len = len(CYRILLIC_NAME.encode())
    for cut in range(name_at + 1, name_at + name_len):
        parser = FrameParser(banner_seen=True)
        first = parser.feed(frame[:cut])
        second = parser.feed(frame[cut:])
        assert first == []
        assert [f["CallerIDName"] for f in second] == [CYRILLIC_NAME]
    # The same bytes decoded chunk by chunk (what panoramisk 1.4 does) lose characters.
    cut = name_at + 1
    naive = frame[:cut].decode("utf-8", "ignore") + frame[cut:].decode("utf-8", "ignore")
    assert CYRILLIC_NAME not in naive


def test_given_frames_split_across_the_empty_line_when_fed_then_both_arrive() -> None:
    data = event_frame("A") + event_frame("B")
    end = data.index(b"\r\n\r\n")
    for cut in range(end, end + 4):
        parser = FrameParser(banner_seen=True)
        frames = parser.feed(data[:cut]) + parser.feed(data[cut:])
        assert [f["CallerIDName"] for f in frames] == ["A", "B"]


def test_given_stray_empty_lines_between_frames_when_fed_then_they_are_ignored() -> None:
    data = BANNER + event_frame("A") + b"\r\n\r\n" + b"\r\n" + event_frame("B")
    parser = FrameParser()
    assert [f["CallerIDName"] for f in parser.feed(data)] == ["A", "B"]
    assert parser.rejected == []


def test_given_malformed_frames_when_fed_then_they_are_rejected_and_parsing_goes_on() -> None:
    data = (
        BANNER
        + b"this is not AMI\r\n\r\n"
        + b"Foo: bar\r\n\r\n"
        + b"Event: Ok\r\n bad: key\r\n\r\n"
        + event_frame("A")
    )
    parser = FrameParser()
    frames = parser.feed(data)
    assert [f["CallerIDName"] for f in frames] == ["A"]
    assert len(parser.rejected) == 3
    assert len(parser.take_rejected()) == 3
    assert parser.rejected == []


def test_given_an_endless_frame_when_fed_then_it_is_rejected_and_the_buffer_is_freed() -> None:
    parser = FrameParser(banner_seen=True)
    parser.feed(b"Event: Huge\r\nData: " + b"x" * (MAX_FRAME_BYTES + 10))
    assert [r.reason for r in parser.rejected] == ["frame too large"]
    assert parser.pending_bytes == 0
    assert parser.feed(b"\r\n\r\n" + event_frame("A"))[-1]["CallerIDName"] == "A"


def test_given_a_server_side_parser_when_fed_actions_then_it_accepts_them() -> None:
    parser = FrameParser(banner_seen=True, kinds=CLIENT_KINDS)
    frames = parser.feed(b"Action: Ping\r\nActionID: 1\r\n\r\nEvent: X\r\n\r\n")
    assert frames == [{"Action": "Ping", "ActionID": "1"}]
    assert len(parser.rejected) == 1


def test_given_a_value_with_colons_when_parsed_then_only_the_first_colon_splits() -> None:
    parsed = parse_frame(b"Event: VarSet\r\nValue: a: b:c\r\nEmpty:")
    assert parsed == {"Event": "VarSet", "Value": "a: b:c", "Empty": ""}


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_given_arbitrary_bytes_when_fed_in_any_chunks_then_the_parser_never_raises(
    data: bytes, cuts: list[int]
) -> None:
    for prefix in (b"", BANNER):
        frames, parser = feed_in_chunks(prefix + data, cuts)
        for frame in frames:
            assert "Event" in frame or "Response" in frame
        assert all(r.reason for r in parser.rejected)


_TEXT = st.text(alphabet="aZ09 :-_ЖщЁ€\t", max_size=12)
_KEY = st.text(alphabet=string.ascii_letters + "-_", min_size=1, max_size=8)


@st.composite
def ami_frames(draw: st.DrawFn) -> tuple[bytes, bool]:
    """One frame's bytes and whether it is well-formed."""
    headers = draw(st.dictionaries(_KEY, _TEXT, max_size=5))
    frame = {"Event": draw(_KEY), **headers}
    lines = [f"{key}: {value}" for key, value in frame.items()]
    broken = draw(st.booleans())
    if broken:
        garbage = "x" + draw(st.text(alphabet="abc xyz", max_size=10))
        lines.insert(draw(st.integers(0, len(lines))), garbage)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"), not broken


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(ami_frames(), max_size=12),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=20),
)
def test_given_good_and_malformed_frames_when_fed_then_the_malformed_ones_are_counted(
    frames: list[tuple[bytes, bool]], cuts: list[int]
) -> None:
    data = BANNER + b"".join(raw for raw, _ in frames)
    parsed, parser = feed_in_chunks(data, cuts)
    assert len(parsed) == sum(1 for _, good in frames if good)
    assert len(parser.rejected) == sum(1 for _, good in frames if not good)
