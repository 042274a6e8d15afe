"""Call control over HTTP, end to end: the API, the service's rules and audit, and the real
`AmiClient` of an `AmiAdapter` (wired by `make_adapter`, as in `callcenter serve --with-pbx`)
talking to the AMI simulator, which records every action it receives."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import select

from callcenter.auth.models import AuditEntry, Role
from callcenter.calls.models import Call
from callcenter.calls.state import CallStatus
from callcenter.cli_pbx import make_adapter
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, PhoneIn
from callcenter.context import AppContext
from callcenter.control.pbx import ControlResult, ControlStatus, PbxControl
from callcenter.db import utcnow
from callcenter.events import Direction, EndReason
from pbx_adapter.runner import AmiAdapter
from pbx_adapter.simulator import AmiSimulator, CallTiming
from tests.factories import api_token_for, bearer, make_user

AMI_USER, AMI_SECRET = "crm", "control-api-secret"
STILL = CallTiming(
    ring_s=(600.0, 600.0), ring_timeout_s=600.0, talk_s=(600.0, 600.0), patience_s=(600.0, 600.0)
)
BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@dataclass
class Pbx:
    sim: AmiSimulator
    adapter: AmiAdapter

    def sent(self, action: str) -> list[dict[str, str]]:
        return [a for a in self.sim.actions if a.get("Action") == action]


@pytest.fixture
async def pbx(ctx: AppContext) -> AsyncIterator[Pbx]:
    sim = AmiSimulator("127.0.0.1", 0, AMI_USER, AMI_SECRET, timing=STILL, seed=5)
    await sim.start()
    adapter = make_adapter(ctx, sim.host, sim.port, AMI_USER, AMI_SECRET)
    task = asyncio.create_task(adapter.run())
    await adapter.client.wait_connected(10)
    await adapter.pipeline.flush()
    yield Pbx(sim, adapter)
    await adapter.stop()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, 10)
    await sim.stop()


@dataclass
class People:
    """Bearer headers per user, and their ids."""

    headers: dict[str, dict[str, str]]
    ids: dict[str, int]


@pytest.fixture
async def people(ctx: AppContext) -> People:
    specs: list[tuple[str, Role, list[str], list[str]]] = [
        ("anna", Role.OPERATOR, ["101"], ["support"]),
        ("boris", Role.OPERATOR, ["PJSIP/104"], ["sales"]),
        ("ivan", Role.OPERATOR, [], ["support"]),
        ("sveta", Role.SUPERVISOR, ["201"], []),
        ("oleg", Role.SUPERVISOR, [], []),
    ]
    headers: dict[str, dict[str, str]] = {}
    ids: dict[str, int] = {}
    async with ctx.sessionmaker() as session:
        for login, role, extensions, queues in specs:
            user = await make_user(
                session,
                login=login,
                role=role,
                extensions=extensions,
                queues=queues,
                name=f"{login.title()} Agent",
            )
            headers[login] = bearer(await api_token_for(session, user.id))
            ids[login] = user.id
        await session.commit()
    return People(headers, ids)


async def audit_of(ctx: AppContext, action: str) -> list[AuditEntry]:
    async with ctx.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return list(rows)


def without_id(action: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in action.items() if k != "ActionID"}


def code_of(response: Response) -> str:
    detail: dict[str, Any] = response.json()["detail"]
    return str(detail["code"])


async def eventually(check: Callable[[], Any], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within_s}s")
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- pause


@BOTH
async def test_given_an_operator_pausing_self_with_a_reason_then_queuepause_is_sent_audited(
    client: AsyncClient, ctx: AppContext, pbx: Pbx, people: People
) -> None:
    response = await client.post(
        "/api/agents/me/pause", json={"reason": "lunch"}, headers=people.headers["anna"]
    )

    assert response.status_code == 200, response.text
    assert response.json()["results"] == [
        {
            "extension": "101",
            "interface": "Local/101@agents",
            "status": "ok",
            "message": "Interface paused successfully",
        }
    ]
    assert [without_id(a) for a in pbx.sent("QueuePause")] == [
        {
            "Action": "QueuePause",
            "Interface": "Local/101@agents",
            "Paused": "true",
            "Reason": "lunch",
        }
    ]
    [entry] = await audit_of(ctx, "agent.pause")
    assert (entry.user_id, entry.entity, entry.entity_id) == (people.ids["anna"], "agent", "101")
    assert entry.details["result"] == "ok"
    assert entry.details["reason"] == "lunch"
    status = (await client.get("/api/control/me", headers=people.headers["anna"])).json()
    assert (status["pbx"], status["paused"], status["reason"]) == ("ok", True, "lunch")


async def test_given_the_other_reason_with_text_when_pausing_then_the_text_is_the_reason_sent(
    client: AsyncClient, pbx: Pbx, people: People
) -> None:
    response = await client.post(
        "/api/agents/101/pause",
        json={"reason": "other", "text": "  к  врачу  "},
        headers=people.headers["anna"],
    )

    assert response.status_code == 200, response.text
    assert response.json()["reason"] == "к врачу"
    assert pbx.sent("QueuePause")[0]["Reason"] == "к врачу"


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "siesta"},
        {"reason": "lunch", "text": "long lunch"},
        {"reason": "other", "text": "x" * 65},
    ],
)
async def test_given_a_reason_outside_the_list_or_too_long_then_422_and_nothing_is_sent(
    client: AsyncClient, pbx: Pbx, people: People, body: dict[str, str]
) -> None:
    response = await client.post("/api/agents/me/pause", json=body, headers=people.headers["anna"])

    assert response.status_code == 422
    assert pbx.sent("QueuePause") == []


async def test_given_an_operator_when_pausing_another_agent_then_403_audited_and_nothing_sent(
    client: AsyncClient, ctx: AppContext, pbx: Pbx, people: People
) -> None:
    paused = await client.post(
        "/api/agents/102/pause", json={"reason": "lunch"}, headers=people.headers["anna"]
    )
    unpaused = await client.post("/api/agents/102/unpause", json={}, headers=people.headers["anna"])

    assert (paused.status_code, unpaused.status_code) == (403, 403)
    assert code_of(paused) == "not_your_extension"
    assert pbx.sent("QueuePause") == []
    refusals = await audit_of(ctx, "agent.pause")
    assert [(e.entity_id, e.details["result"]) for e in refusals] == [("102", "not_your_extension")]


async def test_given_an_operator_without_an_extension_then_a_clear_409(
    client: AsyncClient, pbx: Pbx, people: People
) -> None:
    pause = await client.post(
        "/api/agents/me/pause", json={"reason": "lunch"}, headers=people.headers["ivan"]
    )
    dial = await client.post(
        "/api/outbound-calls", json={"number": "+79161234567"}, headers=people.headers["ivan"]
    )

    assert (pause.status_code, dial.status_code) == (409, 409)
    assert code_of(pause) == code_of(dial) == "no_extension"
    assert "extension" in pause.json()["detail"]["message"]
    assert pbx.sent("QueuePause") == pbx.sent("Originate") == []


async def test_given_a_supervisor_when_pausing_any_agent_in_one_queue_then_queue_is_sent(
    client: AsyncClient, pbx: Pbx, people: People
) -> None:
    paused = await client.post(
        "/api/agents/102/pause",
        json={"reason": "training", "queue": "support"},
        headers=people.headers["sveta"],
    )
    unpaused = await client.post(
        "/api/agents/102/unpause", json={"queue": "support"}, headers=people.headers["sveta"]
    )

    assert (paused.status_code, unpaused.status_code) == (200, 200)
    assert [without_id(a) for a in pbx.sent("QueuePause")] == [
        {
            "Action": "QueuePause",
            "Interface": "Local/102@agents",
            "Paused": "true",
            "Queue": "support",
            "Reason": "training",
        },
        {
            "Action": "QueuePause",
            "Interface": "Local/102@agents",
            "Paused": "false",
            "Queue": "support",
        },
    ]


async def test_given_an_interface_the_pbx_does_not_know_then_409_with_the_pbx_message(
    client: AsyncClient, pbx: Pbx, people: People
) -> None:
    response = await client.post(
        "/api/agents/777/pause", json={"reason": "lunch"}, headers=people.headers["sveta"]
    )

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "pbx_refused"
    assert response.json()["detail"]["message"] == "Interface not found"


# --------------------------------------------------------------------------- queues


@BOTH
async def test_given_a_supervisor_when_adding_and_removing_a_member_then_queueadd_queueremove_exact(
    client: AsyncClient, ctx: AppContext, pbx: Pbx, people: People
) -> None:
    added = await client.put(
        "/api/agents/104/queues/support",
        json={"penalty": 3, "interface": "PJSIP/104"},
        headers=people.headers["sveta"],
    )
    removed = await client.delete(
        "/api/agents/104/queues/support?interface=PJSIP/104", headers=people.headers["sveta"]
    )

    assert (added.status_code, removed.status_code) == (200, 200), added.text
    assert [without_id(a) for a in pbx.sent("QueueAdd")] == [
        {
            "Action": "QueueAdd",
            "Queue": "support",
            "Interface": "PJSIP/104",
            "MemberName": "Boris Agent",
            "Penalty": "3",
            "Paused": "false",
        }
    ]
    assert [without_id(a) for a in pbx.sent("QueueRemove")] == [
        {"Action": "QueueRemove", "Queue": "support", "Interface": "PJSIP/104"}
    ]
    entries = [
        *await audit_of(ctx, "queue.member_add"),
        *await audit_of(ctx, "queue.member_remove"),
    ]
    assert [(e.entity_id, e.details["extension"], e.details["result"]) for e in entries] == [
        ("support", "104", "ok"),
        ("support", "104", "ok"),
    ]


async def test_given_an_interface_of_another_extension_then_422_and_nothing_sent(
    client: AsyncClient, pbx: Pbx, people: People
) -> None:
    response = await client.put(
        "/api/agents/104/queues/support",
        json={"interface": "PJSIP/105"},
        headers=people.headers["sveta"],
    )

    assert response.status_code == 422
    assert pbx.sent("QueueAdd") == []


async def test_given_an_operator_then_queue_membership_and_spying_are_forbidden(
    client: AsyncClient, pbx: Pbx, people: People
) -> None:
    anna = people.headers["anna"]
    responses = [
        await client.put("/api/agents/101/queues/sales", json={}, headers=anna),
        await client.delete("/api/agents/101/queues/support", headers=anna),
        await client.post("/api/agents/102/spy", json={"mode": "listen"}, headers=anna),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert pbx.sent("QueueAdd") == pbx.sent("QueueRemove") == pbx.sent("Originate") == []


# --------------------------------------------------------------------------- listen, whisper, barge


async def answered_call_of(ctx: AppContext, pbx: Pbx, agent: str) -> int:
    linkedid = pbx.sim.ring(agent, "+79161234567", "Иван Петров")
    pbx.sim.answer(linkedid)
    found: list[int] = []

    async def answered() -> bool:
        await pbx.adapter.pipeline.flush()
        async with ctx.sessionmaker() as session:
            row = await session.scalar(select(Call).where(Call.call_key == linkedid))
        if row is not None and row.status is CallStatus.ANSWERED:
            found.append(row.id)
            return True
        return False

    await eventually(answered)
    return found[0]


async def test_given_an_agent_on_a_call_when_supervisor_spies_then_chanspy_is_originated(
    client: AsyncClient, ctx: AppContext, pbx: Pbx, people: People
) -> None:
    call_id = await answered_call_of(ctx, pbx, "Local/101@agents")

    for mode in ("listen", "whisper", "barge"):
        response = await client.post(
            "/api/agents/101/spy", json={"mode": mode}, headers=people.headers["sveta"]
        )
        assert response.status_code == 200, response.text
        assert response.json()["call_id"] == call_id
        assert response.json()["from_extension"] == "201"

    assert [without_id(a) for a in pbx.sent("Originate")] == [
        {
            "Action": "Originate",
            "Channel": "Local/201@agents",
            "Application": "ChanSpy",
            "Data": f"Local/101@agents-,{options}",
            "CallerID": f'"{mode} 101" <101>',
            "Variable": f"CRM_ORIGINATED=1,CRM_SPY={mode}",
            "Timeout": "30000",
            "Async": "true",
        }
        for mode, options in (("listen", "qbES"), ("whisper", "qbESw"), ("barge", "qbESB"))
    ]
    entries = [
        *await audit_of(ctx, "agent.listen"),
        *await audit_of(ctx, "agent.whisper"),
        *await audit_of(ctx, "agent.barge"),
    ]
    assert [(e.entity_id, e.details["call_id"], e.details["result"]) for e in entries] == [
        ("101", call_id, "ok")
    ] * 3


async def test_given_an_idle_agent_or_a_supervisor_without_a_phone_then_spying_is_refused(
    client: AsyncClient, pbx: Pbx, people: People
) -> None:
    idle = await client.post(
        "/api/agents/102/spy", json={"mode": "listen"}, headers=people.headers["sveta"]
    )
    phoneless = await client.post(
        "/api/agents/102/spy", json={"mode": "listen"}, headers=people.headers["oleg"]
    )

    assert (idle.status_code, code_of(idle)) == (409, "agent_not_in_call")
    assert (phoneless.status_code, code_of(phoneless)) == (409, "no_extension")
    assert pbx.sent("Originate") == []


# --------------------------------------------------------------------------- click-to-call


@pytest.mark.parametrize(
    ("written", "dial_string", "shown"),
    [
        ("+7 916 123-45-67", "89161234567", "+7 916 123-45-67"),
        ("8 (916) 123 45 67", "89161234567", "+7 916 123-45-67"),
        ("123-45-67", "84951234567", "+7 495 123-45-67"),
        ("+44 20 7946 0958", "+442079460958", "+44 20 7946 0958"),
    ],
)
async def test_given_a_number_in_any_format_when_clicked_then_originate_dials_its_dial_string(
    client: AsyncClient,
    ctx: AppContext,
    pbx: Pbx,
    people: People,
    written: str,
    dial_string: str,
    shown: str,
) -> None:
    response = await client.post(
        "/api/outbound-calls",
        json={"number": written},
        headers={**people.headers["anna"], "Idempotency-Key": "click-0001"},
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["status"], body["duplicate"], body["dial_string"]) == (
        "accepted",
        False,
        dial_string,
    )
    assert dial_string == ctx.phones.dial_string(body["e164"])
    [sent] = pbx.sent("Originate")
    assert without_id(sent) == {
        "Action": "Originate",
        "Channel": "Local/101@agents",
        "Exten": dial_string,
        "Context": "from-internal",
        "Priority": "1",
        "CallerID": f'"{shown}" <{dial_string}>',
        "Variable": (
            f"CRM_ORIGINATED=1,CRM_REQUEST_ID={body['request_id']},CRM_USER_ID={people.ids['anna']}"
        ),
        "Timeout": "30000",
        "Async": "true",
    }
    [entry] = await audit_of(ctx, "call.originate")
    assert entry.details["result"] == "accepted"
    assert entry.details["action_id"] == sent["ActionID"]


async def test_given_a_client_card_when_clicked_then_the_operators_phone_shows_the_clients_name(
    client: AsyncClient, ctx: AppContext, pbx: Pbx, people: People
) -> None:
    async with ctx.sessionmaker() as session:
        card = await clients.create_client(
            session,
            ctx.phones,
            ClientIn(name='Мария "Маша" Сидорова', phones=[PhoneIn(raw="+7 916 000-11-22")]),
        )
        await session.commit()

    response = await client.post(
        "/api/outbound-calls",
        json={"number": "+7 916 000-11-22", "client_id": card.id},
        headers=people.headers["boris"],
    )

    assert response.status_code == 202, response.text
    [sent] = pbx.sent("Originate")
    assert sent["CallerID"] == '"Мария Маша Сидорова" <89160001122>'
    assert sent["Channel"] == "Local/104@agents"


async def test_given_an_operator_when_dialling_from_another_extension_then_403(
    client: AsyncClient, pbx: Pbx, people: People
) -> None:
    response = await client.post(
        "/api/outbound-calls",
        json={"number": "+79161234567", "from_extension": "102"},
        headers=people.headers["anna"],
    )

    assert (response.status_code, code_of(response)) == (403, "not_your_extension")
    assert pbx.sent("Originate") == []


@BOTH
async def test_given_a_double_click_when_sent_twice_then_the_number_is_dialled_once(
    client: AsyncClient, ctx: AppContext, pbx: Pbx, people: People
) -> None:
    anna = people.headers["anna"]
    body = {"number": "+79161234567"}
    first, same_key = [
        await client.post("/api/outbound-calls", json=body, headers={**anna, "Idempotency-Key": k})
        for k in ("click-aaaa1", "click-aaaa1")
    ]
    concurrent = await asyncio.gather(
        *[
            client.post("/api/outbound-calls", json=body, headers={**anna, "Idempotency-Key": k})
            for k in ("click-bbbb1", "click-bbbb2", "click-bbbb3")
        ]
    )
    same_key_at_once = await asyncio.gather(
        *[
            client.post(
                "/api/outbound-calls",
                json={"number": "+74951112233"},
                headers={**anna, "Idempotency-Key": "click-cccc1"},
            )
            for _ in range(2)
        ]
    )

    assert [a["Exten"] for a in pbx.sent("Originate")] == ["89161234567", "84951112233"]
    assert first.json()["duplicate"] is False
    assert same_key.json() == first.json() | {"duplicate": True}
    assert {r.status_code for r in concurrent} == {202}
    assert [r.json()["duplicate"] for r in concurrent] == [True, True, True]
    assert {r.json()["request_id"] for r in concurrent} == {first.json()["request_id"]}
    assert sorted(r.json()["duplicate"] for r in same_key_at_once) == [False, True]
    assert len({r.json()["request_id"] for r in same_key_at_once}) == 1
    results = [e.details["result"] for e in await audit_of(ctx, "call.originate")]
    assert results == ["accepted", "duplicate", "duplicate", "duplicate", "accepted"]


class ScriptedControl:
    """A `PbxControl` whose originates answer as the test says (the AMI path is covered above)."""

    def __init__(self) -> None:
        self.answers: list[ControlResult] = []
        self.originated: list[str] = []

    async def originate_call(
        self,
        from_extension: str,
        dial_string: str,
        caller_id: str,
        *,
        request_id: str,
        variables: Mapping[str, str],
    ) -> ControlResult:
        self.originated.append(dial_string)
        return self.answers.pop(0)


async def test_given_a_refused_dial_then_the_next_click_to_that_number_dials_again(
    client: AsyncClient, ctx: AppContext, people: People
) -> None:
    scripted = ScriptedControl()
    scripted.answers = [
        ControlResult(ControlStatus.REFUSED, "Extension does not exist."),
        ControlResult(ControlStatus.OK, "Originate successfully queued"),
    ]
    ctx.pbx_control = cast(PbxControl, scripted)
    anna = people.headers["anna"]
    body = {"number": "+79161234567"}

    refused = await client.post(
        "/api/outbound-calls", json=body, headers={**anna, "Idempotency-Key": "click-ref01"}
    )
    accepted = await client.post(
        "/api/outbound-calls", json=body, headers={**anna, "Idempotency-Key": "click-ref02"}
    )

    assert (refused.status_code, code_of(refused)) == (409, "pbx_refused")
    assert refused.json()["detail"]["message"] == "Extension does not exist."
    assert (accepted.status_code, accepted.json()["duplicate"]) == (202, False)
    assert scripted.originated == ["89161234567", "89161234567"]


async def test_given_a_lost_originate_answer_then_202_unknown_and_it_is_never_sent_again(
    client: AsyncClient, ctx: AppContext, pbx: Pbx, people: People
) -> None:
    pbx.sim.cut_on_next("Originate")
    anna = people.headers["anna"]
    body = {"number": "+79161234567"}

    lost = await client.post(
        "/api/outbound-calls", json=body, headers={**anna, "Idempotency-Key": "click-lost1"}
    )
    await pbx.adapter.client.wait_connected(5)
    retried = await client.post(
        "/api/outbound-calls", json=body, headers={**anna, "Idempotency-Key": "click-lost1"}
    )
    clicked_again = await client.post(
        "/api/outbound-calls", json=body, headers={**anna, "Idempotency-Key": "click-lost2"}
    )

    assert lost.status_code == 202
    assert lost.json()["status"] == "unknown"
    assert retried.json()["duplicate"]
    assert clicked_again.json()["duplicate"]
    assert len(pbx.sent("Originate")) == 1
    [entry, duplicate] = await audit_of(ctx, "call.originate")
    assert (entry.details["result"], duplicate.details["result"]) == ("unknown", "duplicate")


async def test_given_no_adapter_in_the_process_then_every_action_answers_503(
    client: AsyncClient, ctx: AppContext, people: People
) -> None:
    assert ctx.pbx_control is None
    responses = [
        await client.post(
            "/api/agents/me/pause", json={"reason": "lunch"}, headers=people.headers["anna"]
        ),
        await client.post(
            "/api/outbound-calls", json={"number": "+79161234567"}, headers=people.headers["anna"]
        ),
        await client.put("/api/agents/101/queues/sales", json={}, headers=people.headers["sveta"]),
    ]

    assert [(r.status_code, code_of(r)) for r in responses] == [(503, "pbx_unavailable")] * 3
    status = (await client.get("/api/control/me", headers=people.headers["anna"])).json()
    assert (status["pbx"], status["paused"], status["extensions"]) == ("unavailable", None, ["101"])


async def test_given_the_pbx_link_down_then_pause_answers_503_not_connected(
    client: AsyncClient, pbx: Pbx, people: People
) -> None:
    await pbx.adapter.stop()

    response = await client.post(
        "/api/agents/me/pause", json={"reason": "lunch"}, headers=people.headers["anna"]
    )

    assert (response.status_code, code_of(response)) == (503, "pbx_not_connected")


# --------------------------------------------------------------------------- the worklist


async def add_call(
    ctx: AppContext,
    key: str,
    *,
    started: datetime,
    caller: str | None = None,
    callee: str | None = None,
    queue: str | None = "support",
    reason: EndReason | None = EndReason.ABANDONED,
    answered: bool = False,
    direction: Direction = Direction.INBOUND,
) -> int:
    async with ctx.sessionmaker() as session:
        row = Call(
            pbx="default",
            call_key=key,
            direction=direction,
            status=CallStatus.ENDED,
            caller_num=caller or "",
            caller_e164=caller,
            callee_e164=callee,
            queue=queue,
            started_at=started,
            answered_at=started + timedelta(seconds=5) if answered else None,
            ended_at=started + timedelta(seconds=60),
            end_reason=EndReason.COMPLETED if answered else reason,
            caller_name="Звонивший",
        )
        session.add(row)
        await session.commit()
        return row.id


@BOTH
async def test_given_missed_calls_when_listed_called_back_and_closed_then_the_worklist_follows(
    client: AsyncClient, ctx: AppContext, pbx: Pbx, people: People
) -> None:
    now = utcnow()
    anna, sveta = people.headers["anna"], people.headers["sveta"]
    first = await add_call(ctx, "a1", caller="+79161234567", started=now - timedelta(hours=3))
    again = await add_call(
        ctx,
        "a2",
        caller="+79161234567",
        started=now - timedelta(hours=2),
        reason=EndReason.QUEUE_TIMEOUT,
    )
    reached = await add_call(ctx, "b1", caller="+74951112233", started=now - timedelta(hours=2))
    await add_call(
        ctx,
        "b2",
        callee="+74951112233",
        started=now - timedelta(hours=1),
        answered=True,
        direction=Direction.OUTBOUND,
        queue=None,
    )
    sales = await add_call(
        ctx, "c1", caller="+442079460958", started=now - timedelta(minutes=30), queue="sales"
    )
    await add_call(ctx, "old", caller="+79990000000", started=now - timedelta(days=5))

    mine = (await client.get("/api/worklist/missed", headers=anna)).json()
    everyone = (await client.get("/api/worklist/missed", headers=sveta)).json()

    assert [(i["call_id"], i["call_ids"], i["missed_count"]) for i in mine["items"]] == [
        (again, [again, first], 2)
    ]
    assert mine["items"][0]["display"] == "+7 916 123-45-67"
    assert [i["call_id"] for i in everyone["items"]] == [sales, again]
    assert reached not in {i["call_id"] for i in everyone["items"]}

    called = await client.post(
        f"/api/worklist/missed/{first}/call-back",
        headers={**anna, "Idempotency-Key": "callback-01"},
    )
    assert called.status_code == 202, called.text
    assert called.json()["missed_call_id"] == first
    [sent] = pbx.sent("Originate")
    assert (sent["Channel"], sent["Exten"]) == ("Local/101@agents", "89161234567")
    item = (await client.get("/api/worklist/missed", headers=anna)).json()["items"][0]
    assert (item["attempts"], item["last_attempt_status"]) == (1, "accepted")

    foreign = await client.post(f"/api/worklist/missed/{sales}/call-back", headers=anna)
    assert (foreign.status_code, code_of(foreign)) == (404, "not_in_worklist")

    closed = await client.post(
        f"/api/worklist/missed/{again}/close", json={"resolution": "done"}, headers=anna
    )
    assert closed.status_code == 200
    assert (await client.get("/api/worklist/missed", headers=anna)).json()["items"] == []
    [callback] = await audit_of(ctx, "call.call_back")
    assert callback.details["missed_call_id"] == first
    [closure] = await audit_of(ctx, "worklist.close")
    assert closure.details["resolution"] == "done"

    newer = await add_call(ctx, "a3", caller="+79161234567", started=utcnow())
    back = (await client.get("/api/worklist/missed", headers=anna)).json()["items"]
    assert [(i["call_id"], i["missed_count"], i["attempts"]) for i in back] == [(newer, 1, 0)]


async def test_given_an_operator_without_queues_then_the_worklist_is_empty(
    client: AsyncClient, ctx: AppContext, people: People
) -> None:
    await add_call(ctx, "x1", caller="+79161234567", started=utcnow() - timedelta(minutes=5))

    response = await client.get("/api/worklist/missed", headers=people.headers["boris"])

    assert response.status_code == 200
    assert response.json()["items"] == []
