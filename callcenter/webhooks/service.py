"""Reading a webhook request body: JSON in, domain events out, or every reason it is refused.

Pure: no I/O. A batch is accepted whole or not at all, so every problem of every event is
reported at once, each with its place (`loc`: `["body", index, field, ...]`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from callcenter.events import CallEvent
from callcenter.webhooks.schemas import WebhookEvent, to_call_event, webhook_event_adapter

Problem = dict[str, Any]
"""One refusal in FastAPI's validation-error shape: `loc`, `msg`, `type`."""


class Rejected(ValueError):
    """The body is not an acceptable event or batch; `problems` says where and why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the webhook body")
        self.problems = list(problems)


def _problem(loc: Sequence[str | int], msg: str, kind: str) -> Problem:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def parse_events(raw: bytes, max_events: int) -> list[WebhookEvent]:
    """The events of a body (one event object, or an array of them), or `Rejected`."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise Rejected([_problem([], "the body is not JSON", "json_invalid")]) from None
    single = isinstance(document, dict)
    items: list[Any] = [document] if single else document if isinstance(document, list) else []
    if not single and not isinstance(document, list):
        raise Rejected([_problem([], "expected an event object or an array", "type_error")])
    if not items:
        raise Rejected([_problem([], "the batch is empty", "too_short")])
    if len(items) > max_events:
        raise Rejected([_problem([], f"at most {max_events} events per request", "too_long")])
    events: list[WebhookEvent] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        place: list[str | int] = [] if single else [index]
        try:
            event = webhook_event_adapter.validate_python(item)
        except ValidationError as exc:
            problems.extend(
                _problem([*place, *_field_path(error["loc"])], error["msg"], error["type"])
                for error in exc.errors(include_url=False, include_context=False)
            )
            continue
        if event.id in seen:
            message = f"the same id as event {seen[event.id]} of this batch"
            problems.append(_problem([*place, "id"], message, "duplicate_id"))
            continue
        seen[event.id] = index
        events.append(event)
    if problems:
        raise Rejected(problems)
    return events


def _field_path(loc: tuple[str | int, ...]) -> list[str | int]:
    # Pydantic puts the union member's tag first (`call.started`); the sender wants the field.
    return (
        list(loc[1:])
        if loc and isinstance(loc[0], str) and loc[0].startswith("call.")
        else list(loc)
    )


def to_call_events(pbx: str, events: Sequence[WebhookEvent]) -> list[CallEvent]:
    """The domain events of a parsed batch, in the sender's order."""
    return [to_call_event(pbx, event) for event in events]
