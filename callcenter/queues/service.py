"""Decisions around the live queues that need the database: what a restart seeds the board
with, how pause intervals are kept, and per-queue settings. Never commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import Outcome
from callcenter.calls.service import open_call_states
from callcenter.calls.state import CallState
from callcenter.kpi import CallFact, fact_of
from callcenter.queues import repository
from callcenter.queues.live import PauseChange, QueueTargets
from callcenter.queues.models import AgentPause, QueueSettings
from callcenter.queues.schemas import QueueSettingsIn


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where local `day` begins and the next one begins."""
    start = datetime.combine(day, time(0), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end


@dataclass(frozen=True, slots=True)
class SeedInputs:
    open_calls: list[CallState]
    facts: list[CallFact]


async def seed_inputs(session: AsyncSession, pbx: str, day: date, tz: ZoneInfo) -> SeedInputs:
    """What the records say about `pbx` for a board started on `day`: open calls, and the
    facts of the queue calls that ended that day."""
    start, end = day_bounds(day, tz)
    rows = await repository.ended_queue_calls(session, pbx, start, end)
    facts = [fact for row in rows if (fact := fact_of(row)) is not None]
    return SeedInputs(await open_call_states(session, pbx), facts)


async def changed_outcomes(
    session: AsyncSession, pbx: str, day: date, tz: ZoneInfo, since: datetime
) -> dict[str, Outcome | None]:
    """Outcomes of the day's queue calls whose records changed since `since`."""
    start, _ = day_bounds(day, tz)
    found = await repository.queue_call_outcomes(
        session, pbx, ended_since=start, changed_since=since
    )
    return dict(found)


async def record_pauses(
    session: AsyncSession,
    pbx: str,
    changes: Sequence[PauseChange],
    *,
    complete_at: datetime | None = None,
) -> None:
    """Keep `agent_pauses` in line with the pause changes (applying one twice changes
    nothing). `complete_at`: the changes list every paused member (a queue snapshot), so
    pauses still open for anyone else ended then."""
    open_rows = {(r.queue, r.interface): r for r in await repository.open_pauses(session, pbx)}
    for change in changes:
        key = (change.queue, change.interface)
        row = open_rows.get(key)
        if change.paused and row is not None and row.reason == change.reason:
            continue
        if row is not None:
            row.ended_at = max(change.at, row.started_at)
            del open_rows[key]
        if change.paused:
            added = AgentPause(
                pbx=pbx,
                interface=change.interface,
                agent_name=change.name,
                queue=change.queue,
                reason=change.reason,
                started_at=change.at,
            )
            session.add(added)
            open_rows[key] = added
    if complete_at is not None:
        listed = {(c.queue, c.interface) for c in changes if c.paused}
        for key, row in open_rows.items():
            if key not in listed:
                row.ended_at = max(complete_at, row.started_at)
    await session.flush()


def targets_of(row: QueueSettings | None) -> QueueTargets:
    if row is None:
        return QueueTargets()
    return QueueTargets(
        service_level_s=row.service_level_s,
        alarm_longest_wait_s=row.alarm_longest_wait_s,
        alarm_service_level_pct=row.alarm_service_level_pct,
        alarm_no_agent=row.alarm_no_agent,
    )


async def all_targets(session: AsyncSession) -> dict[str, QueueTargets]:
    return {row.queue: targets_of(row) for row in await repository.all_settings(session)}


async def save_settings(
    session: AsyncSession, queue: str, body: QueueSettingsIn, *, user_id: int, now: datetime
) -> QueueSettings:
    """Create or replace the settings of `queue`."""
    row = await session.get(QueueSettings, queue)
    if row is None:
        row = QueueSettings(queue=queue)
        session.add(row)
    row.service_level_s = body.service_level_s
    row.alarm_longest_wait_s = body.alarm_longest_wait_s
    row.alarm_service_level_pct = body.alarm_service_level_pct
    row.alarm_no_agent = body.alarm_no_agent
    row.updated_at = now
    row.updated_by = user_id
    await session.flush()
    return row


def settings_view(queue: str, row: QueueSettings | None) -> Mapping[str, object]:
    """The settings of `queue` as the API shows them (defaults when never set)."""
    targets = targets_of(row)
    return {
        "queue": queue,
        "service_level_s": targets.service_level_s,
        "alarm_longest_wait_s": targets.alarm_longest_wait_s,
        "alarm_service_level_pct": targets.alarm_service_level_pct,
        "alarm_no_agent": targets.alarm_no_agent,
        "updated_at": row.updated_at if row is not None else None,
        "updated_by": row.updated_by if row is not None else None,
    }
