"""docs/asyncapi.yaml cannot drift: it is what the code generates, and it names exactly the
event types the code publishes to browsers."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from callcenter.calls.models import Call
from callcenter.calls.service import call_summary
from callcenter.calls.state import CallStatus
from callcenter.events import Direction
from callcenter.realtime.asyncapi import CALL_SUMMARY, CONTROL_MESSAGES, SERVER_EVENTS, render
from callcenter.webhooks.schemas import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
SOURCES = [ROOT / "callcenter", ROOT / "workers"]
EVENT_NAME = re.compile(r"^[a-z]+\.[a-z_]+$")


def _modules() -> Iterator[ast.Module]:
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.py")):
            if "migrations" not in path.parts:
                yield ast.parse(path.read_text(encoding="utf-8"))


def _constants(modules: list[ast.Module]) -> dict[str, str]:
    """Module-level `NAME = "a.b"` constants of the whole code base."""
    found: dict[str, str] = {}
    for module in modules:
        for node in module.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):  # NAME: Final = "a.b"
                targets = [node.target]
            value = getattr(node, "value", None)
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.update((t.id, value.value) for t in targets if isinstance(t, ast.Name))
    return found


def _published_types() -> set[str]:
    """Event types passed to `streams.publish(topic, type, ...)` or `Notification(...)`, as
    literals, constants, or the literals `_describe` returns for the call effects."""
    modules = list(_modules())
    constants = _constants(modules)
    types: set[str] = set()
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and len(node.args) >= 2:
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in {"publish", "Notification"}:
                    continue
                arg = node.args[1]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    types.add(arg.value)
                elif isinstance(arg, ast.Name) and arg.id in constants:
                    types.add(constants[arg.id])
            if isinstance(node, ast.FunctionDef) and node.name == "_describe":
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and isinstance(inner.value, ast.Tuple):
                        first = inner.value.elts[0]
                        if isinstance(first, ast.Constant) and isinstance(first.value, str):
                            types.add(first.value)
    return {t for t in types if EVENT_NAME.match(t)}


def test_given_the_code_then_docs_asyncapi_yaml_is_what_the_script_generates() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == render(), "run: python scripts/asyncapi.py"


def test_given_the_code_then_the_document_names_exactly_the_published_event_types() -> None:
    document = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    messages = document["components"]["messages"].values()
    documented = {m["name"] for m in messages} - set(CONTROL_MESSAGES) - {"resume"}
    documented -= {"webhookEvent", "webhookBatch"}

    published = _published_types()

    assert published == set(SERVER_EVENTS) == documented


def test_given_the_realtime_endpoint_then_its_protocol_messages_are_documented() -> None:
    source = (ROOT / "callcenter" / "realtime" / "api.py").read_text(encoding="utf-8")
    sent = set(re.findall(r'"type"\s*:\s*"([a-z]+)"', source.replace('\\"', '"')))

    assert sent == {*CONTROL_MESSAGES, "resume"}


def test_given_a_call_summary_then_the_documented_schema_has_its_fields() -> None:
    row = Call(pbx="p", call_key="k", direction=Direction.INBOUND, status=CallStatus.NEW)
    row.ringing_agents = []

    assert set(call_summary(row)) == set(CALL_SUMMARY["properties"])


def test_given_the_webhook_then_its_event_types_are_in_the_document() -> None:
    document = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    variants = document["components"]["schemas"]["WebhookEvent"]["oneOf"]

    assert {v["properties"]["type"]["const"] for v in variants} == set(EVENT_TYPES)
