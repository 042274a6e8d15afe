"""`/metrics` of an API process: what its event streams publish, drop and keep open."""

from __future__ import annotations

import json

from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from callcenter.context import AppContext
from callcenter.realtime.metrics import MeteredStreams, StreamMetrics
from callcenter.realtime.redis_streams import RedisStreams
from callcenter.realtime.streams import user_topic

STREAM_METRICS = {
    "callcenter_events_published",
    "callcenter_event_publish_failures",
    "callcenter_websocket_connections",
}


async def _scrape(client: AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_given_an_api_process_when_scraped_then_its_stream_metrics_are_there(
    client: AsyncClient,
) -> None:
    response = await client.get("/metrics")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names >= STREAM_METRICS


async def test_given_events_published_when_scraped_then_the_counter_moves_by_type(
    client: AsyncClient, ctx: AppContext
) -> None:
    before = await _scrape(client)
    key = ("callcenter_events_published_total", (("type", "call.ringing"),))
    await ctx.streams.publish(user_topic(1), "call.ringing", {"n": 1})
    await ctx.streams.publish(user_topic(2), "call.ringing", {"n": 2})
    after = await _scrape(client)
    assert after[key] - before.get(key, 0.0) == 2


async def test_given_a_stream_followed_then_closed_when_scraped_then_the_gauge_follows(
    client: AsyncClient, ctx: AppContext
) -> None:
    gauge = ("callcenter_websocket_connections", ())
    topic = user_topic(7)
    subscription = await ctx.streams.subscribe([topic], {})
    assert (await _scrape(client))[gauge] == 1
    await ctx.streams.publish(topic, "call.ringing", {"n": 1})
    events = aiter(subscription)
    assert json.loads((await anext(events)).data)["n"] == 1
    await subscription.close()
    await subscription.close()
    assert (await _scrape(client))[gauge] == 0


async def test_given_an_unreachable_redis_when_publishing_then_the_failure_is_counted() -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    streams = MeteredStreams(
        RedisStreams("redis://127.0.0.1:1/0", command_timeout_s=0.5), StreamMetrics(registry)
    )
    try:
        event_id = await streams.publish(user_topic(1), "call.ringing", {"n": 1})
    finally:
        await streams.close()
    assert event_id == ""
    assert registry.get_sample_value("callcenter_event_publish_failures_total") == 1
    assert (
        registry.get_sample_value("callcenter_events_published_total", {"type": "call.ringing"})
        is None
    )
