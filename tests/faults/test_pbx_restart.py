"""The simulated PBX restarted mid-run (every channel and queue caller gone): the calls it
dropped are closed, the calls after it are recorded as usual."""

from __future__ import annotations

from collections import Counter

from callcenter.context import AppContext
from callcenter.events import EndReason
from tests.faults.harness import assert_complete, assert_timings, chaos_scale, run_with_faults


async def test_given_pbx_restarted_mid_run_then_dropped_calls_are_closed_and_later_ones_recorded(
    ctx: AppContext,
) -> None:
    scale = chaos_scale()
    restarts = max(1, scale.link_faults // 10)
    result = await run_with_faults(
        ctx,
        calls=scale.calls // 2,
        faults=["restart"] * restarts,
        seed=11,
        fault_gap_s=(2.5, 3.5),
    )
    print(result.figures())
    dropped = {key: result.records[key] for key in result.alive_at_restart}
    print(Counter((c.answered_at is not None, c.end_reason) for c in dropped.values()))
    assert dropped, "the restart must hit calls in progress"
    assert_complete(result)
    assert_timings(result)
    for key, call in dropped.items():
        assert call.ended_at is not None, key
        if call.answered_at is not None:
            assert call.end_reason is EndReason.COMPLETED, key
        else:
            assert call.end_reason is not EndReason.COMPLETED, key
