"""The missed-calls worklist, decided by pure functions: which callers still wait for a call back.

A queue call that ended without an agent (abandoned, queue timeout, no answer, the caller
hung up) is *missed*. It stays on the list until, for the same number, a later call was
answered (the caller rang again and got through, or someone called them and they picked
up), or someone closed the item by hand ("done" / "dismissed"). The list has one item per
number: the newest missed call, how many there were, and the call-back attempts made since
the first of them (an unanswered attempt does not close the item).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from callcenter.events import EndReason

MISSED_REASONS: frozenset[EndReason] = frozenset(
    {EndReason.ABANDONED, EndReason.QUEUE_TIMEOUT, EndReason.NO_ANSWER, EndReason.CALLER_HANGUP}
)


@dataclass(frozen=True, slots=True)
class MissedCall:
    id: int
    e164: str
    started_at: datetime
    queue: str
    end_reason: EndReason
    caller_num: str = ""
    caller_name: str = ""
    client_id: int | None = None
    wait_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """A call with the number that was answered (either direction), and when it started."""

    e164: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Closure:
    """Closed by hand: missed calls from `e164` started at or before `up_to` are done."""

    e164: str
    up_to: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    """A call-back (or click-to-call) to the number that may have rung."""

    e164: str
    at: datetime
    status: str
    user_id: int | None = None


_Row = TypeVar("_Row", Contact, Closure, Attempt)


@dataclass(frozen=True, slots=True)
class WorklistItem:
    e164: str
    latest: MissedCall
    """The newest open missed call from this number (the item's id and the one called back)."""
    call_ids: tuple[int, ...]
    """Every open missed call from this number, newest first."""
    first_missed_at: datetime
    attempts: int
    last_attempt: Attempt | None

    @property
    def missed_count(self) -> int:
        return len(self.call_ids)


def is_resolved(call: MissedCall, contacts: Sequence[Contact], closures: Sequence[Closure]) -> bool:
    """Whether a later answered call, or a closure, took `call` off the list."""
    return any(c.e164 == call.e164 and c.at > call.started_at for c in contacts) or any(
        c.e164 == call.e164 and c.up_to >= call.started_at for c in closures
    )


def open_items(
    missed: Iterable[MissedCall],
    contacts: Iterable[Contact],
    closures: Iterable[Closure],
    attempts: Iterable[Attempt],
) -> list[WorklistItem]:
    """The worklist: one item per number still to call back, newest missed call first."""
    by_number_contacts = _by_e164(contacts)
    by_number_closures = _by_e164(closures)
    by_number_attempts = _by_e164(attempts)
    waiting: dict[str, list[MissedCall]] = {}
    for call in missed:
        if call.end_reason not in MISSED_REASONS or not call.e164:
            continue
        if is_resolved(
            call, by_number_contacts.get(call.e164, []), by_number_closures.get(call.e164, [])
        ):
            continue
        waiting.setdefault(call.e164, []).append(call)
    items = []
    for e164, calls in waiting.items():
        calls.sort(key=lambda c: (c.started_at, c.id), reverse=True)
        first = calls[-1].started_at
        tried = sorted(
            (a for a in by_number_attempts.get(e164, []) if a.at >= first), key=lambda a: a.at
        )
        items.append(
            WorklistItem(
                e164=e164,
                latest=calls[0],
                call_ids=tuple(c.id for c in calls),
                first_missed_at=first,
                attempts=len(tried),
                last_attempt=tried[-1] if tried else None,
            )
        )
    items.sort(key=lambda i: (i.latest.started_at, i.latest.id), reverse=True)
    return items


def window_start(now: datetime, zone: ZoneInfo, days: int) -> datetime:
    """Midnight (in `zone`) of the first of the last `days` calendar days, `now`'s included."""
    if days < 1:
        raise ValueError(f"the worklist covers at least today, not {days} days")
    local_day = now.astimezone(zone).date() - timedelta(days=days - 1)
    return datetime.combine(local_day, time.min, tzinfo=zone)


def _by_e164(rows: Iterable[_Row]) -> dict[str, list[_Row]]:
    found: dict[str, list[_Row]] = {}
    for row in rows:
        found.setdefault(row.e164, []).append(row)
    return found
