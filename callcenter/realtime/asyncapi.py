"""The AsyncAPI document of the browser websocket (`/ws`) and the PBX webhook.

`build_document()` makes it from the code: payload schemas come from the pydantic models
where there are some (queue views, webhook events), the rest is declared here next to the
list of event types. `scripts/asyncapi.py` writes it to `docs/asyncapi.yaml`;
`tests/unit/test_asyncapi.py` fails when the file is stale or when the code publishes an
event type this list lacks (or stops publishing one it has).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from callcenter.events import Direction, EndReason, Party, StopRingReason
from callcenter.queues.schemas import QueueView
from callcenter.webhooks.schemas import (
    DOCUMENTED_MAX_EVENTS,
    WebhookAccepted,
    event_schema,
)

COMPONENT_REF = "#/components/schemas/{model}"

# --- shapes that are plain dicts in the code ---------------------------------------------


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_TIME = {"type": "string", "format": "date-time"}

CALL_SUMMARY: dict[str, Any] = {
    "type": "object",
    "description": "A call as browsers show it (`callcenter.calls.service.call_summary`).",
    "properties": {
        "id": _INT,
        "pbx": _STR,
        "call_key": _STR,
        "direction": {"type": "string", "enum": [d.value for d in Direction]},
        "status": _STR,
        "caller_num": _STR,
        "caller_name": _STR,
        "caller_e164": _nullable(_STR),
        "callee_num": _STR,
        "queue": _nullable(_STR),
        "agent": _nullable(_STR),
        "agent_name": _STR,
        "ringing_agents": {"type": "array", "items": _STR},
        "client_id": _nullable(_INT),
        "organization_id": _nullable(_INT),
        "started_at": _nullable(_TIME),
        "answered_at": _nullable(_TIME),
        "ended_at": _nullable(_TIME),
        "wait_seconds": _nullable(_NUM),
        "talk_seconds": _nullable(_NUM),
        "end_reason": _nullable({"type": "string", "enum": [r.value for r in EndReason]}),
        "ended_by": _nullable({"type": "string", "enum": [p.value for p in Party]}),
        "outcome": _nullable(_STR),
        "notes": _STR,
        "recording": _nullable(_STR),
        "wrong_number_rule": _nullable(_STR),
        "wrong_number_reason": _nullable(_STR),
        "wrong_number_verdicts": {},
        "auto_closed_at": _nullable(_TIME),
        "wrong_number_undone_at": _nullable(_TIME),
    },
}

CALLER_CARD: dict[str, Any] = {
    "type": "object",
    "description": "The screen-pop card (`callcenter.calls.service.caller_card`).",
    "properties": {
        "number": _STR,
        "e164": _nullable(_STR),
        "display": _STR,
        "caller_name": _STR,
        "known": _BOOL,
        "owners": {"type": "array", "items": {"type": "object"}},
        "last_calls": {"type": "array", "items": {"type": "object"}},
        "open_tasks": {"type": "array", "items": {"type": "object"}},
        "contacts": {"type": "array", "items": {"type": "object"}},
    },
}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": COMPONENT_REF.format(model=model.__name__)}


_CALL = {"call": {"$ref": COMPONENT_REF.format(model="CallSummary")}}

SERVER_EVENTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # type: (topic, summary, payload properties besides id/topic/type)
    "call.ringing": (
        "user",
        "A call rings the user's phone: pop the caller's card.",
        _object({**_CALL, "card": _nullable({"$ref": COMPONENT_REF.format(model="CallerCard")})}),
    ),
    "call.withdrawn": (
        "user",
        "The call stopped ringing this user (answered elsewhere, caller left, ...).",
        _object({**_CALL, "reason": {"type": "string", "enum": [r.value for r in StopRingReason]}}),
    ),
    "call.connected": ("user", "The user answered the call.", _object(_CALL)),
    "call.ended": (
        "user",
        "The user's call ended: ask for an outcome.",
        _object({**_CALL, "outcomes": {"type": "array", "items": _STR}}),
    ),
    "call.updated": (
        "user, or `supervisors:calls` (opt-in)",
        "A call record changed (state, outcome, notes, client, wrong-number verdict).",
        _object(_CALL),
    ),
    "queues.updated": (
        "supervisors",
        "One queue's whole live view (replaces what the board showed for it).",
        _object({"queue": _ref(QueueView)}),
    ),
    "import.progress": (
        "user",
        "Progress of the user's import batch.",
        _object(
            {
                "batch_id": _INT,
                "status": _STR,
                "done": _INT,
                "total": _INT,
                "counts": {"type": "object", "additionalProperties": _INT},
            },
            ["batch_id", "status", "done", "total"],
        ),
    ),
    "task.reminder": (
        "user",
        "A task or meeting of the user is due.",
        _object(
            {
                "reminder": _object(
                    {
                        "kind": {"type": "string", "enum": ["task", "meeting"]},
                        "id": _INT,
                        "title": _STR,
                        "at": _nullable(_TIME),
                        "client_id": _nullable(_INT),
                        "organization_id": _nullable(_INT),
                    }
                )
            }
        ),
    ),
    "agent.pause": (
        "user",
        "The user's agent was paused or unpaused (by them or a supervisor).",
        _object(
            {
                "extension": _STR,
                "interface": _STR,
                "queue": _nullable(_STR),
                "paused": _BOOL,
                "reason": _nullable(_STR),
                "by_user_id": _INT,
            }
        ),
    ),
    "plan.changed": ("user", "A plan that concerns the user changed.", _object({"plan_id": _INT})),
}
"""Every event type published on the per-user and supervisors' streams."""

CONTROL_MESSAGES: dict[str, tuple[str, dict[str, Any]]] = {
    "ready": (
        "Resume accepted: missed events follow, then live ones.",
        _object({"topics": {"type": "array", "items": _STR}}),
    ),
    "reload": (
        "The history after `last_ids` is gone: fetch a new snapshot and reconnect "
        "(the socket then closes with 4000).",
        _object({}),
    ),
    "heartbeat": ("Sent every `CALLCENTER_WS_HEARTBEAT_S` seconds.", _object({})),
}
"""Messages of the websocket protocol itself (not stored in streams, no `id`)."""


def _message_name(event_type: str) -> str:
    return event_type.replace(".", "_")


def _stream_message(
    event_type: str, topic: str, summary: str, body: dict[str, Any]
) -> dict[str, Any]:
    envelope = {
        "id": {
            "type": "string",
            "description": "`<epoch>-<seq>` within the topic; resume after it",
        },
        "topic": {
            "type": "string",
            "description": "`user:<id>`, `supervisors` or `supervisors:calls`",
        },
        "type": {"type": "string", "const": event_type},
    }
    payload = {
        **body,
        "properties": {**envelope, **body["properties"]},
        "required": ["id", "topic", "type", *body.get("required", [])],
    }
    return {
        "name": event_type,
        "title": event_type,
        "summary": f"{summary} Topic: {topic}.",
        "contentType": "application/json",
        "payload": payload,
    }


def _control_message(kind: str, summary: str, body: dict[str, Any]) -> dict[str, Any]:
    payload = {
        **body,
        "properties": {"type": {"type": "string", "const": kind}, **body["properties"]},
        "required": ["type", *body.get("required", [])],
    }
    return {"name": kind, "title": kind, "summary": summary, "payload": payload}


def _component_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {"CallSummary": CALL_SUMMARY, "CallerCard": CALLER_CARD}
    for model in (QueueView, WebhookAccepted):
        schema = model.model_json_schema(ref_template=COMPONENT_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["WebhookEvent"] = event_schema()
    return dict(sorted(schemas.items()))


def build_document() -> dict[str, Any]:
    """The AsyncAPI 2.6 document, as plain data."""
    messages: dict[str, Any] = {
        _message_name(kind): _stream_message(kind, *spec) for kind, spec in SERVER_EVENTS.items()
    }
    messages.update(
        {
            _message_name(kind): _control_message(kind, *spec)
            for kind, spec in CONTROL_MESSAGES.items()
        }
    )
    messages["resume"] = {
        "name": "resume",
        "title": "resume",
        "summary": "The first message after connecting: the last event id seen per topic "
        "(from `GET /api/realtime/snapshot`). Anything else closes the socket with 4400.",
        "payload": _object(
            {
                "type": {"type": "string", "const": "resume"},
                "last_ids": {"type": "object", "additionalProperties": _STR},
            },
            ["type"],
        ),
    }
    messages["webhookEvent"] = {
        "name": "webhookEvent",
        "title": "PBX call event (v1)",
        "summary": "One call event of a PBX that is not Asterisk (docs/webhook.md).",
        "contentType": "application/json",
        "payload": {"$ref": COMPONENT_REF.format(model="WebhookEvent")},
    }
    messages["webhookBatch"] = {
        "name": "webhookBatch",
        "title": "PBX call events, a batch (v1)",
        "summary": "Applied all or nothing; idempotent by (pbx, id).",
        "contentType": "application/json",
        "payload": {
            "type": "array",
            "minItems": 1,
            "maxItems": DOCUMENTED_MAX_EVENTS,
            "items": {"$ref": COMPONENT_REF.format(model="WebhookEvent")},
        },
    }
    ws_out = [*SERVER_EVENTS, *CONTROL_MESSAGES]
    return {
        "asyncapi": "2.6.0",
        "info": {
            "title": "callcenter events",
            "version": "1.0.0",
            "description": (
                "Live events to browsers over `/ws` (numbered per-user and supervisors' streams "
                "with resume), and call events from PBXs over the HTTP webhook. Generated by "
                "`scripts/asyncapi.py` from `callcenter/realtime/asyncapi.py`; do not edit."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "app": {
                "url": "{host}",
                "protocol": "wss",
                "description": "The callcenter API process (ws:// on plain-http demos).",
                "variables": {"host": {"default": "localhost:8000"}},
                "security": [{"sessionCookie": []}],
            },
            "api": {
                "url": "{host}",
                "protocol": "https",
                "description": "The same process, for the webhook.",
                "variables": {"host": {"default": "localhost:8000"}},
                "security": [{"apiToken": []}],
            },
        },
        "channels": {
            "/ws": {
                "description": (
                    "GET /api/realtime/snapshot first, then open /ws with the `cc_session` "
                    "cookie (Origin must be allowed) and send `resume`. Operators follow "
                    "`user:<id>`; supervisors and admins also `supervisors`, and, when they ask "
                    "(`?follow=supervisors:calls` on the snapshot, then resume with its id), "
                    "`supervisors:calls`: every change of any call record."
                ),
                "servers": ["app"],
                "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
                "publish": {
                    "operationId": "resume",
                    "summary": "What the browser sends.",
                    "message": {"$ref": "#/components/messages/resume"},
                },
                "subscribe": {
                    "operationId": "receiveEvents",
                    "summary": "What the server sends: stream events and protocol messages.",
                    "message": {
                        "oneOf": [
                            {"$ref": f"#/components/messages/{_message_name(kind)}"}
                            for kind in ws_out
                        ]
                    },
                },
            },
            "/api/pbx/{pbx}/events": {
                "description": "POST with an admin's API token (`Authorization: Bearer`).",
                "servers": ["api"],
                "parameters": {
                    "pbx": {
                        "description": "A name listed in `CALLCENTER_WEBHOOK_PBXS`.",
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                    }
                },
                "publish": {
                    "operationId": "postPbxEvents",
                    "bindings": {"http": {"method": "POST", "bindingVersion": "0.2.0"}},
                    "summary": "A PBX sends call events; answered by `WebhookAccepted` (200).",
                    "message": {
                        "oneOf": [
                            {"$ref": "#/components/messages/webhookEvent"},
                            {"$ref": "#/components/messages/webhookBatch"},
                        ]
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {
                "sessionCookie": {
                    "type": "httpApiKey",
                    "name": "cc_session",
                    "in": "cookie",
                },
                "apiToken": {"type": "http", "scheme": "bearer"},
            },
            "messages": messages,
            "schemas": _component_schemas(),
        },
    }


def render() -> str:
    """The document as YAML text (what docs/asyncapi.yaml holds)."""
    import yaml  # type: ignore[import-untyped]  # PyYAML comes with uvicorn[standard]

    text: str = yaml.safe_dump(build_document(), sort_keys=False, allow_unicode=True, width=100)
    return text
