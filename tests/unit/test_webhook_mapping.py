"""The webhook's public payload (v1) maps onto the domain's CallEvents, and bad bodies are
refused whole with the place of every problem."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from callcenter.events import (
    AgentRinging,
    AgentStoppedRinging,
    CallAnswered,
    CallEnded,
    CallQueued,
    CallStarted,
    CallTransferred,
    Direction,
    EndReason,
    Party,
    RecordingStarted,
    StopRingReason,
)
from callcenter.webhooks.schemas import (
    EVENT_TYPES,
    EXAMPLE_CALL,
    event_schema,
    request_body_schema,
)
from callcenter.webhooks.service import Rejected, parse_events, to_call_events

AT = "2026-11-29T10:15:00+03:00"
AT_UTC = datetime(2026, 11, 29, 7, 15, tzinfo=UTC)
ENVELOPE: dict[str, Any] = {"pbx": "cloud", "call_key": "c-1", "event_id": "e1", "at": AT_UTC}


def _event(kind: str, event_id: str = "e1", **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "call_id": "c-1", "at": AT, **fields}


def _one(body: Any) -> Any:
    [event] = to_call_events("cloud", parse_events(json.dumps(body).encode(), 100))
    return event


def test_given_call_started_when_mapped_then_a_call_started_in_utc_for_that_pbx() -> None:
    event = _one(
        _event(
            "call.started",
            direction="inbound",
            caller_number="+7 (495) 123-45-67",
            caller_name="Иван",
            called_number="84951112233",
        )
    )

    assert event == CallStarted(
        pbx="cloud",
        call_key="c-1",
        event_id="e1",
        at=AT_UTC,
        direction=Direction.INBOUND,
        caller_num="+7 (495) 123-45-67",
        caller_name="Иван",
        callee_num="84951112233",
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            _event("call.queued", queue="support", position=2),
            CallQueued(**ENVELOPE, queue="support", position=2),
        ),
        (
            _event("call.ringing", agent="101", agent_name="Анна", queue="support"),
            AgentRinging(
                **ENVELOPE, agent="101", agent_name="Анна", queue="support",
            ),
        ),
        (
            _event("call.ringing_stopped", agent="101", reason="answered_elsewhere"),
            AgentStoppedRinging(
                **ENVELOPE, agent="101",
                reason=StopRingReason.ANSWERED_ELSEWHERE,
            ),
        ),
        (
            _event("call.answered", agent="101", agent_name="Анна"),
            CallAnswered(
                **ENVELOPE, agent="101", agent_name="Анна"
            ),
        ),
        (
            _event("call.transferred", from_agent="101", to_agent="102", to_agent_name="Олег"),
            CallTransferred(
                **ENVELOPE, from_agent="101",
                to_agent="102", to_agent_name="Олег",
            ),
        ),
        (
            _event("call.recording_started", file="2026/11/29/c-1.wav"),
            RecordingStarted(
                **ENVELOPE, file="2026/11/29/c-1.wav"
            ),
        ),
        (
            _event("call.ended", reason="completed", ended_by="caller"),
            CallEnded(
                pbx="cloud", call_key="c-1", event_id="e1", at=AT_UTC,
                reason=EndReason.COMPLETED, ended_by=Party.CALLER,
            ),
        ),
    ],
)  # fmt: skip
def test_given_each_event_type_when_mapped_then_the_matching_domain_event(
    body: dict[str, Any], expected: Any
) -> None:
    assert _one(body) == expected


def test_given_the_schema_then_it_names_every_event_type() -> None:
    kinds = {variant["properties"]["type"]["const"] for variant in event_schema()["oneOf"]}

    assert kinds == set(EVENT_TYPES)


def test_given_a_batch_when_parsed_then_events_keep_the_senders_order() -> None:
    body = [
        _event("call.started", "a", direction="inbound"),
        _event("call.queued", "b", queue="support"),
    ]

    events = to_call_events("cloud", parse_events(json.dumps(body).encode(), 100))

    assert [e.event_id for e in events] == ["a", "b"]


def _problems(raw: bytes, max_events: int = 100) -> list[dict[str, Any]]:
    with pytest.raises(Rejected) as caught:
        parse_events(raw, max_events)
    return caught.value.problems


def test_given_a_bad_event_in_a_batch_then_the_whole_batch_is_refused_with_its_index() -> None:
    body = [
        _event("call.started", "a", direction="inbound"),
        _event("call.started", "b", direction="sideways"),
    ]

    problems = _problems(json.dumps(body).encode())

    assert [p["loc"] for p in problems] == [["body", 1, "direction"]]


def test_given_a_time_without_offset_then_refused_at_that_field() -> None:
    body = _event("call.started", direction="inbound", at="2026-11-29T10:15:00")

    assert [p["loc"] for p in _problems(json.dumps(body).encode())] == [["body", "at"]]


def test_given_an_unknown_type_or_field_then_refused() -> None:
    unknown_type = _problems(json.dumps(_event("call.exploded")).encode())
    unknown_field = _problems(json.dumps(_event("call.queued", queue="q", colour="red")).encode())

    assert unknown_type[0]["loc"] == ["body"]
    assert unknown_field[0]["loc"] == ["body", "colour"]


def test_given_the_same_id_twice_in_one_batch_then_refused_at_the_second() -> None:
    body = [_event("call.started", "a", direction="inbound"), _event("call.queued", "a", queue="q")]

    problems = _problems(json.dumps(body).encode())

    assert [(p["loc"], p["type"]) for p in problems] == [(["body", 1, "id"], "duplicate_id")]


@pytest.mark.parametrize(
    ("raw", "max_events"),
    [
        (b"{not json", 100),
        (b"[]", 100),
        (b'"call.started"', 100),
        (json.dumps([_event("call.queued", str(i), queue="q") for i in range(3)]).encode(), 2),
    ],
)
def test_given_a_body_that_is_no_event_or_batch_then_refused_as_a_whole(
    raw: bytes, max_events: int
) -> None:
    assert [p["loc"] for p in _problems(raw, max_events)] == [["body"]]


def test_given_the_request_schema_then_it_is_self_contained_and_bounds_the_batch() -> None:
    schema = request_body_schema(7)

    assert "$ref" not in json.dumps(schema)
    assert schema["anyOf"][1]["maxItems"] == 7


def test_given_the_documented_example_call_then_it_parses_as_one_call() -> None:
    events = to_call_events("cloud", parse_events(json.dumps(EXAMPLE_CALL).encode(), 100))

    assert [type(e) for e in events] == [
        CallStarted,
        CallQueued,
        AgentRinging,
        CallAnswered,
        CallEnded,
    ]
    assert {e.call_key for e in events} == {"c42"}
