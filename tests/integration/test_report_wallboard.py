"""The queue report of a day equals the live wallboard's counters for that day.

A recorded Asterisk stream is replayed through the real pipeline into the database and the
live board at once (as `callcenter pbx-adapter` does); then the report endpoint and the
board are asked about the same local day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient

from callcenter.auth.models import Role
from callcenter.context import AppContext
from callcenter.queues.board import LiveQueues
from pbx_adapter.replay import frames_of
from pbx_adapter.runner import EventPipeline
from tests.factories import login_as, make_user
from tests.helpers_ami import FIXTURES, recording


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_a_replayed_day_when_reporting_it_then_the_figures_equal_the_wallboard(
    ctx: AppContext, client: AsyncClient
) -> None:
    meta = recording("basic_20calls").meta
    end = datetime.fromtimestamp(meta["ended"], UTC) + timedelta(seconds=5)
    board = LiveQueues(ctx.sessionmaker, ctx.streams, ctx.settings, clock=lambda: end)
    ctx.queues_board = board
    frames, _ = frames_of((FIXTURES / "basic_20calls.ami").read_bytes())
    pipeline = EventPipeline("lab", ctx.call_event_sink(), live_sink=board)
    pipeline.start()
    for frame in frames:
        pipeline.feed(frame, end)
    await pipeline.stop()
    async with ctx.sessionmaker() as session:
        await make_user(session, login="sup", role=Role.SUPERVISOR)
        await session.commit()
    await login_as(client, "sup")

    live = await board.snapshot(now=end)
    day = live.day.isoformat()
    report = (await client.get("/api/reports/queues", params={"from": day, "to": day})).json()

    rows = {row["key"]: row["figures"] for row in report["rows"]}
    on_board = {view.queue: view.kpis for view in live.queues if view.kpis["offered"].value}
    assert set(rows) == set(on_board) == {"support", "sales"}
    for queue, kpis in on_board.items():
        for key, value in kpis.items():
            figure = rows[queue][key]
            where = f"{queue}.{key}"
            assert figure["value"] == pytest.approx(value.value), where
            if value.denominator is not None:
                assert figure["numerator"] == pytest.approx(value.numerator), where
                assert figure["denominator"] == pytest.approx(value.denominator), where
    queued = [c for c in recording("basic_20calls").calls if c["queue"] is not None]
    assert sum(rows[q]["offered"]["value"] for q in rows) == len(queued)
