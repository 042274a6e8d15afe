"""Several PBXs feed one database: calls are keyed by PBX and Linkedid, so two sites whose
Asterisks hand out the same Linkedids still get separate records."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import generate_latest
from sqlalchemy import select

from callcenter.calls.models import Call
from callcenter.calls.state import CallStatus
from callcenter.cli_pbx import embedded_pbx, make_adapter
from callcenter.config import PbxSite
from callcenter.context import AppContext
from pbx_adapter.simulator import AmiSimulator
from tests.helpers_ami import FIXTURES, recording

SECRET = "multi-pbx-secret"


async def _records(ctx: AppContext) -> list[Call]:
    async with ctx.sessionmaker() as session:
        return list(await session.scalars(select(Call)))


async def test_given_two_pbxs_with_colliding_linkedids_then_each_call_has_its_own_record(
    ctx: AppContext,
) -> None:
    truth = recording("basic_20calls")
    sites = [PbxSite(name="north", area_code="812"), PbxSite(name="south", area_code="861")]
    simulators = [
        AmiSimulator(
            "127.0.0.1", 0, "crm", SECRET, replay=FIXTURES / "basic_20calls.ami", speed=40.0
        )
        for _ in sites
    ]
    for simulator in simulators:
        await simulator.start()
    adapters = [
        make_adapter(ctx, sim.host, sim.port, "crm", SECRET, site=site)
        for sim, site in zip(simulators, sites, strict=True)
    ]
    runs = [asyncio.create_task(adapter.run()) for adapter in adapters]
    try:
        for simulator in simulators:
            await asyncio.wait_for(simulator.replay_done.wait(), 60)
        await asyncio.sleep(0.2)  # the last frames in flight
        for adapter in adapters:
            await adapter.pipeline.flush()
    finally:
        for adapter, run in zip(adapters, runs, strict=True):
            await adapter.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(run, 10)
        for simulator in simulators:
            await simulator.stop()

    records = await _records(ctx)
    linkedids = {call["linkedid"] for call in truth.calls}
    by_site = {site.name: {r.call_key for r in records if r.pbx == site.name} for site in sites}
    assert by_site == {"north": linkedids, "south": linkedids}
    assert len(records) == 2 * len(linkedids)
    assert all(record.status is CallStatus.ENDED for record in records)
    metrics = generate_latest(ctx.metrics).decode()
    for site in sites:
        assert f'callcenter_ami_resyncs_total{{pbx="{site.name}"}}' in metrics


async def test_given_two_sites_without_ami_when_embedded_then_each_gets_its_own_simulator(
    ctx: AppContext,
) -> None:
    settings = ctx.settings.model_copy(
        update={"pbxs": [PbxSite(name="north"), PbxSite(name="south")]}
    )
    stop = await embedded_pbx(settings, simulate_rate=20.0)(ctx)
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while {r.pbx for r in await _records(ctx)} != {"north", "south"}:
            assert asyncio.get_running_loop().time() < deadline, "a site's calls never came"
            await asyncio.sleep(0.1)
    finally:
        await stop()
    assert ctx.pbx_health is not None
    assert ctx.pbx_health()["pbx"] == "north", "the first PBX answers the health endpoint"
