"""Pages and API answers carry the headers that keep the UI from being framed or injected."""

from __future__ import annotations

import pytest
from httpx import AsyncClient


@pytest.mark.parametrize("path", ["/login", "/operator", "/api/auth/me", "/ui/shared/api.js"])
async def test_given_any_response_then_security_headers_are_set(
    client: AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
