"""The pure rules of the missed-calls worklist: which callers still wait for a call back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.control.worklist import (
    Attempt,
    Closure,
    Contact,
    MissedCall,
    open_items,
    window_start,
)
from callcenter.events import EndReason

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
IVAN, MARIA = "+79161234567", "+74951112233"


def missed(
    call_id: int,
    e164: str = IVAN,
    minutes: int = 0,
    reason: EndReason = EndReason.ABANDONED,
) -> MissedCall:
    return MissedCall(
        id=call_id,
        e164=e164,
        started_at=T0 + timedelta(minutes=minutes),
        queue="support",
        end_reason=reason,
    )


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_given_missed_calls_from_two_numbers_then_one_item_each_newest_first() -> None:
    items = open_items([missed(1, IVAN, 0), missed(2, MARIA, 5), missed(3, IVAN, 10)], [], [], [])

    assert [(i.e164, i.latest.id, i.call_ids, i.first_missed_at) for i in items] == [
        (IVAN, 3, (3, 1), at(0)),
        (MARIA, 2, (2,), at(5)),
    ]
    assert items[0].missed_count == 2


@pytest.mark.parametrize(
    "reason",
    [EndReason.ABANDONED, EndReason.QUEUE_TIMEOUT, EndReason.NO_ANSWER, EndReason.CALLER_HANGUP],
)
def test_given_each_missed_end_reason_then_the_call_is_on_the_list(reason: EndReason) -> None:
    assert [i.latest.id for i in open_items([missed(1, reason=reason)], [], [], [])] == [1]


@pytest.mark.parametrize("reason", [EndReason.COMPLETED, EndReason.BUSY, EndReason.FAILED])
def test_given_a_call_that_was_not_missed_then_it_is_not_on_the_list(reason: EndReason) -> None:
    assert open_items([missed(1, reason=reason)], [], [], []) == []


def test_given_a_later_answered_call_with_the_number_then_earlier_missed_calls_are_done() -> None:
    items = open_items(
        [missed(1, IVAN, 0), missed(2, IVAN, 20), missed(3, MARIA, 0)],
        [Contact(IVAN, at(10)), Contact(MARIA, at(-5))],
        [],
        [],
    )

    assert [(i.e164, i.call_ids) for i in items] == [(IVAN, (2,)), (MARIA, (3,))]


def test_given_a_closure_then_missed_calls_up_to_it_are_off_and_newer_ones_come_back() -> None:
    calls = [missed(1, IVAN, 0), missed(2, IVAN, 10)]

    closed = open_items(calls, [], [Closure(IVAN, at(10))], [])
    newer = open_items([*calls, missed(3, IVAN, 30)], [], [Closure(IVAN, at(10))], [])

    assert closed == []
    assert [(i.latest.id, i.call_ids) for i in newer] == [(3, (3,))]


def test_given_call_back_attempts_then_those_since_the_first_missed_call_are_counted() -> None:
    items = open_items(
        [missed(1, IVAN, 10), missed(2, IVAN, 20)],
        [],
        [],
        [
            Attempt(IVAN, at(5), "accepted"),
            Attempt(IVAN, at(12), "unknown"),
            Attempt(IVAN, at(25), "accepted", user_id=7),
            Attempt(MARIA, at(25), "accepted"),
        ],
    )

    [item] = items
    assert item.attempts == 2
    assert item.last_attempt == Attempt(IVAN, at(25), "accepted", user_id=7)


def test_given_an_attempt_but_no_answered_call_then_the_item_stays() -> None:
    items = open_items([missed(1)], [], [], [Attempt(IVAN, at(1), "accepted")])

    assert [(i.latest.id, i.attempts) for i in items] == [(1, 1)]


def test_given_a_call_without_a_number_then_it_cannot_be_called_back_and_is_left_out() -> None:
    assert open_items([missed(1, e164="")], [], [], []) == []


def test_given_ties_then_the_order_is_stable_by_id() -> None:
    items = open_items([missed(1, IVAN, 0), missed(2, MARIA, 0)], [], [], [])

    assert [i.latest.id for i in items] == [2, 1]


def test_given_moscow_time_then_the_window_starts_at_local_midnight_days_back() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    late_evening_utc = datetime(2026, 11, 29, 22, 30, tzinfo=UTC)  # 01:30 on the 30th in Moscow

    today = window_start(late_evening_utc, moscow, 1)
    two_days = window_start(late_evening_utc, moscow, 2)

    assert today == datetime(2026, 11, 30, 0, 0, tzinfo=moscow)
    assert today.astimezone(UTC) == datetime(2026, 11, 29, 21, 0, tzinfo=UTC)
    assert two_days == datetime(2026, 11, 29, 0, 0, tzinfo=moscow)
    with pytest.raises(ValueError, match="at least today"):
        window_start(late_evening_utc, moscow, 0)
