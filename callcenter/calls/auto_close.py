"""Wrong numbers closed by the rules, and undone by one click. Callers commit.

`apply_wrong_number_rules` gathers the facts of an ended call (the record, the caller's
speech in its recording when analysed, earlier wrong-number marks of the same number), asks
the pure rules (`callcenter.calls.wrong_number`) and, when one fires, gives the call the
outcome "wrong number" with the reason. It never touches a call a person already gave an
outcome or notes, nor one whose auto-close a person undid.

A wrong number is not a client: a card the call made on the fly goes with the wrong number
(`callcenter.calls.auto_clients`); an undo looks the caller up again, as at ring time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter import audit
from callcenter.calls import repository
from callcenter.calls.auto_clients import discard_auto_created_client
from callcenter.calls.models import Call, Outcome
from callcenter.calls.service import IngestPolicy, editable_call, identify_caller
from callcenter.calls.service import set_outcome as service_set_outcome
from callcenter.calls.state import CallStatus
from callcenter.calls.wrong_number import (
    CallFacts,
    RuleConfig,
    Verdict,
    evaluate,
    parse_patterns,
    summary,
)
from callcenter.config import Settings
from callcenter.events import Direction, Party
from callcenter.phones import PhoneIdentity


class Skipped(StrEnum):
    """Why the rules did not judge a call."""

    NOT_FOUND = "not_found"
    NOT_ENDED = "not_ended"
    HAS_OUTCOME = "has_outcome"
    HAS_NOTES = "has_notes"
    UNDONE = "undone"


@dataclass(frozen=True, slots=True)
class RulesResult:
    call: Call | None
    verdicts: Sequence[Verdict] = ()
    closed: bool = False
    skipped: Skipped | None = None


def rule_config(settings: Settings, phones: PhoneIdentity) -> RuleConfig:
    """The rules as the settings configure them (a bad list entry raises ValueError)."""
    return RuleConfig(
        enabled=tuple(settings.wrong_number_rules),
        short_answer_s=settings.wrong_number_short_answer_s,
        caller_hangup_s=settings.wrong_number_caller_hangup_s,
        min_caller_speech_s=settings.wrong_number_min_caller_speech_s,
        known_max_talk_s=settings.wrong_number_known_max_talk_s,
        patterns=parse_patterns(settings.wrong_number_patterns, phones.e164),
    )


def _skip_reason(row: Call) -> Skipped | None:
    if row.status is not CallStatus.ENDED:
        return Skipped.NOT_ENDED
    if row.wrong_number_undone_at is not None:
        return Skipped.UNDONE
    if row.outcome is not None:
        return Skipped.HAS_OUTCOME
    if row.notes.strip():
        return Skipped.HAS_NOTES
    return None


async def facts_of(
    session: AsyncSession,
    row: Call,
    *,
    caller_speech_s: float | None,
    known_lookback: timedelta,
) -> CallFacts:
    """What the rules may know about `row`."""
    earlier = 0
    if row.caller_e164 is not None:
        earlier = await repository.count_wrong_number_marks(
            session,
            row.caller_e164,
            since=row.started_at - known_lookback,
            before=row.started_at,
            exclude_call_id=row.id,
        )
    return CallFacts(
        inbound=row.direction is Direction.INBOUND,
        answered=row.answered_at is not None,
        talk_s=row.talk_seconds,
        ended_by_caller=row.ended_by is Party.CALLER,
        has_notes=bool(row.notes.strip()),
        caller_e164=row.caller_e164,
        caller_num=row.caller_num,
        caller_speech_s=caller_speech_s,
        earlier_wrong_numbers=earlier,
    )


async def apply_wrong_number_rules(
    session: AsyncSession,
    config: RuleConfig,
    call_id: int,
    *,
    caller_speech_s: float | None,
    known_lookback: timedelta,
    now: datetime,
) -> RulesResult:
    """Judge an ended call; close it as a wrong number if a rule fires (audited)."""
    row = await session.get(Call, call_id)
    if row is None:
        return RulesResult(None, skipped=Skipped.NOT_FOUND)
    skipped = _skip_reason(row)
    if skipped is not None:
        return RulesResult(row, skipped=skipped)
    facts = await facts_of(
        session, row, caller_speech_s=caller_speech_s, known_lookback=known_lookback
    )
    verdicts = evaluate(facts, config)
    if not verdicts:
        return RulesResult(row)
    reason = summary(verdicts)
    closed = await repository.close_as_wrong_number(
        session,
        call_id,
        rule=verdicts[0].rule.value,
        reason=reason,
        verdicts=[v.as_dict() for v in verdicts],
        now=now,
    )
    await session.refresh(row)
    if not closed:
        return RulesResult(row, verdicts)
    client = await discard_auto_created_client(session, row, user_id=None, now=now)
    await audit.record(
        session,
        user_id=None,
        action="call.auto_closed",
        entity="call",
        entity_id=str(row.id),
        details={
            "rule": verdicts[0].rule.value,
            "reason": reason,
            "verdicts": [v.as_dict() for v in verdicts],
            "client": client,
        },
        at=now,
    )
    return RulesResult(row, verdicts, closed=True)


class NothingToUndo(ValueError):
    """The call is not (or no longer) closed by the rules."""


async def undo_auto_close(
    session: AsyncSession, row: Call, *, policy: IngestPolicy, user_id: int, now: datetime
) -> Call:
    """Reopen a call the rules closed, for good: the rules never close it again (audited).

    The caller's card is looked up again as at ring time, so a card made on the fly and
    taken back with the wrong number is made again (with `auto_create_clients`).
    """
    if not await repository.undo_auto_close(session, row.id, now=now):
        raise NothingToUndo(row.id)
    await session.refresh(row)
    if row.client_id is None:
        await identify_caller(session, policy, row)
    await audit.record(
        session,
        user_id=user_id,
        action="call.auto_close_undone",
        entity="call",
        entity_id=str(row.id),
        details={"rule": row.wrong_number_rule, "reason": row.wrong_number_reason},
        at=now,
    )
    await session.flush()
    return row


async def set_outcome(
    session: AsyncSession,
    *,
    policy: IngestPolicy,
    call_id: int,
    user_id: int,
    may_edit_any: bool,
    outcome: Outcome | None,
    notes: str | None,
    now: datetime,
) -> Call:
    """The operator's outcome and notes. Choosing another outcome for a call the rules closed
    undoes the auto-close first: the operator knows better, the rules leave the call alone
    from then on, and a card taken back with the wrong number is made again."""
    row = await editable_call(session, call_id, user_id=user_id, may_edit_any=may_edit_any)
    overrides_rules = (
        outcome is not None
        and outcome is not Outcome.WRONG_NUMBER
        and row.auto_closed_at is not None
        and row.outcome_by is None
        and row.wrong_number_undone_at is None
    )
    if overrides_rules:
        await undo_auto_close(session, row, policy=policy, user_id=user_id, now=now)
    return await service_set_outcome(
        session,
        call_id=call_id,
        user_id=user_id,
        may_edit_any=may_edit_any,
        outcome=outcome,
        notes=notes,
        now=now,
    )
