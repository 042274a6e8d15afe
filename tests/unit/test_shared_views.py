"""A queue view shared through Redis is shown later than it was made: its waits are counted
again at the time it is shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callcenter.events import CallQueued, CallStarted, Direction
from callcenter.queues import live
from callcenter.queues.live import BoardDefaults, LiveBoard, QueueTargets
from callcenter.queues.redis_board import aged

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def test_given_a_view_made_earlier_when_shown_later_then_waits_count_to_the_showing_time() -> None:
    board = live.apply_all(
        LiveBoard(pbx="default"),
        [
            CallStarted(
                call_key="c1",
                event_id="c1:start",
                at=T0,
                direction=Direction.INBOUND,
                caller_num="89161234567",
            ),
            CallQueued(call_key="c1", event_id="c1:queued", at=T0, queue="support"),
        ],
    )
    made = live.queue_view(
        board, "support", T0 + timedelta(seconds=5), QueueTargets(), BoardDefaults()
    )
    shown_at = T0 + timedelta(seconds=40)

    shown = aged(made, shown_at)
    fresh = live.queue_view(board, "support", shown_at, QueueTargets(), BoardDefaults())

    assert made.longest_wait_s == 5
    assert shown == fresh
