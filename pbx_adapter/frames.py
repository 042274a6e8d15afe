"""A pure, incremental AMI frame parser: bytes in, frames out. No I/O.

AMI frames are `Key: Value` lines ended by CRLF, a frame ended by an empty line. Bytes are
buffered until a whole frame is in, and only then decoded, so a multi-byte UTF-8 character
split across TCP reads (a Cyrillic CallerIDName) arrives whole. Lines that are not
`Key: Value` make the frame rejected: it is counted and reported, never raised.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_FRAME_END = b"\r\n\r\n"
_BANNER_PREFIX = b"Asterisk Call Manager"
MAX_FRAME_BYTES = 64 * 1024
"""A frame larger than this is garbage (real ones are a few hundred bytes)."""

SERVER_KINDS: tuple[str, ...] = ("Event", "Response")
"""What a client receives: every frame is an event or a response."""
CLIENT_KINDS: tuple[str, ...] = ("Action",)
"""What a server receives: every frame is an action."""

Frame = dict[str, str]

_EVENT_PREFIX = b"Event: "


class EventFilter:
    """Which events a reader parses; the rest are counted and dropped as bytes.

    Asterisk sends every event it has (a call is ~35 frames, half of them `Newexten`,
    `VarSet` or `DeviceStateChange`), so deciding from the first line, before decoding and
    splitting, spares most of the reading work. Asterisk writes `Event: <name>` first; a
    frame that does not start so, or carries an `ActionID` (an answer to an action), is
    always parsed.
    """

    __slots__ = ("_events", "_variable_lines", "events", "variables")

    def __init__(self, events: Iterable[str], variables: Iterable[str] = ()) -> None:
        self.events = frozenset(events)
        self.variables = frozenset(variables)
        """`VarSet` frames are parsed only for these variables."""
        self._events = frozenset(name.encode() for name in self.events)
        self._variable_lines = tuple(f"\r\nVariable: {v}".encode() for v in self.variables)

    def including(self, *events: str) -> EventFilter:
        return EventFilter(self.events | set(events), self.variables)

    def wants(self, raw: bytes) -> bool:
        """Whether to parse this frame (its bytes without the closing empty line)."""
        if not raw.startswith(_EVENT_PREFIX):
            return True
        line_end = raw.find(b"\r\n")
        name = raw[len(_EVENT_PREFIX) : line_end] if line_end >= 0 else raw[len(_EVENT_PREFIX) :]
        if name not in self._events:
            return b"\r\nActionID:" in raw
        if name == b"VarSet":
            return any(_has_line(raw, line) for line in self._variable_lines)
        return True


def _has_line(raw: bytes, line: bytes) -> bool:
    """Whether `line` (starting with CRLF) is a whole line of `raw`."""
    start = raw.find(line)
    while start >= 0:
        end = start + len(line)
        if end == len(raw) or raw.startswith(b"\r\n", end):
            return True
        start = raw.find(line, start + 1)
    return False


@dataclass(slots=True)
class RejectedFrame:
    reason: str
    raw: bytes


@dataclass(slots=True)
class FrameParser:
    """Feed it the bytes of one AMI connection; it yields whole frames in order.

    A client-side parser (the default) expects the `Asterisk Call Manager/x.y.z` banner line
    first (a capture without it is accepted too) and frames holding `Event` or `Response`.
    A server-side parser is `FrameParser(banner_seen=True, kinds=CLIENT_KINDS)`.
    """

    _buffer: bytearray = field(default_factory=bytearray)
    banner_seen: bool = False
    banner: str = ""
    rejected: list[RejectedFrame] = field(default_factory=list)
    kinds: tuple[str, ...] = SERVER_KINDS
    _scan_from: int = 0
    """Where to look for the next frame end: the bytes before hold none."""
    wanted: EventFilter | None = None
    """Events not wanted are dropped unparsed (None: parse everything)."""
    ignored: int = 0
    """Frames dropped by `wanted` so far."""

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by `data`; malformed ones go to `rejected`."""
        self._buffer += data
        if not self.banner_seen and not self._take_banner():
            return []
        frames: list[Frame] = []
        while True:
            end = self._buffer.find(_FRAME_END, self._scan_from)
            if end < 0:
                if len(self._buffer) > MAX_FRAME_BYTES:
                    oversized = bytes(self._buffer[:200])
                    self.rejected.append(RejectedFrame("frame too large", oversized))
                    self._buffer.clear()
                self._scan_from = max(0, len(self._buffer) - len(_FRAME_END) + 1)
                return frames
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + len(_FRAME_END)]
            self._scan_from = 0
            # Tolerate stray empty lines between frames (some servers send an extra CRLF).
            raw = raw.lstrip(b"\r\n")
            if not raw.strip():
                continue
            if end > MAX_FRAME_BYTES:
                self.rejected.append(RejectedFrame("frame too large", raw[:200]))
                continue
            if self.wanted is not None and not self.wanted.wants(raw):
                self.ignored += 1
                continue
            parsed = parse_frame(raw, self.kinds)
            if isinstance(parsed, RejectedFrame):
                self.rejected.append(parsed)
            else:
                frames.append(parsed)

    def take_rejected(self) -> list[RejectedFrame]:
        """The frames rejected since the last call (and forget them)."""
        taken, self.rejected = self.rejected, []
        return taken

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished frame held back until its end arrives."""
        return len(self._buffer)

    def _take_banner(self) -> bool:
        newline = self._buffer.find(b"\r\n")
        if newline < 0:
            if len(self._buffer) > MAX_FRAME_BYTES:
                # No line end for this long: not AMI at all. Drop it, look for frames next.
                self.rejected.append(RejectedFrame("no banner", bytes(self._buffer[:200])))
                self._buffer.clear()
                self.banner_seen = True
            return False
        line = bytes(self._buffer[:newline])
        if b":" in line and not line.startswith(_BANNER_PREFIX):
            # No banner (a mid-stream capture): treat the bytes as frames.
            self.banner_seen = True
            return True
        self.banner = line.decode("utf-8", errors="replace")
        del self._buffer[: newline + 2]
        self.banner_seen = True
        return True


def parse_frame(raw: bytes, kinds: tuple[str, ...] = SERVER_KINDS) -> Frame | RejectedFrame:
    """One frame's bytes (without the closing empty line) as an ordered dict of headers.

    The frame must hold one of `kinds` (`Event` or `Response` by default).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
    frame: Frame = {}
    for line in text.split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep or not key or key != key.strip() or " " in key:
            return RejectedFrame(f"not a 'Key: Value' line: {line[:80]!r}", raw[:200])
        # Keep the first of repeated keys except ChanVariable-like lists; AMI repeats rarely.
        frame.setdefault(key, value[1:] if value.startswith(" ") else value)
    if not any(kind in frame for kind in kinds):
        return RejectedFrame(f"none of {', '.join(kinds)}", raw[:200])
    return frame


def iter_stream(data: bytes) -> Iterator[Frame]:
    """All frames of a recorded stream (tests, replay)."""
    parser = FrameParser()
    yield from parser.feed(data)


def serialize_frame(frame: dict[str, str]) -> bytes:
    """A frame as AMI bytes, ended by its empty line (the simulator's and tests' writer)."""
    for key, value in frame.items():
        if "\r" in key or "\n" in key or ":" in key or "\r" in value or "\n" in value:
            raise ValueError(
                f"AMI header {key!r} cannot hold a line break (or a colon in its name)"
            )
    lines = [f"{key}: {value}" for key, value in frame.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
