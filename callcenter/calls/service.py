"""Applying PBX call events to call records, and what browsers must be told afterwards.

`ingest` dedupes the events against the PBX event log, folds the new ones through the pure
state machine, finds the caller's card by phone, and writes the records. It does not commit
and does not publish: the edge that calls it commits first and publishes the returned
notifications only after the commit succeeded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter import jobs
from callcenter.calls import followups, repository
from callcenter.calls.agents import extension_of
from callcenter.calls.auto_clients import discard_auto_created_client
from callcenter.calls.models import Call, Outcome
from callcenter.calls.state import (
    CallState,
    CallStatus,
    Connected,
    Effect,
    Finished,
    RingStarted,
    RingStopped,
    apply,
)
from callcenter.clients import repository as clients_repository
from callcenter.clients import service as clients
from callcenter.clients.models import Client
from callcenter.clients.schemas import Owner, PhoneIn
from callcenter.events import AgentStoppedRinging, CallEvent, Direction, StopRingReason
from callcenter.phones import PhoneIdentity
from callcenter.realtime.streams import SUPERVISOR_CALLS_TOPIC, user_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Notification:
    topic: str
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    phones: PhoneIdentity
    company_numbers: frozenset[str] = frozenset()
    """E.164 numbers of the company itself: never looked up as clients, never create one."""
    auto_create_clients: bool = False


class AgentDirectory:
    """Which users each agent extension rings, kept in memory between batches.

    Read again when an unknown extension shows up (at most every `miss_refresh_s`) and in
    any case every `ttl_s`, so a new user gets pops within a moment and a reassigned
    extension moves within `ttl_s`.
    """

    def __init__(
        self,
        ttl_s: float = 30.0,
        miss_refresh_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._miss_refresh_s = miss_refresh_s
        self._clock = clock
        self._users: dict[str, list[int]] = {}
        self._loaded_at: float | None = None

    async def users(self, session: AsyncSession, extensions: Iterable[str]) -> dict[str, list[int]]:
        wanted = set(extensions)
        if not wanted:
            return {}
        now = self._clock()
        age = None if self._loaded_at is None else now - self._loaded_at
        missing = not wanted <= self._users.keys()
        if age is None or age > self._ttl_s or (missing and age > self._miss_refresh_s):
            self._users = await repository.all_agent_extensions(session)
            self._loaded_at = now
        return {e: self._users[e] for e in wanted if e in self._users}

    def cached(self, extension: str) -> list[int]:
        """The users `extension` rings by what is in memory (no query; empty when the
        directory was never read or is older than `ttl_s`)."""
        if self._loaded_at is None or self._clock() - self._loaded_at > self._ttl_s:
            return []
        return self._users.get(extension, [])


class CardCache:
    """Screen-pop cards of live calls, so ring-all legs and repeated rings cost no query.

    `unrung` collects the calls that started with a caller and have not rung anyone yet
    (a queue, an IVR): their cards can be made before the ring (`prefetch_cards`), so the
    pop waits for no card query then.
    """

    def __init__(self, size: int = 5000) -> None:
        self._size = size
        self._cards: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self.unrung: set[tuple[str, str]] = set()

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        return self._cards.get(key)

    def put(self, key: tuple[str, str], card: dict[str, Any]) -> None:
        self._cards[key] = card
        self._cards.move_to_end(key)
        while len(self._cards) > self._size:
            self._cards.popitem(last=False)

    def drop(self, key: tuple[str, str]) -> None:
        self._cards.pop(key, None)
        self.unrung.discard(key)

    def take_unrung(self) -> list[tuple[str, str]]:
        """The calls to make cards for ahead of their ring (and forget them)."""
        keys = [key for key in self.unrung if key not in self._cards]
        self.unrung.clear()
        return keys


RingClaims = dict[tuple[str, str], dict[str, deque["asyncio.Future[bool]"]]]
"""Rings popped ahead of their batch (`early_pops`): by call (pbx, call_key), by user topic,
in ring order; each future tells whether that pop went out (False: ingest pops it)."""


@dataclass(slots=True)
class IngestCaches:
    """What the live path keeps between batches (one per adapter; fresh ones are always safe)."""

    agents: AgentDirectory = field(default_factory=AgentDirectory)
    cards: CardCache = field(default_factory=CardCache)
    assigned_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    """Ids reserved for calls not stored yet, by (pbx, call_key): their pops carry them."""
    ring_claims: RingClaims = field(default_factory=dict)
    unwatched: set[tuple[str, str]] = field(default_factory=set)
    """Calls ingest found stored under another id than the one reserved: not popped early."""
    lane_owners: dict[str, tuple[float, list[Owner]]] = field(default_factory=dict)
    """Owners of caller numbers the early pops just read, by number (when read, monotonic):
    ingest takes them instead of reading them again, within `LANE_OWNERS_FRESH_S`."""


LANE_OWNERS_FRESH_S = 5.0


CallRow = Call | repository.CallRecord
"""A call as ingest's helpers read it: an ORM row, or ingest's own plain record."""


@dataclass(slots=True)
class _Touched:
    row: repository.CallRecord
    before: CallState | None
    state: CallState
    effects: list[Effect] = field(default_factory=list)


def state_of(row: CallRow) -> CallState:
    """The pure state held by a call record."""
    return CallState(
        pbx=row.pbx,
        call_key=row.call_key,
        direction=row.direction,
        caller_num=row.caller_num,
        caller_name=row.caller_name,
        callee_num=row.callee_num,
        status=row.status,
        queue=row.queue,
        agent=row.agent,
        agent_name=row.agent_name,
        ringing_agents=frozenset(row.ringing_agents or ()),
        started_at=row.started_at,
        queued_at=row.queued_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        ended_by=row.ended_by,
        recording=row.recording,
    )


def write_state(row: repository.CallRecord, state: CallState) -> None:
    """Put the state into the record (every field set here is in `CALL_STATE_COLUMNS`)."""
    row.direction = state.direction
    row.caller_num = state.caller_num
    row.caller_name = state.caller_name
    row.callee_num = state.callee_num
    row.status = state.status
    row.queue = state.queue
    row.agent = state.agent
    row.agent_name = state.agent_name
    row.ringing_agents = sorted(state.ringing_agents)
    if state.started_at is not None:
        row.started_at = state.started_at
    row.queued_at = state.queued_at
    row.answered_at = state.answered_at
    row.ended_at = state.ended_at
    row.end_reason = state.end_reason
    row.ended_by = state.ended_by
    row.recording = state.recording
    row.wait_seconds = state.wait_seconds
    row.talk_seconds = state.talk_seconds


def _caller_facts(row: repository.CallRecord) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in repository.CALL_CALLER_COLUMNS)


async def ingest(
    session: AsyncSession,
    policy: IngestPolicy,
    events: Sequence[CallEvent],
    caches: IngestCaches | None = None,
) -> list[Notification]:
    """Apply new events (events seen before change nothing); what to publish after commit."""
    caches = caches or IngestCaches()
    new_ids = await repository.insert_new_events(session, events)
    fresh = [e for e in events if e.event_id in new_ids]
    if not fresh:
        return []
    touched: dict[tuple[str, str], _Touched] = {}
    for pbx in {e.pbx for e in fresh}:
        keys = [e.call_key for e in fresh if e.pbx == pbx]
        for key, row in (await repository.calls_by_keys(session, pbx, keys)).items():
            state = state_of(row)
            touched[(pbx, key)] = _Touched(row, state, state)
            if caches.assigned_ids.pop((pbx, key), None) is not None:
                _unwatch(caches, (pbx, key), row)
    for event in fresh:
        entry = touched.get((event.pbx, event.call_key))
        state, effects = apply(entry.state if entry else None, event)
        if entry is None:
            row = repository.CallRecord(
                pbx=event.pbx,
                call_key=event.call_key,
                direction=state.direction,
                status=state.status,
                started_at=state.started_at or event.at,
                id=caches.assigned_ids.pop((event.pbx, event.call_key), None),
            )
            touched[(event.pbx, event.call_key)] = _Touched(row, None, state, list(effects))
        else:
            entry.state = state
            entry.effects.extend(effects)
    stored = [entry for entry in touched.values() if entry.before is not None]
    callers_before = {id(entry): _caller_facts(entry.row) for entry in stored}
    agents_before = {id(entry): entry.row.agent_user_id for entry in stored}
    to_identify: list[repository.CallRecord] = []
    for entry in touched.values():
        write_state(entry.row, entry.state)
        caller_changed = entry.before is None or entry.before.caller_num != entry.state.caller_num
        if caller_changed and entry.state.caller_num:
            to_identify.append(entry.row)
    owners = await _identify_callers(session, policy, to_identify, caches.lane_owners)
    await _attach_agent_users(session, caches.agents, [e.row for e in touched.values()])
    await repository.insert_calls(session, [e.row for e in touched.values() if e.before is None])
    await repository.update_call_states(
        session,
        [
            entry.row
            for entry in stored
            if entry.before != entry.state or agents_before[id(entry)] != entry.row.agent_user_id
        ],
    )
    await repository.update_call_callers(
        session,
        [entry.row for entry in stored if callers_before[id(entry)] != _caller_facts(entry.row)],
    )
    await _keep_unanswered_rings(session, fresh, touched)
    _send_followups(session, touched.values())
    return await _notifications(session, policy, caches, list(touched.values()), owners)


def _unwatch(caches: IngestCaches, key: tuple[str, str], row: repository.CallRecord) -> None:
    """A call popped ahead under a reserved id turned out to be stored already (its
    call_key came back): pop it the usual way from now on."""
    log.warning(
        "call %s/%s is stored as #%s already: its early pops carried another id",
        key[0],
        key[1],
        row.id,
    )
    caches.unwatched.add(key)


def _ring_facts(row: repository.CallRecord) -> repository.RingCallFacts:
    """What a call's unanswered rings copy of it: its end and the user who answered it."""
    answered_by = row.agent_user_id if row.answered_at is not None else None
    return repository.RingCallFacts(row.stored_id, row.ended_at, answered_by)


async def _keep_unanswered_rings(
    session: AsyncSession, fresh: Sequence[CallEvent], touched: dict[tuple[str, str], _Touched]
) -> None:
    """Store the rings that stopped unanswered at an agent (from the events, as the reports
    define a missed call). The call facts they copy are kept up to date by a trigger on
    `calls` (migration 0010)."""
    earliest: dict[tuple[int, str], tuple[repository.RingCallFacts, str, datetime]] = {}
    for event in fresh:
        if isinstance(event, AgentStoppedRinging) and event.reason is StopRingReason.NO_ANSWER:
            call = _ring_facts(touched[(event.pbx, event.call_key)].row)
            seen = earliest.get((call.call_id, event.agent))
            if seen is None or event.at < seen[2]:
                earliest[(call.call_id, event.agent)] = (call, event.agent, event.at)
    await repository.add_unanswered_rings(session, list(earliest.values()))


def _send_followups(session: AsyncSession, touched: Iterable[_Touched]) -> None:
    """The jobs of calls that just ended (analysis, wrong-number rules), sent after commit."""
    for entry in touched:
        if any(isinstance(effect, Finished) for effect in entry.effects):
            jobs.enqueue(session, followups.after_call(entry.row.stored_id, entry.row.recording))


async def _attach_agent_users(
    session: AsyncSession, agents: AgentDirectory, rows: list[repository.CallRecord]
) -> None:
    unresolved = [r for r in rows if r.agent is not None and r.agent_user_id is None]
    if not unresolved:
        return
    users = await agents.users(session, [extension_of(r.agent) for r in unresolved if r.agent])
    for row in unresolved:
        found = users.get(extension_of(row.agent or ""), [])
        if len(found) == 1:
            row.agent_user_id = found[0]


async def _identify_callers(
    session: AsyncSession,
    policy: IngestPolicy,
    rows: Sequence[CallRow],
    lane_owners: dict[str, tuple[float, list[Owner]]] | None = None,
) -> dict[str, list[Owner]]:
    """Find the callers' cards by number (or make them, with auto-create), as at ring time;
    the owners found, by number (one query for all the rows, but for the numbers the early
    pops read a moment ago: `lane_owners`, taken out of it)."""
    lookups = [(row, number) for row in rows if (number := caller_lookup(policy, row))]
    numbers = {number for _, number in lookups}
    found = _fresh_lane_owners(lane_owners, numbers) if lane_owners else {}
    found.update(await clients.owners_by_e164(session, numbers - found.keys()))
    for row, number in lookups:
        owners = found[number]
        match_owners(row, owners)
        if creates_client(policy, row, owners):
            client = Client(name=row.caller_name.strip() or number)
            session.add(client)
            await session.flush()
            await clients.add_phone(
                session, policy.phones, PhoneIn(raw=row.caller_num), client_id=client.id
            )
            row.client_id = client.id
            row.client_auto_created = True
            found.pop(number)  # the number has an owner now: looked up again for its card
    return found


def _fresh_lane_owners(
    lane_owners: dict[str, tuple[float, list[Owner]]], numbers: Iterable[str]
) -> dict[str, list[Owner]]:
    now = time.monotonic()
    found: dict[str, list[Owner]] = {}
    for number in numbers:
        read = lane_owners.pop(number, None)
        if read is not None and now - read[0] <= LANE_OWNERS_FRESH_S:
            found[number] = read[1]
    return found


def caller_lookup(policy: IngestPolicy, row: CallRow) -> str | None:
    """Set the row's E.164 numbers; the number its caller's card is looked up by (None:
    an unusable number, the company's own, or an internal call)."""
    number = policy.phones.e164(row.caller_num)
    row.callee_e164 = policy.phones.e164(row.callee_num) if row.callee_num else None
    if number is None:
        return None
    row.caller_e164 = number
    if number in policy.company_numbers or row.direction is Direction.INTERNAL:
        return None
    return number


def match_owners(row: CallRow, owners: Sequence[Owner]) -> None:
    """Link the call to the one client owning its number, or to the one organisation."""
    if len(owners) == 1:
        row.client_id = owners[0].client_id
        row.organization_id = owners[0].organization_id
    elif owners and len({o.organization_id for o in owners}) == 1:
        row.organization_id = owners[0].organization_id


def creates_client(policy: IngestPolicy, row: CallRow, owners: Sequence[Owner]) -> bool:
    """Whether ingest makes a client card for this caller (auto-create, unknown number)."""
    return not owners and policy.auto_create_clients and row.direction is Direction.INBOUND


async def identify_caller(session: AsyncSession, policy: IngestPolicy, row: Call) -> None:
    """Find the caller's card by number (or make it, with auto-create), as at ring time."""
    await _identify_callers(session, policy, [row])


async def _notifications(
    session: AsyncSession,
    policy: IngestPolicy,
    caches: IngestCaches,
    touched: list[_Touched],
    owners: Mapping[str, list[Owner]],
) -> list[Notification]:
    agents = {
        extension_of(agent)
        for entry in touched
        for effect in entry.effects
        for agent in _agents_of(effect)
    }
    users = await caches.agents.users(session, agents)
    targets = {
        id(effect): [
            uid for agent in _agents_of(effect) for uid in users.get(extension_of(agent), [])
        ]
        for entry in touched
        for effect in entry.effects
    }
    if caches.ring_claims:
        await _settle_claims(caches, touched, targets)
    ringing = [
        entry.row
        for entry in touched
        if any(isinstance(e, RingStarted) and targets[id(e)] for e in entry.effects)
    ]
    cards = await _cached_cards(session, policy, caches.cards, ringing, owners)
    out: list[Notification] = []
    for entry in touched:
        summary = call_summary(entry.row)
        card = cards.get((entry.row.pbx, entry.row.call_key))
        for effect in entry.effects:
            if not targets[id(effect)]:
                continue
            event_type, extra = _describe(effect, card)
            out.extend(
                Notification(user_topic(uid), event_type, {"call": summary, **extra})
                for uid in targets[id(effect)]
            )
        if entry.before is None or entry.before != entry.state:
            out.append(Notification(SUPERVISOR_CALLS_TOPIC, "call.updated", {"call": summary}))
        key = (entry.row.pbx, entry.row.call_key)
        if entry.state.status is CallStatus.ENDED:
            caches.cards.drop(key)
        elif card is None and _may_ring(entry.row):
            caches.cards.unrung.add(key)
        else:
            caches.cards.unrung.discard(key)
    return out


async def _settle_claims(
    caches: IngestCaches, touched: list[_Touched], targets: dict[int, list[int]]
) -> None:
    """Take out of `targets` the rings popped ahead of this batch (`early_pops`), and wait
    for every pop of these calls still in flight, so that nothing later about a call
    reaches a user before its pop does. The rings of a call popped under a wrong id
    (`_unwatch`) are published again, with the stored one."""
    claims = caches.ring_claims
    for entry in touched:
        key = (entry.row.pbx, entry.row.call_key)
        by_topic = claims.get(key)
        if by_topic is None:
            continue
        for effect in entry.effects:
            if isinstance(effect, RingStarted) and key not in caches.unwatched:
                kept = []
                for uid in targets[id(effect)]:
                    queue = by_topic.get(user_topic(uid))
                    claim: asyncio.Future[bool] | None = queue.popleft() if queue else None
                    if claim is not None and await _settled(claim):
                        continue
                    kept.append(uid)
                targets[id(effect)] = kept
        for queue in by_topic.values():
            for pending in list(queue):
                await _settled(pending)
        for topic in [topic for topic, queue in by_topic.items() if not queue]:
            del by_topic[topic]
        if not by_topic or key in caches.unwatched or entry.state.status is CallStatus.ENDED:
            claims.pop(key, None)


CLAIM_WAIT_S = 5.0
"""How long a batch waits for an early pop in flight before it pops the ring itself."""


async def _settled(claim: asyncio.Future[bool]) -> bool:
    """Whether the early pop went out (False also when it is still out after
    `CLAIM_WAIT_S`: a stuck pop must not hold the call records up)."""
    try:
        return await asyncio.wait_for(asyncio.shield(claim), CLAIM_WAIT_S)
    except TimeoutError:
        log.warning("an early pop is still out after %.0f s: the batch pops it", CLAIM_WAIT_S)
        return False


def _may_ring(row: CallRow) -> bool:
    """An inbound call from a number, not answered yet: an operator's phone may ring next."""
    return (
        row.direction is Direction.INBOUND
        and bool(row.caller_num)
        and row.answered_at is None
        and not row.ringing_agents
    )


async def prefetch_cards(
    session: AsyncSession, policy: IngestPolicy, cache: CardCache, keys: Sequence[tuple[str, str]]
) -> int:
    """Make the cards of `keys` (committed calls) now and keep them for their ring; how
    many were made."""
    rows: list[repository.CallRecord] = []
    for pbx in {pbx for pbx, _ in keys}:
        found = await repository.calls_by_keys(session, pbx, [k for p, k in keys if p == pbx])
        rows.extend(row for row in found.values() if row.status is not CallStatus.ENDED)
    for row, card in zip(rows, await caller_cards(session, policy, rows), strict=True):
        cache.put((row.pbx, row.call_key), card)
    return len(rows)


async def _cached_cards(
    session: AsyncSession,
    policy: IngestPolicy,
    cache: CardCache,
    rows: Sequence[CallRow],
    owners: Mapping[str, list[Owner]],
) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    missing: list[CallRow] = []
    for row in rows:
        key = (row.pbx, row.call_key)
        card = cache.get(key)
        if card is None:
            missing.append(row)
        else:
            found[key] = card
    made = await caller_cards(session, policy, missing, owners)
    for row, card in zip(missing, made, strict=True):
        key = (row.pbx, row.call_key)
        cache.put(key, card)
        found[key] = card
    return found


def _agents_of(effect: Effect) -> list[str]:
    agent = effect.agent
    return [agent] if agent else []


def _describe(effect: Effect, card: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    match effect:
        case RingStarted():
            return "call.ringing", {"card": card}
        case RingStopped():
            return "call.withdrawn", {"reason": effect.reason.value}
        case Connected():
            return "call.connected", {}
        case Finished():
            return "call.ended", {"outcomes": [o.value for o in Outcome]}


def call_summary(row: CallRow) -> dict[str, Any]:
    """What a browser needs to show a call; the same shape in snapshots and events."""
    return {
        "id": row.id,
        "pbx": row.pbx,
        "call_key": row.call_key,
        "direction": row.direction.value,
        "status": row.status.value,
        "caller_num": row.caller_num,
        "caller_name": row.caller_name,
        "caller_e164": row.caller_e164,
        "callee_num": row.callee_num,
        "queue": row.queue,
        "agent": row.agent,
        "agent_name": row.agent_name,
        "ringing_agents": list(row.ringing_agents or ()),
        "client_id": row.client_id,
        "organization_id": row.organization_id,
        "started_at": _iso(row.started_at),
        "answered_at": _iso(row.answered_at),
        "ended_at": _iso(row.ended_at),
        "wait_seconds": row.wait_seconds,
        "talk_seconds": row.talk_seconds,
        "end_reason": row.end_reason.value if row.end_reason else None,
        "ended_by": row.ended_by.value if row.ended_by else None,
        "outcome": row.outcome.value if row.outcome else None,
        "notes": row.notes,
        "recording": row.recording,
        "wrong_number_rule": row.wrong_number_rule,
        "wrong_number_reason": row.wrong_number_reason,
        "wrong_number_verdicts": row.wrong_number_verdicts,
        "auto_closed_at": _iso(row.auto_closed_at),
        "wrong_number_undone_at": _iso(row.wrong_number_undone_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def caller_card(session: AsyncSession, policy: IngestPolicy, row: CallRow) -> dict[str, Any]:
    """The screen-pop card: who calls, their organisation, last calls and open tasks."""
    return (await caller_cards(session, policy, [row]))[0]


async def caller_cards(
    session: AsyncSession,
    policy: IngestPolicy,
    rows: Sequence[CallRow],
    known_owners: Mapping[str, list[Owner]] | None = None,
) -> list[dict[str, Any]]:
    """`caller_card` of each row, in a few queries whatever the number of rows (owners
    already looked up in this transaction are passed in `known_owners`)."""
    if not rows:
        return []
    known = dict(known_owners or {})
    numbers = {
        row.caller_e164
        for row in rows
        if row.caller_e164 and row.caller_e164 not in policy.company_numbers
    }
    known.update(await clients.owners_by_e164(session, numbers - known.keys()))
    owners = {id(row): known[row.caller_e164] if row.caller_e164 in numbers else [] for row in rows}
    subjects = {
        id(row): repository.CardSubject(
            row.client_id, row.organization_id, row.caller_e164, exclude_call_id=row.id
        )
        for row in rows
    }
    recent, tasks = await repository.card_lists(session, list(subjects.values()))
    companies = {id(row): _company_of(owners[id(row)]) for row in rows}
    contacts = await clients_repository.contacts_of_organizations(
        session, [org for org in companies.values() if org is not None]
    )
    return [
        _card(
            policy,
            row,
            owners[id(row)],
            recent.get(subjects[id(row)], []),
            tasks.get((row.client_id, row.organization_id), []),
            contacts.get(companies[id(row)] or 0, []),
        )
        for row in rows
    ]


def _company_of(owners: Sequence[Owner]) -> int | None:
    """The organisation whose own (company) number rings, when it is one organisation's:
    the operator then picks who is calling from its persons."""
    companies = {o.organization_id for o in owners if o.client_id is None and o.organization_id}
    return companies.pop() if len(companies) == 1 else None


def _card(
    policy: IngestPolicy,
    row: CallRow,
    owners: Sequence[Owner],
    recent: Sequence[repository.PastCall],
    tasks: Sequence[repository.OpenTask],
    contacts: Sequence[Client],
) -> dict[str, Any]:
    return {
        "number": row.caller_num,
        "e164": row.caller_e164,
        "display": policy.phones.display(row.caller_e164) if row.caller_e164 else row.caller_num,
        "caller_name": row.caller_name,
        "known": bool(owners),
        "owners": [o.model_dump() for o in owners],
        "last_calls": [
            {
                "id": c.id,
                "started_at": _iso(c.started_at),
                "status": c.status.value,
                "end_reason": c.end_reason.value if c.end_reason else None,
                "agent_name": c.agent_name,
                "outcome": c.outcome.value if c.outcome else None,
                "notes": c.notes,
            }
            for c in recent
        ],
        "open_tasks": [{"id": t.id, "title": t.title, "due_at": _iso(t.due_at)} for t in tasks],
        "contacts": [{"client_id": p.id, "name": p.name, "position": p.position} for p in contacts],
    }


class CallNotFound(LookupError):
    pass


class NotYourCall(PermissionError):
    pass


async def editable_call(
    session: AsyncSession, call_id: int, *, user_id: int, may_edit_any: bool
) -> Call:
    """The call, if this user took it (by user or by one of their phones) or may edit any."""
    row = await session.get(Call, call_id)
    if row is None:
        raise CallNotFound(call_id)
    if not may_edit_any and row.agent_user_id != user_id:
        extensions = set(await repository.extensions_of_user(session, user_id))
        if row.agent is None or extension_of(row.agent) not in extensions:
            raise NotYourCall(call_id)
    return row


async def set_outcome(
    session: AsyncSession,
    *,
    call_id: int,
    user_id: int,
    may_edit_any: bool,
    outcome: Outcome | None,
    notes: str | None,
    now: datetime,
) -> Call:
    """Record the operator's outcome and notes; operators may only touch their own calls."""
    row = await editable_call(session, call_id, user_id=user_id, may_edit_any=may_edit_any)
    if outcome is not None:
        row.outcome = outcome
        row.outcome_by = user_id
        row.outcome_at = now
    if notes is not None:
        row.notes = notes
    if outcome is Outcome.WRONG_NUMBER:
        await discard_auto_created_client(session, row, user_id=user_id, now=now)
    await session.flush()
    return row


async def pending_for_user(
    session: AsyncSession, policy: IngestPolicy, user_id: int
) -> list[dict[str, Any]]:
    """The user's live calls for a snapshot: ringing at or answered by one of their phones."""
    extensions = set(await repository.extensions_of_user(session, user_id))
    if not extensions:
        return []
    live: list[tuple[Call, str]] = []
    for row in await repository.open_calls(session):
        ringing = any(extension_of(a) in extensions for a in row.ringing_agents or ())
        mine = row.agent is not None and extension_of(row.agent) in extensions
        state = "connected" if row.status is CallStatus.ANSWERED and mine else None
        if state is None and ringing:
            state = "ringing"
        if state is not None:
            live.append((row, state))
    cards = await caller_cards(session, policy, [row for row, _ in live])
    return [
        {"call": call_summary(row), "state": state, "card": card}
        for (row, state), card in zip(live, cards, strict=True)
    ]


async def open_call_states(session: AsyncSession, pbx: str) -> list[CallState]:
    """Calls of `pbx` not yet ended, for reconciliation after the PBX link comes back."""
    return [state_of(row) for row in await repository.open_calls(session, pbx)]
