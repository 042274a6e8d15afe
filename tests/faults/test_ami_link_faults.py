"""The AMI link cut during a simulated run, half by reset (RST) and half by a silent stall
(the simulator stops answering, the socket stays open): no call lost or recorded twice, a
dead link seen within 15 s, the resync done within 5 s of it."""

from __future__ import annotations

from callcenter.context import AppContext
from tests.faults.harness import (
    assert_complete,
    assert_timings,
    chaos_scale,
    fault_plan,
    run_with_faults,
)


async def test_given_link_reset_and_stalled_during_a_run_then_every_call_is_one_closed_record(
    ctx: AppContext,
) -> None:
    scale = chaos_scale()
    half = scale.link_faults // 2
    plan = fault_plan({"reset": scale.link_faults - half, "stall": half}, seed=7)
    result = await run_with_faults(ctx, calls=scale.calls, faults=plan, seed=7)
    print(result.figures())
    assert_complete(result)
    assert_timings(result)
    assert len(result.faults) == len(plan)
    assert result.dead_links >= half, "every stall must be seen as a dead link"
