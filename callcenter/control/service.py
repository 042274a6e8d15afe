"""Who may do what to which phone, and the audit of it. Never commits: the API does.

Rules: operators act on their own extensions only (pause/unpause themselves, call from their
own phone); supervisors act on any agent and alone add/remove queue members and
listen/whisper/barge. Every action that was allowed to reach the PBX, and every refusal of
one operator acting on another's phone, leaves an audit entry with its result.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter import audit
from callcenter.auth.models import User
from callcenter.calls.agents import extension_of
from callcenter.clients.models import Client
from callcenter.config import Settings
from callcenter.control import repository
from callcenter.control.models import (
    DialStatus,
    MissedCallClosure,
    OutboundRequest,
    Resolution,
)
from callcenter.control.pbx import (
    ControlResult,
    ControlStatus,
    MemberState,
    PbxControl,
    SpyMode,
)
from callcenter.control.worklist import (
    MISSED_REASONS,
    Attempt,
    Closure,
    Contact,
    MissedCall,
    WorklistItem,
    open_items,
    window_start,
)
from callcenter.phones import PhoneIdentity

ME = "me"
"""Path alias for "my own extensions"."""
OTHER_REASON = "other"


# --------------------------------------------------------------------------- errors


class ControlError(Exception):
    """A refusal to act; `code` is stable (the UI translates it), the message is for humans."""

    code = "control_error"


class PbxUnavailable(ControlError):
    code = "pbx_unavailable"

    def __init__(self) -> None:
        super().__init__("no PBX adapter runs in this process: call control is unavailable")


class NoExtension(ControlError):
    code = "no_extension"

    def __init__(self) -> None:
        super().__init__("your user has no phone extension: ask an administrator to set one")


class NotYourExtension(ControlError):
    code = "not_your_extension"

    def __init__(self, extension: str) -> None:
        super().__init__(f"extension {extension} is not yours: operators act on their own only")


class InvalidRequest(ControlError):
    code = "invalid_request"


class AgentNotInCall(ControlError):
    code = "agent_not_in_call"

    def __init__(self, extension: str) -> None:
        super().__init__(f"extension {extension} is not on a call now")


class NotInWorklist(ControlError):
    code = "not_in_worklist"

    def __init__(self, call_id: int) -> None:
        super().__init__(f"call {call_id} is not an open item of your missed-calls worklist")


# --------------------------------------------------------------------------- who acts


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int
    supervisor: bool
    """Supervisors and admins: act on any agent."""
    role: str = ""


async def own_extensions(session: AsyncSession, user_id: int) -> list[str]:
    """The user's extensions, as `101` whatever form they are stored in (`PJSIP/101`)."""
    rows = await repository.stored_extensions(session)
    return sorted({extension_of(stored) for stored, owner in rows if owner == user_id})


async def users_of_extension(session: AsyncSession, extension: str) -> list[int]:
    rows = await repository.stored_extensions(session)
    return sorted({owner for stored, owner in rows if extension_of(stored) == extension})


async def _targets(session: AsyncSession, actor: Actor, extension: str, what: str) -> list[str]:
    """The extensions `actor` may act on for `extension` (`me`: all of their own)."""
    own = await own_extensions(session, actor.user_id)
    if extension == ME or not actor.supervisor:
        if not own:
            await _audit_refusal(session, actor, what, extension, NoExtension())
        if extension != ME and extension not in own:
            await _audit_refusal(session, actor, what, extension, NotYourExtension(extension))
    return own if extension == ME else [extension]


async def _audit_refusal(
    session: AsyncSession, actor: Actor, what: str, target: str, error: ControlError
) -> NoReturn:
    """Audit an act refused to this actor, then refuse it (the API commits the entry)."""
    await audit.record(
        session,
        user_id=actor.user_id,
        action=what,
        entity="agent",
        entity_id=target,
        details={"result": error.code, "role": actor.role},
    )
    raise error


def _require(control: PbxControl | None) -> PbxControl:
    if control is None:
        raise PbxUnavailable
    return control


def member_interface(template: str, extension: str, explicit: str | None) -> str:
    """The queue member interface of `extension`: the one given (it must be that
    extension's), else the settings' template."""
    if explicit:
        if extension_of(explicit) != extension:
            raise InvalidRequest(f"interface {explicit} is not extension {extension}'s")
        return explicit
    return template.replace("{ext}", extension)


# --------------------------------------------------------------------------- pause


def pause_reason(code: str, text: str, allowed: Sequence[str], max_length: int) -> str:
    """The Reason sent to the PBX: a configured code, or the free text given with "other"."""
    if code not in allowed:
        raise InvalidRequest(f"unknown pause reason {code!r}; one of: {', '.join(allowed)}")
    cleaned = " ".join(text.split())
    if len(cleaned) > max_length:
        raise InvalidRequest(f"a pause reason is at most {max_length} characters")
    if cleaned and code != OTHER_REASON:
        raise InvalidRequest(f"free text goes with the {OTHER_REASON!r} reason only")
    return cleaned or code


@dataclass(frozen=True, slots=True)
class AgentAction:
    """One action on one agent's interface and what the PBX said."""

    extension: str
    interface: str
    result: ControlResult
    users: tuple[int, ...] = ()
    """The users this extension rings (told about their new pause state)."""


@dataclass(frozen=True, slots=True)
class PauseOutcome:
    paused: bool
    reason: str
    queue: str | None
    actions: tuple[AgentAction, ...] = field(default_factory=tuple)


async def set_paused(
    session: AsyncSession,
    control: PbxControl | None,
    settings: Settings,
    actor: Actor,
    extension: str,
    *,
    paused: bool,
    reason_code: str = "",
    reason_text: str = "",
    queue: str | None = None,
    interface: str | None = None,
) -> PauseOutcome:
    """Pause or unpause an agent (operators: themselves) in one queue or all of them."""
    what = "agent.pause" if paused else "agent.unpause"
    targets = await _targets(session, actor, extension, what)
    if interface and len(targets) != 1:
        raise InvalidRequest("an explicit interface names one extension, not 'me' with several")
    reason = (
        pause_reason(
            reason_code, reason_text, settings.pause_reasons, settings.pause_reason_max_length
        )
        if paused
        else ""
    )
    pbx = _require(control)
    actions = []
    for target in targets:
        member = member_interface(settings.agent_interface_template, target, interface)
        result = await pbx.pause(member, queue, paused, reason)
        await _audit_result(
            session,
            actor,
            what,
            "agent",
            target,
            result,
            {"interface": member, "queue": queue, "reason": reason},
        )
        users = tuple(await users_of_extension(session, target))
        actions.append(AgentAction(target, member, result, users))
    return PauseOutcome(paused, reason, queue, tuple(actions))


async def _audit_result(
    session: AsyncSession,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: str,
    result: ControlResult,
    details: dict[str, Any],
) -> None:
    await audit.record(
        session,
        user_id=actor.user_id,
        action=action,
        entity=entity,
        entity_id=entity_id,
        details={
            **details,
            "role": actor.role,
            "result": result.status.value,
            "message": result.message[:255],
            "action_id": result.action_id,
        },
    )


async def member_status(
    session: AsyncSession, control: PbxControl | None, settings: Settings, actor: Actor
) -> tuple[list[str], ControlStatus | None, list[MemberState]]:
    """The actor's extensions, and their queue memberships as the PBX reports them now
    (status None: no PBX control in this process)."""
    own = await own_extensions(session, actor.user_id)
    if control is None or not own:
        return own, None if control is None else ControlStatus.OK, []
    members: list[MemberState] = []
    for extension in own:
        interface = member_interface(settings.agent_interface_template, extension, None)
        states = await control.member_states(interface)
        if states.status is not ControlStatus.OK:
            return own, states.status, []
        members.extend(states.members)
    return own, ControlStatus.OK, members


# --------------------------------------------------------------------------- queues


async def add_member(
    session: AsyncSession,
    control: PbxControl | None,
    settings: Settings,
    actor: Actor,
    extension: str,
    queue: str,
    *,
    interface: str | None = None,
    member_name: str = "",
    penalty: int = 0,
    paused: bool = False,
) -> AgentAction:
    """Make an agent a member of `queue` (supervisors)."""
    member = member_interface(settings.agent_interface_template, extension, interface)
    pbx = _require(control)
    if not member_name:
        member_name = await _name_of_extension(session, extension)
    result = await pbx.add_member(queue, member, member_name, penalty, paused)
    await _audit_result(
        session,
        actor,
        "queue.member_add",
        "queue",
        queue,
        result,
        {"extension": extension, "interface": member, "penalty": penalty, "paused": paused},
    )
    return AgentAction(extension, member, result)


async def remove_member(
    session: AsyncSession,
    control: PbxControl | None,
    settings: Settings,
    actor: Actor,
    extension: str,
    queue: str,
    *,
    interface: str | None = None,
) -> AgentAction:
    """Take an agent out of `queue` (supervisors)."""
    member = member_interface(settings.agent_interface_template, extension, interface)
    pbx = _require(control)
    result = await pbx.remove_member(queue, member)
    await _audit_result(
        session,
        actor,
        "queue.member_remove",
        "queue",
        queue,
        result,
        {"extension": extension, "interface": member},
    )
    return AgentAction(extension, member, result)


async def _name_of_extension(session: AsyncSession, extension: str) -> str:
    users = await users_of_extension(session, extension)
    if len(users) != 1:
        return ""
    user = await session.get(User, users[0])
    return user.name if user is not None else ""


# --------------------------------------------------------------------------- listen, whisper, barge


@dataclass(frozen=True, slots=True)
class SpyOutcome:
    from_extension: str
    call_id: int
    result: ControlResult


async def spy(
    session: AsyncSession,
    control: PbxControl | None,
    actor: Actor,
    extension: str,
    mode: SpyMode,
    *,
    from_extension: str | None = None,
) -> SpyOutcome:
    """Ring the supervisor's phone into the agent's current call (listen, whisper, barge)."""
    what = f"agent.{mode.value}"
    own = await own_extensions(session, actor.user_id)
    if not own:
        await _audit_refusal(session, actor, what, extension, NoExtension())
    if from_extension is not None and from_extension not in own:
        await _audit_refusal(session, actor, what, extension, NotYourExtension(from_extension))
    phone = from_extension or own[0]
    if phone == extension:
        raise InvalidRequest("a phone cannot listen to itself")
    call = next(
        (
            c
            for c in await repository.answered_open_calls(session)
            if extension_of(c.agent or "") == extension
        ),
        None,
    )
    if call is None:
        raise AgentNotInCall(extension)
    pbx = _require(control)
    request_id = f"cc-spy-{secrets.token_hex(8)}"
    result = await pbx.spy(phone, extension, mode, request_id=request_id)
    await _audit_result(
        session, actor, what, "agent", extension, result, {"from": phone, "call_id": call.id}
    )
    return SpyOutcome(phone, call.id, result)


# --------------------------------------------------------------------------- click-to-call


@dataclass(frozen=True, slots=True)
class DialPlan:
    """A validated click: from which phone, to which number, shown how."""

    user_id: int
    from_extension: str
    e164: str
    dial_string: str
    caller_id: str
    client_id: int | None = None
    missed_call_id: int | None = None


def caller_id_header(label: str, dial_string: str) -> str:
    """`"Мария Сидорова" <84951234567>`: what the operator's phone shows while it rings
    (characters that would break the header's quoting are dropped)."""
    name = " ".join("".join(c for c in label if c not in '"<>\\').split())[:64]
    return f'"{name}" <{dial_string}>' if name else f"<{dial_string}>"


async def plan_dial(
    session: AsyncSession,
    phones: PhoneIdentity,
    actor: Actor,
    number: str,
    *,
    from_extension: str | None = None,
    client_id: int | None = None,
    missed_call_id: int | None = None,
) -> DialPlan:
    """Check who may call from which phone, and turn `number` into what Asterisk dials."""
    what = "call.call_back" if missed_call_id is not None else "call.originate"
    own = await own_extensions(session, actor.user_id)
    if from_extension is None:
        if not own:
            await _audit_refusal(session, actor, what, ME, NoExtension())
        from_extension = own[0]
    elif from_extension not in own and not actor.supervisor:
        if not own:
            await _audit_refusal(session, actor, what, from_extension, NoExtension())
        await _audit_refusal(session, actor, what, from_extension, NotYourExtension(from_extension))
    e164 = phones.e164(number)
    if e164 is None:
        raise InvalidRequest(f"not a phone number: {number!r}")
    dial_string = phones.dial_string(e164)
    label = phones.display(e164)
    if client_id is not None:
        client = await session.get(Client, client_id)
        if client is None:
            raise InvalidRequest(f"no client {client_id}")
        label = client.name
    return DialPlan(
        user_id=actor.user_id,
        from_extension=from_extension,
        e164=e164,
        dial_string=dial_string,
        caller_id=caller_id_header(label, dial_string),
        client_id=client_id,
        missed_call_id=missed_call_id,
    )


@dataclass(frozen=True, slots=True)
class Reservation:
    request: OutboundRequest
    """The request that stands: this click's, or the earlier one it repeats."""
    click: OutboundRequest | None
    """This click's own row (None when the same idempotency key came again)."""

    @property
    def duplicate(self) -> bool:
        return self.click is not self.request


async def request_by_key(
    session: AsyncSession, user_id: int, idempotency_key: str | None
) -> OutboundRequest | None:
    if idempotency_key is None:
        return None
    return await repository.request_by_key(session, user_id, idempotency_key)


async def reserve_dial(
    session: AsyncSession,
    plan: DialPlan,
    *,
    idempotency_key: str | None,
    now: datetime,
    dedupe_s: float,
) -> Reservation:
    """Record the click before anything is sent, so a second click (the same key, or the same
    number within `dedupe_s`) finds it and dials nothing. Flushes; the caller commits before
    sending, so that other requests see the reservation. Two requests with one key at the
    same moment: the second one's flush raises IntegrityError (roll back, then
    `request_by_key`)."""
    await repository.lock_user(session, plan.user_id)
    existing = await request_by_key(session, plan.user_id, idempotency_key)
    if existing is not None:
        return Reservation(existing, None)
    row = OutboundRequest(
        user_id=plan.user_id,
        idempotency_key=idempotency_key,
        from_extension=plan.from_extension,
        to_e164=plan.e164,
        dial_string=plan.dial_string,
        client_id=plan.client_id,
        missed_call_id=plan.missed_call_id,
        status=DialStatus.PENDING,
        message="",
        action_id="",
        created_at=now,
    )
    session.add(row)
    await session.flush()
    row.action_id = f"cc-dial-{row.id}-{secrets.token_hex(4)}"
    earlier = await repository.earlier_live_request(
        session,
        user_id=plan.user_id,
        to_e164=plan.e164,
        since=now - timedelta(seconds=dedupe_s),
        before_id=row.id,
    )
    if earlier is not None:
        row.status = DialStatus.DUPLICATE
        row.message = f"the same number is being dialled by request {earlier.id}"
    await session.flush()
    return Reservation(earlier or row, row)


_DIAL_STATUS = {
    ControlStatus.OK: DialStatus.ACCEPTED,
    ControlStatus.REFUSED: DialStatus.REJECTED,
    ControlStatus.UNKNOWN: DialStatus.UNKNOWN,
    ControlStatus.NOT_CONNECTED: DialStatus.NOT_CONNECTED,
}


async def send_dial(
    control: PbxControl | None, plan: DialPlan, request: OutboundRequest
) -> ControlResult:
    """Ask the PBX to ring the operator's phone and dial the number (once per request)."""
    pbx = _require(control)
    variables = {"CRM_REQUEST_ID": str(request.id), "CRM_USER_ID": str(plan.user_id)}
    return await pbx.originate_call(
        plan.from_extension,
        plan.dial_string,
        plan.caller_id,
        request_id=request.action_id,
        variables=variables,
    )


async def finish_dial(
    session: AsyncSession,
    actor: Actor,
    click: OutboundRequest,
    result: ControlResult | None,
    *,
    duplicate_of: OutboundRequest | None = None,
) -> None:
    """Store what the PBX said about this click (None: nothing was sent), and audit it."""
    if result is not None:
        click.status = _DIAL_STATUS[result.status]
        click.message = result.message[:255]
    what = "call.call_back" if click.missed_call_id is not None else "call.originate"
    await audit.record(
        session,
        user_id=actor.user_id,
        action=what,
        entity="outbound_request",
        entity_id=str(click.id),
        details={
            "role": actor.role,
            "from_extension": click.from_extension,
            "to": click.to_e164,
            "dial_string": click.dial_string,
            "client_id": click.client_id,
            "missed_call_id": click.missed_call_id,
            "result": click.status.value,
            "message": click.message,
            "action_id": click.action_id if duplicate_of is None else "",
            "duplicate_of": duplicate_of.id if duplicate_of is not None else None,
        },
    )


# --------------------------------------------------------------------------- the worklist


async def worklist(
    session: AsyncSession, settings: Settings, actor: Actor, now: datetime
) -> list[WorklistItem]:
    """The actor's missed-calls worklist: their queues' (supervisors: every queue's)."""
    since = window_start(now, ZoneInfo(settings.timezone), settings.worklist_days)
    queues: list[str] | None = None
    if not actor.supervisor:
        user = await session.get(User, actor.user_id)
        queues = list(user.queues or []) if user is not None else []
        if not queues:
            return []
    rows = await repository.missed_calls(
        session, since=since, reasons=MISSED_REASONS, queues=queues
    )
    missed = [
        MissedCall(
            id=r.id,
            e164=r.caller_e164 or "",
            started_at=r.started_at,
            queue=r.queue or "",
            end_reason=r.end_reason,
            caller_num=r.caller_num,
            caller_name=r.caller_name,
            client_id=r.client_id,
            wait_seconds=r.wait_seconds,
        )
        for r in rows
        if r.end_reason is not None
    ]
    numbers = {m.e164 for m in missed}
    if not numbers:
        return []
    contacts = [
        Contact(e164, at)
        for e164, at in await repository.answered_calls_with(session, since=since, numbers=numbers)
    ]
    closures = [
        Closure(c.caller_e164, c.up_to)
        for c in await repository.closures_of(session, since=since, numbers=numbers)
    ]
    attempts = [
        Attempt(r.to_e164, r.created_at, r.status.value, r.user_id)
        for r in await repository.requests_to(session, since=since, numbers=numbers)
    ]
    return open_items(missed, contacts, closures, attempts)


async def worklist_item(
    session: AsyncSession, settings: Settings, actor: Actor, call_id: int, now: datetime
) -> WorklistItem:
    """The open worklist item `call_id` belongs to (NotInWorklist if none the actor sees)."""
    for item in await worklist(session, settings, actor, now):
        if call_id in item.call_ids:
            return item
    raise NotInWorklist(call_id)


async def close_item(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    call_id: int,
    resolution: Resolution,
    now: datetime,
) -> WorklistItem:
    """Take a number's missed calls (up to the newest) off the worklist by hand."""
    item = await worklist_item(session, settings, actor, call_id, now)
    session.add(
        MissedCallClosure(
            caller_e164=item.e164,
            up_to=item.latest.started_at,
            call_id=item.latest.id,
            user_id=actor.user_id,
            resolution=resolution,
            at=now,
        )
    )
    await audit.record(
        session,
        user_id=actor.user_id,
        action="worklist.close",
        entity="call",
        entity_id=str(item.latest.id),
        details={
            "role": actor.role,
            "resolution": resolution.value,
            "number": item.e164,
            "calls": list(item.call_ids),
        },
    )
    await session.flush()
    return item
