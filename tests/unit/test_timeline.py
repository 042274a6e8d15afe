"""Timeline pages: a key order over kinds, cursors, per-source bounds and the merge."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.crm.timeline import (
    BadCursor,
    Bound,
    TimelineKey,
    bound_for,
    decode_cursor,
    encode_cursor,
    merge_page,
)

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
KINDS = ["call", "meeting", "note", "record", "task"]


def _below(key: TimelineKey, bound: Bound) -> bool:
    """What a repository query selects for `bound`, written plainly."""
    if key.at < bound.at:
        return True
    if key.at > bound.at or not bound.equal_at:
        return False
    return bound.id_below is None or key.id < bound.id_below


def _events(count: int, seed: int) -> list[TimelineKey]:
    rng = random.Random(seed)
    # Few distinct times, so equal times across and within kinds are common.
    return list(
        {
            TimelineKey(T0 + timedelta(seconds=rng.randrange(6)), rng.choice(KINDS), i)
            for i in range(count)
        }
    )


def _page_through(events: list[TimelineKey], limit: int) -> list[TimelineKey]:
    """Page the way the service does: each source gives its newest `limit + 1` below."""
    seen: list[TimelineKey] = []
    cursor: TimelineKey | None = None
    for _ in range(len(events) + 2):
        sources = []
        for kind in KINDS:
            rows = [e for e in events if e.kind == kind]
            if cursor is not None:
                rows = [e for e in rows if _below(e, bound_for(cursor, kind))]
            rows.sort(reverse=True)
            sources.append(rows[: limit + 1])
        page, next_key = merge_page(sources, lambda e: e, limit)
        seen.extend(page)
        if next_key is None:
            return seen
        cursor = decode_cursor(encode_cursor(next_key))
    raise AssertionError("paging did not end")


@pytest.mark.parametrize(("count", "limit", "seed"), [(0, 5, 1), (7, 3, 2), (60, 7, 3), (41, 1, 4)])
def test_given_events_when_paged_then_every_event_once_newest_first(
    count: int, limit: int, seed: int
) -> None:
    events = _events(count, seed)

    seen = _page_through(events, limit)

    assert seen == sorted(events, reverse=True)


def test_given_exactly_limit_events_then_one_page_and_no_cursor() -> None:
    events = [TimelineKey(T0, "call", i) for i in range(3)]

    page, next_key = merge_page([events], lambda e: e, 3)

    assert page == sorted(events, reverse=True)
    assert next_key is None


def test_given_a_cursor_then_bounds_follow_the_kind_order() -> None:
    cursor = TimelineKey(T0, "note", 10)

    assert bound_for(cursor, "call") == Bound(T0, equal_at=True, id_below=None)
    assert bound_for(cursor, "note") == Bound(T0, equal_at=True, id_below=10)
    assert bound_for(cursor, "task") == Bound(T0, equal_at=False, id_below=None)


def test_given_a_cursor_when_encoded_and_decoded_then_the_same_key() -> None:
    key = TimelineKey(T0 + timedelta(microseconds=123), "meeting", 42)

    assert decode_cursor(encode_cursor(key)) == key


@pytest.mark.parametrize("garbage", ["", "abc", "!!!", encode_cursor(TimelineKey(T0, "x", 1))[:-3]])
def test_given_a_cursor_the_server_did_not_make_then_bad_cursor(garbage: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(garbage)


def test_given_a_naive_time_in_a_cursor_then_bad_cursor() -> None:
    import base64

    forged = base64.urlsafe_b64encode(b"2026-11-29T10:00:00|call|1").decode()
    with pytest.raises(BadCursor):
        decode_cursor(forged)
