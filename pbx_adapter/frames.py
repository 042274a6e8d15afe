"""A pure, incremental AMI frame parser: bytes in, frames out. No I/O.

AMI frames are `Key: Value` lines ended by CRLF, a frame ended by an empty line. Bytes are
buffered until a whole frame is in, and only then decoded, so a multi-byte UTF-8 character
split across TCP reads (a Cyrillic CallerIDName) arrives whole. Lines that are not
`Key: Value` make the frame rejected: it is counted and reported, never raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

_FRAME_END = b"\r\n\r\n"
MAX_FRAME_BYTES = 64 * 1024
"""A frame larger than this is garbage (real ones are a few hundred bytes)."""

Frame = dict[str, str]


@dataclass(slots=True)
class RejectedFrame:
    reason: str
    raw: bytes


@dataclass(slots=True)
class FrameParser:
    """Feed it the bytes of one AMI connection; it yields whole frames in order."""

    _buffer: bytearray = field(default_factory=bytearray)
    banner_seen: bool = False
    banner: str = ""
    rejected: list[RejectedFrame] = field(default_factory=list)

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by `data`; malformed ones go to `rejected`."""
        self._buffer += data
        if not self.banner_seen and not self._take_banner():
            return []
        frames: list[Frame] = []
        while True:
            end = self._buffer.find(_FRAME_END)
            if end < 0:
                if len(self._buffer) > MAX_FRAME_BYTES:
                    oversized = bytes(self._buffer[:200])
                    self.rejected.append(RejectedFrame("frame too large", oversized))
                    self._buffer.clear()
                return frames
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + len(_FRAME_END)]
            if not raw.strip():
                continue
            parsed = parse_frame(raw)
            if isinstance(parsed, RejectedFrame):
                self.rejected.append(parsed)
            else:
                frames.append(parsed)

    def take_rejected(self) -> list[RejectedFrame]:
        taken, self.rejected = self.rejected, []
        return taken

    def _take_banner(self) -> bool:
        newline = self._buffer.find(b"\r\n")
        if newline < 0:
            return False
        line = bytes(self._buffer[:newline])
        if b":" in line and not line.startswith(b"Asterisk Call Manager"):
            # No banner (a mid-stream capture): treat the bytes as frames.
            self.banner_seen = True
            return True
        self.banner = line.decode("utf-8", errors="replace")
        del self._buffer[: newline + 2]
        self.banner_seen = True
        return True


def parse_frame(raw: bytes) -> Frame | RejectedFrame:
    """One frame's bytes (without the closing empty line) as an ordered dict of headers."""
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
    if "Event" not in frame and "Response" not in frame:
        return RejectedFrame("neither Event nor Response", raw[:200])
    return frame


def iter_stream(data: bytes) -> Iterator[Frame]:
    """All frames of a recorded stream (tests, replay)."""
    parser = FrameParser()
    yield from parser.feed(data)
