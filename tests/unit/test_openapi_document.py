"""The OpenAPI document declares the 422 shapes the API really sends, and the webhook body."""

from __future__ import annotations

from typing import Any

from callcenter.config import Settings
from callcenter.main import create_app


def _document() -> dict[str, Any]:
    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


def test_given_the_app_then_every_422_allows_a_validation_list_or_a_message() -> None:
    document = _document()
    unprocessable = [
        response["content"]["application/json"]["schema"]
        for operations in document["paths"].values()
        for operation in operations.values()
        if (response := operation.get("responses", {}).get("422"))
    ]

    assert unprocessable
    assert all(s == {"$ref": "#/components/schemas/Unprocessable"} for s in unprocessable)
    assert "ErrorMessage" in document["components"]["schemas"]


def test_given_the_webhook_then_its_body_is_one_event_or_a_bounded_batch() -> None:
    operation = _document()["paths"]["/api/pbx/{pbx}/events"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]

    single, batch = body["anyOf"]
    assert {v["properties"]["type"]["const"] for v in single["oneOf"]} >= {"call.started"}
    assert batch["maxItems"] == 100
