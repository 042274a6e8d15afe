"""Websocket clients dropped at random while events are published: every event missed
during a drop is delivered exactly once after the resume (or a snapshot reload is
signalled for it)."""

from __future__ import annotations

import asyncio
import random

import httpx

from callcenter.realtime.streams import user_topic
from tests.e2e.conftest import PASSWORD, LiveServer
from tests.faults.harness import chaos_scale
from tests.faults.ws_client import ResumingClient, event_seq

EVENTS_PER_DROP = 3


async def _login(server: LiveServer, login: str) -> str:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post("/api/auth/login", json={"login": login, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return str(response.cookies["cc_session"])


async def test_given_client_dropped_at_random_while_events_flow_then_each_is_delivered_once(
    live_server: LiveServer,
) -> None:
    drops = chaos_scale().ws_drops
    user = live_server.create_user("anna", extensions=["101"])
    topic = user_topic(user.id)
    client = ResumingClient(live_server.url, await _login(live_server, "anna"))
    await client.load_snapshot()
    rng = random.Random(3)
    published: list[str] = []

    async def publish_all() -> None:
        for n in range(drops * EVENTS_PER_DROP):
            future = asyncio.run_coroutine_threadsafe(
                live_server.ctx.streams.publish(topic, "call.ringing", {"n": n}),
                live_server.loop,
            )
            published.append(await asyncio.wrap_future(future))
            await asyncio.sleep(rng.uniform(0, 0.01))  # spread over the drops

    async def drop_at_random() -> None:
        done = 0
        while done < drops:
            await asyncio.sleep(rng.uniform(0, 0.02))
            if client.drop():
                done += 1
                await asyncio.sleep(rng.uniform(0, 0.01))  # events pile up while it is away

    async def follow(stop: asyncio.Event) -> None:
        while True:
            await client.receive_until_closed()
            if stop.is_set():
                return
            await client.connect()

    stop = asyncio.Event()
    await client.connect()
    following = asyncio.create_task(follow(stop))
    await asyncio.gather(publish_all(), drop_at_random())
    async with asyncio.timeout(10):
        while client.last_ids.get(topic) != published[-1]:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    stop.set()
    while not client.drop() and not following.done():  # noqa: ASYNC110 - polling the client
        await asyncio.sleep(0.01)
    await asyncio.wait_for(following, 10)

    ids = [str(event["id"]) for event in client.delivered if event["topic"] == topic]
    print(
        f"{drops} drops, {client.connects} connects, {len(ids)} delivered, "
        f"{len(client.reloads)} reloads"
    )
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert client.connects >= drops
    missed = [i for i in published if i not in set(ids)]
    if client.reloads:
        covered = max(event_seq(r[topic])[1] for r in client.reloads if topic in r)
        assert all(event_seq(i)[1] <= covered for i in missed), "missed without a reload"
    else:
        assert ids == published, "every event exactly once, in order"
