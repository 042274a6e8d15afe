# mypy: disable-error-code="no-untyped-call"
# (kombu's channel methods and serialization helpers carry no annotations)
"""Celery task messages for the Redis broker, built without a broker connection.

`app.send_task` costs about 1 ms of CPU per message on kombu's Redis transport (a new client
per put for the key prefix, a blocking LPUSH). `TaskMessages.build` makes the same message, the
same bytes under the same list key, so a caller can push many with one pipelined round trip:

- the task part (headers, properties, body) by Celery: `app.amqp.create_task_message`, routed
  by `app.amqp.router` and serialized by kombu with the app's task serializer;
- the envelope by kombu's own Redis channel (`prepare_message`, `basic_publish` on the
  anonymous exchange, which base64-encodes the body and adds a fresh uuid delivery tag), whose
  `_put` here returns the list key and the JSON instead of pushing them. The key carries
  `global_keyprefix` as kombu's prefixed client adds it to an LPUSH.

The equality with `send_task`'s message is checked against the real Redis in
tests/integration/test_celery_async_send.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu.entity import maybe_delivery_mode
from kombu.serialization import dumps as serialize
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps as envelope_json
from kombu.utils.uuid import uuid

ANONYMOUS_EXCHANGE = ""
"""What `send_task` publishes a direct-routed task to: the routing key names the queue."""


@dataclass(frozen=True, slots=True)
class TaskMessage:
    key: str
    """The Redis list the worker pops (`<global_keyprefix><queue>`)."""
    payload: str
    """The JSON envelope, as kombu's Redis transport LPUSHes it."""


class _UnconnectedChannel(kombu_redis.Channel):
    """kombu's Redis channel with no connection: only its message-building methods are used."""

    def __init__(self, transport_options: Mapping[str, Any]) -> None:
        # What kombu's Channel.__init__ does with the transport options, without connecting.
        for name in self.from_transport_options:
            if name in transport_options:
                setattr(self, name, transport_options[name])

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> TaskMessage:
        """kombu's Redis `_put`, returning what it would LPUSH where."""
        priority = self._get_message_priority(message, reverse=False)
        key = self._q_for_pri(queue, priority)
        return TaskMessage(self.global_keyprefix + key, envelope_json(message))


class TaskMessages:
    """Builds the broker messages of `app`'s tasks (one builder per app; not thread-safe)."""

    def __init__(self, app: Celery) -> None:
        if app.conf.task_compression:
            raise ValueError("compressed task messages are not built here: use send_task")
        self._app = app
        self._channel = _UnconnectedChannel(app.conf.broker_transport_options or {})
        self._queues: dict[str, Any] = {}
        # Read once: each lookup in Celery's layered conf costs microseconds.
        self._serializer: str = app.conf.task_serializer
        self._delivery_mode: str | int = app.conf.task_default_delivery_mode
        self._sent_event: bool = app.conf.task_send_sent_event

    def build(self, name: str, kwargs: dict[str, Any]) -> TaskMessage:
        """The message `app.send_task(name, kwargs=kwargs)` would push, with a new task id."""
        queue = self._queue(name)
        headers, properties, body, _ = self._app.amqp.create_task_message(
            uuid(),
            name,
            kwargs=kwargs,
            # Celery's saferepr of the arguments is about a third of building a message;
            # job arguments are a few ids and paths: their plain repr, cut as Celery cuts it.
            argsrepr="()",
            kwargsrepr=repr(kwargs)[: self._app.amqp.kwargsrepr_maxsize],
            reply_to=self._app.thread_oid,
            ignore_result=None,  # as send_task: the task's own setting decides
            create_sent_event=self._sent_event,
        )
        properties["delivery_mode"] = maybe_delivery_mode(
            queue.exchange.delivery_mode or self._delivery_mode
        )
        content_type, content_encoding, data = serialize(body, serializer=self._serializer)
        message = self._channel.prepare_message(
            data, 0, content_type, content_encoding, headers, properties
        )
        built: TaskMessage = self._channel.basic_publish(
            message, exchange=ANONYMOUS_EXCHANGE, routing_key=queue.name
        )
        return built

    def _queue(self, name: str) -> Any:
        """The kombu Queue `task_routes` sends `name` to (routes here depend on the name only)."""
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = self._app.amqp.router.route({}, name)["queue"]
        return queue
