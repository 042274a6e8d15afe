"""One timeline from several kinds of events, newest first, in keyset pages.

Every entry has a key (time, kind, id), unique and totally ordered. A page asks each source
for its newest `limit + 1` entries below the cursor, merges them and keeps `limit`: if more
than `limit` entries exist below the cursor in all sources together, the merge has more than
`limit` too, so "is there a next page" needs no count.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True, order=True)
class TimelineKey:
    at: datetime
    kind: str
    id: int


class BadCursor(ValueError):
    pass


def encode_cursor(key: TimelineKey) -> str:
    raw = f"{key.at.astimezone(UTC).isoformat()}|{key.kind}|{key.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> TimelineKey:
    """The key a cursor stands for; BadCursor for anything a server did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, kind, ident = raw.split("|")
        moment = datetime.fromisoformat(at)
        key = TimelineKey(moment, kind, int(ident))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor(cursor) from exc
    if moment.tzinfo is None or not kind.isidentifier():
        raise BadCursor(cursor)
    return key


@dataclass(frozen=True, slots=True)
class Bound:
    """Entries of one source that sort below a cursor: time before `at`, or time equal to
    `at` and, when `id_below` is set, id below it; with `equal_at` False no equal time."""

    at: datetime
    equal_at: bool
    id_below: int | None


def bound_for(cursor: TimelineKey, kind: str) -> Bound:
    """The condition on a source of `kind` that selects the entries after `cursor`."""
    if kind < cursor.kind:
        return Bound(cursor.at, equal_at=True, id_below=None)
    if kind > cursor.kind:
        return Bound(cursor.at, equal_at=False, id_below=None)
    return Bound(cursor.at, equal_at=True, id_below=cursor.id)


def merge_page(
    sources: Iterable[Sequence[T]], key: Callable[[T], TimelineKey], limit: int
) -> tuple[list[T], TimelineKey | None]:
    """The newest `limit` entries of the sources (each sorted or not, each holding at least
    its newest `limit + 1` entries below the cursor), and the key to continue after them."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    merged = sorted((entry for source in sources for entry in source), key=key, reverse=True)
    if len(merged) <= limit:
        return merged, None
    page = merged[:limit]
    return page, key(page[-1])
