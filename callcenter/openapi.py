"""The OpenAPI document as the API really answers.

FastAPI documents every 422 as its own request-validation shape (`detail`: a list of
errors). Services also refuse well-formed requests whose values break a rule with 422 and a
message (`detail`: a string, or an object such as a phone number's `{message, phone, reason}`).
All of these are what clients get, so the document says so.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_MESSAGE_SCHEMA: dict[str, Any] = {
    "title": "ErrorMessage",
    "type": "object",
    "properties": {
        "detail": {
            "title": "Detail",
            "anyOf": [{"type": "string"}, {"type": "object"}],
            "description": "What was refused: a message, or an object with `message` and the "
            "refused value's details (e.g. a phone number's `reason`).",
        }
    },
    "required": ["detail"],
}
VALIDATION_ERROR_REF = "#/components/schemas/HTTPValidationError"
UNPROCESSABLE_REF = "#/components/schemas/Unprocessable"


def _widen_unprocessable(document: dict[str, Any]) -> dict[str, Any]:
    """Point every documented 422 at "a validation error list or a message"."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorMessage"] = ERROR_MESSAGE_SCHEMA
    schemas["Unprocessable"] = {
        "title": "Unprocessable",
        "anyOf": [{"$ref": VALIDATION_ERROR_REF}, {"$ref": "#/components/schemas/ErrorMessage"}],
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            content = (response or {}).get("content", {}).get("application/json")
            if content and content.get("schema", {}).get("$ref") == VALIDATION_ERROR_REF:
                content["schema"] = {"$ref": UNPROCESSABLE_REF}
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the widened document (built once, like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _widen_unprocessable(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
