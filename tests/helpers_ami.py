"""Helpers for tests that replay the recorded AMI streams of `tests/fixtures/ami/`."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from callcenter.calls.state import CallState, apply
from callcenter.events import CallEvent, EndReason
from pbx_adapter.frames import Frame, iter_stream
from pbx_adapter.translate import TranslatorState, translate

FIXTURES = Path(__file__).parent / "fixtures" / "ami"
STREAMS = ("basic_20calls", "mixed_60calls")
PBX = "lab"
ARRIVAL = datetime(2030, 1, 1, tzinfo=UTC)
"""Every frame of the recordings carries a Timestamp; this only shows where one is missing."""

OUTCOME_REASON: Mapping[str, EndReason] = {
    "answered": EndReason.COMPLETED,
    "abandoned": EndReason.ABANDONED,
    "exitwithtimeout": EndReason.QUEUE_TIMEOUT,
    "hangup_before_queue": EndReason.CALLER_HANGUP,
    "no_answer": EndReason.NO_ANSWER,
}

Calls = dict[str, CallState]


@dataclass(frozen=True)
class Recording:
    name: str
    frames: tuple[Frame, ...]
    meta: Mapping[str, Any]

    @property
    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.meta["calls"]
        return calls

    @property
    def agent_names(self) -> dict[str, str]:
        return dict(self.meta["agents"])


@cache
def recording(name: str) -> Recording:
    frames = tuple(iter_stream((FIXTURES / f"{name}.ami").read_bytes()))
    meta = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return Recording(name, frames, meta)


def translate_all(
    frames: Iterable[Frame], state: TranslatorState | None = None
) -> tuple[TranslatorState, list[CallEvent]]:
    """Every event the frames mean, in order, and the translator's state afterwards."""
    current = state if state is not None else TranslatorState()
    events: list[CallEvent] = []
    for frame in frames:
        current, produced = translate(current, frame, pbx=PBX, arrival=ARRIVAL)
        events.extend(produced)
    return current, events


def fold(events: Iterable[CallEvent], calls: Calls | None = None) -> Calls:
    """The call states after applying `events` (a copy; `calls` is left alone)."""
    result = dict(calls or {})
    for event in events:
        result[event.call_key], _ = apply(result.get(event.call_key), event)
    return result


def channel_key(frame: Frame) -> str:
    """The channel whose order Asterisk guarantees for this frame ('' for global frames)."""
    return frame.get("Uniqueid") or frame.get("LocalOneUniqueid") or ""


def shuffle_across_channels(frames: Sequence[Frame], seed: int) -> list[Frame]:
    """A random interleaving of the frames that keeps each channel's own order."""
    rng = random.Random(seed)
    queues: dict[str, list[Frame]] = {}
    for frame in frames:
        queues.setdefault(channel_key(frame), []).append(frame)
    for queue in queues.values():
        queue.reverse()
    order = [key for key, queue in queues.items() for _ in queue]
    rng.shuffle(order)
    return [queues[key].pop() for key in order]


def frame_index(frames: Sequence[Frame], uniqueid: str, event: str) -> int | None:
    """Index of the first frame of `event` on channel `uniqueid`, if any."""
    for index, frame in enumerate(frames):
        if frame.get("Uniqueid") == uniqueid and frame.get("Event") == event:
            return index
    return None


def _duration(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def snapshot_frames(
    frames: Sequence[Frame], now: float, members: Mapping[str, str] | None = None
) -> list[Frame]:
    """What Asterisk would answer to CoreShowChannels and QueueStatus after `frames`.

    Channels alive are those with a Newchannel and no Hangup yet, with the latest values
    their frames showed; queue callers are those that joined and did not leave; members are
    `members` (interface → name: Asterisk lists every configured member) and the latest
    QueueMemberStatus per queue and interface.
    """
    channels: dict[str, dict[str, str]] = {}
    born: dict[str, float] = {}
    waiting: dict[str, dict[str, str]] = {}
    statuses: dict[tuple[str, str], Frame] = {}
    for frame in frames:
        event, uid = frame.get("Event", ""), frame.get("Uniqueid", "")
        if event == "QueueMemberStatus":
            statuses[(frame.get("Queue", ""), frame.get("Interface", ""))] = frame
            continue
        if event == "Newchannel":
            channels[uid] = {"BridgeId": "", "Application": "", "ApplicationData": ""}
            born[uid] = float(frame.get("Timestamp", now))
        if uid not in channels:
            continue
        if event == "Hangup":
            del channels[uid]
            waiting.pop(uid, None)
            continue
        live = channels[uid]
        for key in (
            "Channel",
            "ChannelState",
            "ChannelStateDesc",
            "CallerIDNum",
            "CallerIDName",
            "ConnectedLineNum",
            "ConnectedLineName",
            "Context",
            "Exten",
            "Priority",
            "Uniqueid",
            "Linkedid",
        ):
            if key in frame and not (event.startswith("Bridge") and key == "Exten"):
                live[key] = frame[key]
        if event == "Newexten":
            live["Application"] = frame.get("Application", "")
            live["ApplicationData"] = frame.get("AppData", "")
        elif event == "BridgeEnter":
            live["BridgeId"] = frame.get("BridgeUniqueid", "")
        elif event == "BridgeLeave":
            live["BridgeId"] = ""
        elif event == "QueueCallerJoin":
            waiting[uid] = {
                "Queue": frame.get("Queue", ""),
                "Joined": frame.get("Timestamp", str(now)),
            }
        elif event in ("QueueCallerLeave", "QueueCallerAbandon"):
            waiting.pop(uid, None)
    answer: list[Frame] = [{"Response": "Success", "ActionID": "resync-1"}]
    for uid, live in channels.items():
        answer.append(
            {"Event": "CoreShowChannel", "ActionID": "resync-1", **live}
            | {"Duration": _duration(now - born[uid])}
        )
    answer.append({"Event": "CoreShowChannelsComplete", "ListItems": str(len(channels))})
    answer.append({"Response": "Success", "ActionID": "resync-2"})
    for interface, name in sorted((members or {}).items()):
        answer.append({"Event": "QueueMember", "Queue": "", "Name": name, "Location": interface})
    for (queue, interface), member in sorted(statuses.items()):
        answer.append(
            {
                "Event": "QueueMember",
                "Queue": queue,
                "Name": member.get("MemberName", ""),
                "Location": interface,
                "StateInterface": member.get("StateInterface", ""),
                "Status": member.get("Status", ""),
                "Paused": member.get("Paused", ""),
            }
        )
    by_queue: dict[str, list[tuple[float, str]]] = {}
    for uid, entry in waiting.items():
        by_queue.setdefault(entry["Queue"], []).append((float(entry["Joined"]), uid))
    for queue, entries in sorted(by_queue.items()):
        for position, (joined, uid) in enumerate(sorted(entries), start=1):
            live = channels[uid]
            answer.append(
                {
                    "Event": "QueueEntry",
                    "Queue": queue,
                    "Position": str(position),
                    "Channel": live.get("Channel", ""),
                    "Uniqueid": uid,
                    "CallerIDNum": live.get("CallerIDNum", ""),
                    "CallerIDName": live.get("CallerIDName", ""),
                    "Wait": str(int(now - joined)),
                }
            )
    answer.append({"Event": "QueueStatusComplete", "ActionID": "resync-2"})
    return answer
