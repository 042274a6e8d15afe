"""Prometheus metrics of this process's event streams: events published, publishes dropped,
and open websocket streams, counted by wrapping whichever `Streams` the settings chose."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from callcenter.metric_sets import PerRegistry
from callcenter.realtime.streams import OutgoingEvent, StreamEvent, Streams, Subscription


class StreamMetrics(PerRegistry):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "callcenter_events_published",
            "Events published to the realtime streams by this process, by type.",
            ["type"],
            registry=registry,
        )
        self.publish_failures = Counter(
            "callcenter_event_publish_failures",
            "Events dropped because the streams backend refused them (clients reload later).",
            registry=registry,
        )
        self.subscriptions = Gauge(
            "callcenter_websocket_connections",
            "Websockets of this process following their event streams.",
            registry=registry,
        )


class _MeteredSubscription:
    def __init__(self, inner: Subscription, metrics: StreamMetrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._open = True
        metrics.subscriptions.inc()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return aiter(self._inner)

    async def close(self) -> None:
        if self._open:
            self._open = False
            self._metrics.subscriptions.dec()
        await self._inner.close()


class MeteredStreams:
    """`inner`, counted: an empty id from `publish` is a dropped event (see `Streams`)."""

    def __init__(self, inner: Streams, metrics: StreamMetrics) -> None:
        self.inner = inner
        self._metrics = metrics

    async def publish(self, topic: str, event_type: str, payload: Mapping[str, Any]) -> str:
        event_id = await self.inner.publish(topic, event_type, payload)
        if event_id:
            self._metrics.published.labels(event_type).inc()
        else:
            self._metrics.publish_failures.inc()
        return event_id

    async def publish_many(self, events: Sequence[OutgoingEvent]) -> list[str]:
        ids = await self.inner.publish_many(events)
        for (_, event_type, _), event_id in zip(events, ids, strict=True):
            if event_id:
                self._metrics.published.labels(event_type).inc()
            else:
                self._metrics.publish_failures.inc()
        return ids

    async def last_id(self, topic: str) -> str:
        return await self.inner.last_id(topic)

    async def subscribe(self, topics: list[str], last_ids: Mapping[str, str]) -> Subscription:
        return _MeteredSubscription(await self.inner.subscribe(topics, last_ids), self._metrics)

    async def close(self) -> None:
        await self.inner.close()
