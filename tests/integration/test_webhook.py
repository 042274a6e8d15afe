"""`POST /api/pbx/{pbx}/events`: a cloud PBX's events become the same call records and pops
as Asterisk's, once, all or nothing, only for admins' tokens and configured PBX names."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from hypothesis import HealthCheck, given
from hypothesis import event as label
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from callcenter.auth.models import Role
from callcenter.calls.models import Call, PbxEvent
from callcenter.config import Settings
from callcenter.context import AppContext
from callcenter.main import create_app
from callcenter.realtime.streams import user_topic
from callcenter.webhooks.schemas import EVENT_TYPES
from tests.factories import api_token_for, bearer, make_user

PBX = "cloud"
URL = f"/api/pbx/{PBX}/events"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_pbxs": [PBX], "webhook_max_events": 20})


@pytest.fixture
async def people(ctx: AppContext) -> dict[str, Any]:
    async with ctx.sessionmaker() as session:
        admin = await make_user(session, role=Role.ADMIN, login="integrator")
        operator = await make_user(session, login="anna", extensions=["101"])
        supervisor = await make_user(session, role=Role.SUPERVISOR, login="sveta")
        found = {
            "admin": bearer(await api_token_for(session, admin.id, "cloud pbx")),
            "supervisor": bearer(await api_token_for(session, supervisor.id)),
            "operator_id": operator.id,
        }
        await session.commit()
    return found


def whole_call(call_id: str = "cl-1") -> list[dict[str, Any]]:
    """A complete inbound call as a cloud PBX reports it."""

    def event(n: int, kind: str, **fields: Any) -> dict[str, Any]:
        at = f"2026-11-29T10:15:{n:02d}+03:00"
        return {"id": f"{call_id}-{n}", "type": kind, "call_id": call_id, "at": at, **fields}

    return [
        event(0, "call.started", direction="inbound", caller_number="+74951234567"),
        event(1, "call.queued", queue="support"),
        event(2, "call.ringing", agent="101", agent_name="Анна", queue="support"),
        event(5, "call.answered", agent="101", agent_name="Анна", queue="support"),
        event(40, "call.ended", reason="completed", ended_by="caller"),
    ]


async def _counts(ctx: AppContext) -> tuple[int, int]:
    async with ctx.sessionmaker() as session:
        calls = await session.scalar(select(func.count()).select_from(Call))
        events = await session.scalar(select(func.count()).select_from(PbxEvent))
    return calls or 0, events or 0


@pytest.fixture
async def operator_stream(ctx: AppContext, people: dict[str, Any]) -> AsyncIterator[Any]:
    topic = user_topic(people["operator_id"])
    subscription = await ctx.streams.subscribe([topic], {topic: await ctx.streams.last_id(topic)})
    yield subscription
    await subscription.close()


async def test_given_a_whole_call_when_posted_as_one_batch_then_one_record_and_the_card_pops(
    client: AsyncClient, ctx: AppContext, people: dict[str, Any], operator_stream: Any
) -> None:
    response = await client.post(URL, json=whole_call(), headers=people["admin"])

    assert response.status_code == 200, response.text
    assert response.json() == {"received": 5, "applied": 5, "duplicates": 0}
    async with ctx.sessionmaker() as session:
        [call] = (await session.scalars(select(Call))).all()
    assert (call.pbx, call.call_key, call.status.value, call.queue) == (
        PBX,
        "cl-1",
        "ended",
        "support",
    )
    assert call.agent_user_id == people["operator_id"]
    assert call.talk_seconds == 35
    seen = []
    async for event in operator_stream:
        seen.append(json.loads(event.data))
        if seen[-1]["type"] == "call.ended":
            break
    assert [e["type"] for e in seen] == ["call.ringing", "call.connected", "call.ended"]
    assert seen[0]["card"]["number"] == "+74951234567"


async def test_given_events_posted_one_by_one_then_the_same_record_as_one_batch(
    client: AsyncClient, ctx: AppContext, people: dict[str, Any]
) -> None:
    for event in whole_call():
        response = await client.post(URL, json=event, headers=people["admin"])
        assert response.json() == {"received": 1, "applied": 1, "duplicates": 0}

    assert await _counts(ctx) == (1, 5)


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_given_the_same_batch_twice_then_the_second_changes_nothing(
    client: AsyncClient, ctx: AppContext, people: dict[str, Any]
) -> None:
    first = await client.post(URL, json=whole_call(), headers=people["admin"])
    async with ctx.sessionmaker() as session:
        before = (await session.scalars(select(Call))).one().ended_at

    again = await client.post(URL, json=whole_call(), headers=people["admin"])

    assert first.status_code == again.status_code == 200
    assert again.json() == {"received": 5, "applied": 0, "duplicates": 5}
    assert await _counts(ctx) == (1, 5)
    async with ctx.sessionmaker() as session:
        assert (await session.scalars(select(Call))).one().ended_at == before


async def test_given_one_bad_event_in_a_batch_then_422_with_its_index_and_nothing_stored(
    client: AsyncClient, ctx: AppContext, people: dict[str, Any]
) -> None:
    batch = whole_call()
    batch[3]["reason"] = "whatever"  # call.answered has no `reason`
    batch[4]["at"] = "yesterday"

    response = await client.post(URL, json=batch, headers=people["admin"])

    assert response.status_code == 422
    assert [p["loc"] for p in response.json()["detail"]] == [
        ["body", 3, "reason"],
        ["body", 4, "at"],
    ]
    assert await _counts(ctx) == (0, 0)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 422),
        (b"{", 422),
        (b"[]", 422),
        (json.dumps(whole_call() * 5).encode(), 422),  # over webhook_max_events (20)
        (b"[" + b" " * 300_000 + b"]", 413),  # over webhook_max_body_bytes
    ],
)
async def test_given_a_body_that_is_no_batch_then_refused_and_nothing_stored(
    client: AsyncClient, ctx: AppContext, people: dict[str, Any], body: bytes, status: int
) -> None:
    headers = {**people["admin"], "Content-Type": "application/json"}

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == status
    assert await _counts(ctx) == (0, 0)


async def test_given_no_token_a_lower_role_or_an_unknown_pbx_then_401_403_404(
    client: AsyncClient, ctx: AppContext, people: dict[str, Any]
) -> None:
    anonymous = await client.post(URL, json=whole_call())
    wrong_token = await client.post(URL, json=whole_call(), headers=bearer("not-a-token"))
    supervisor = await client.post(URL, json=whole_call(), headers=people["supervisor"])
    unknown = await client.post(
        "/api/pbx/default/events", json=whole_call(), headers=people["admin"]
    )

    assert (anonymous.status_code, wrong_token.status_code) == (401, 401)
    assert supervisor.status_code == 403
    assert unknown.status_code == 404
    assert await _counts(ctx) == (0, 0)


async def test_given_a_token_over_its_rate_then_429_with_retry_after(
    ctx: AppContext, people: dict[str, Any]
) -> None:
    ctx.settings = ctx.settings.model_copy(update={"webhook_requests_per_minute": 2})
    app = create_app(ctx=ctx)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as http:
        responses = [
            await http.post(URL, json=event, headers=people["admin"]) for event in whole_call()[:3]
        ]

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert int(responses[2].headers["Retry-After"]) >= 1
    assert await _counts(ctx) == (1, 2)


# --- random payloads: never a 5xx, never a partial record ---------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
_fields = {
    "id": st.text(max_size=8) | st.integers(),
    "type": st.sampled_from(EVENT_TYPES) | st.text(max_size=12),
    "call_id": st.sampled_from(["r-1", "r-2", ""]),
    "at": st.sampled_from(["2026-11-29T10:00:00+03:00", "2026-11-29T10:00:00", "now"]),
    "direction": st.sampled_from(["inbound", "outbound", "up"]),
    "queue": st.text(max_size=70),
    "agent": st.text(max_size=130),
    "reason": st.sampled_from(["completed", "abandoned", "answered_here", "x"]),
    "ended_by": st.sampled_from(["caller", "agent", None, 3]),
    "position": st.integers(),
    "file": st.text(max_size=20),
    "caller_number": st.text(max_size=70),
}
_mutated = st.builds(
    lambda event, changes, dropped: {
        **{k: v for k, v in event.items() if k not in dropped},
        **changes,
    },
    st.sampled_from(whole_call("r-1") + whole_call("r-2")),
    st.dictionaries(st.sampled_from(sorted(_fields)), _values, max_size=2),
    st.sets(st.sampled_from(["id", "type", "call_id", "at", "direction", "agent"]), max_size=1),
)
"""A valid event of a real call, sometimes with a field changed or dropped."""
_events = (
    _mutated
    | st.fixed_dictionaries({}, optional={**_fields, "extra": _values})
    | st.dictionaries(st.text(max_size=10), _values, max_size=4)
)
_bodies = _events | st.lists(_events, max_size=6) | _values


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies)
async def test_given_random_json_when_posted_then_no_5xx_and_all_or_nothing(
    client: AsyncClient, ctx: AppContext, people: dict[str, Any], body: Any
) -> None:
    calls_before, events_before = await _counts(ctx)

    response = await client.post(URL, json=body, headers=people["admin"])

    assert response.status_code in (200, 409, 422), response.text
    label(f"status {response.status_code}")
    calls_after, events_after = await _counts(ctx)
    if response.status_code == 200:
        assert events_after - events_before == response.json()["applied"]
    else:
        assert (calls_after, events_after) == (calls_before, events_before)
