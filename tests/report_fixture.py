"""A hand-made day of calls for the report tests: two queues, two agents, every edge case.

The day is 10 November 2026 in Moscow (UTC+3, no DST). Times below are local. Settings: the
service level T is 20 s (support: 30 s, set by a supervisor), short abandon under 5 s, wrap-up
capped at 300 s, a complaint and a call-back need notes, a sale needs a client card.

sales queue
  S1  09:00:00 queued, Anna answers 09:00:10 (wait 10), ends 09:05:10 (talk 300);
      outcome sale 09:06:10 (wrap 60), no client card → incomplete
  S2  09:10:00, Boris's phone rings unanswered first, then Boris answers 09:10:25 (wait 25),
      ends 09:12:25 (talk 120); complaint 09:12:45 (wrap 20), no notes → incomplete
  S3  09:20:00, caller hangs up 09:20:03 (wait 3: a short abandon)
  S4  09:30:00, caller hangs up 09:30:40 (wait 40: abandoned)
  S5  10:00:00, Anna answers 10:00:05 (wait 5), ends 10:00:35 (talk 30);
      wrong number 10:20:35 (wrap 1200 → capped 300) → complete; a short call
  S6  10:15:00, rings Boris unanswered, queue times out 10:16:00 (wait 60)
  S7  00:20:00, Boris answers 00:20:15 (wait 15), ends 00:30:15 (talk 600), no outcome
support queue (T = 30 s)
  P1  09:05:00, rings Boris unanswered, Anna answers 09:05:28 (wait 28), ends 09:09:28
      (talk 240); call back 09:10:28 (wrap 60) with notes → complete
  P2  09:40:00, Boris answers 09:40:35 (wait 35), ends 09:41:35 (talk 60);
      info set 09:41:30, before the end (wrap 0) → complete
  P3  10:05:00, caller hangs up 10:05:04 (wait 4: a short abandon)
  P4  10:30:00, rings Anna unanswered, caller hangs up 10:30:20 (wait 20: abandoned)
  P5  the day before: 23:50:00, Anna answers 23:50:10, ends 23:59:00 → not this day
no queue
  D1  11:00:00 a direct call Anna answers at once, ends 11:02:00 (talk 120);
      completed 11:02:30 (wrap 30) → complete
pauses
  Anna  lunch 12:00–12:30 in both queues at once (counts 1800 s once)
  Boris break 09:50–10:00 in sales (600 s); lunch from 23:50 the day before to 00:10 (600 s
        of it on this day)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.models import Role, User
from callcenter.calls import repository as calls_repository
from callcenter.calls.agents import extension_of
from callcenter.calls.models import Call, Outcome, PbxEvent
from callcenter.calls.state import CallStatus
from callcenter.events import Direction, EndReason, Party
from callcenter.queues.models import AgentPause, QueueSettings
from tests.factories import make_user

DAY = date(2026, 11, 10)
MSK = timedelta(hours=3)
ANNA_IF = "Local/101@agents"
BORIS_IF = "Local/102@agents"
PBX = "lab"


def at(hhmmss: str, day: date = DAY) -> datetime:
    """Moscow wall-clock time on `day` as UTC."""
    h, m, s = (int(p) for p in hhmmss.split(":"))
    return datetime(day.year, day.month, day.day, h, m, s, tzinfo=UTC) - MSK


PREVIOUS = DAY - timedelta(days=1)


def _call(
    key: str,
    *,
    queued: str | None,
    ended: str,
    answered: str | None = None,
    agent: str | None = None,
    user: User | None = None,
    queue: str | None = None,
    reason: EndReason,
    outcome: Outcome | None = None,
    outcome_at: str | None = None,
    notes: str = "",
    day: date = DAY,
) -> Call:
    start = at(queued or answered or ended, day)
    queued_at = at(queued, day) if queued else None
    answered_at = at(answered, day) if answered else None
    ended_at = at(ended, day)
    wait = None
    if queued_at is not None:
        wait = ((answered_at or ended_at) - queued_at).total_seconds()
    talk = (ended_at - answered_at).total_seconds() if answered_at else None
    return Call(
        pbx=PBX,
        call_key=key,
        direction=Direction.INBOUND,
        status=CallStatus.ENDED,
        caller_num="+79161112233",
        caller_name=key,
        queue=queue,
        agent=agent,
        agent_name=user.name if user else "",
        agent_user_id=user.id if user else None,
        ringing_agents=[],
        started_at=start,
        queued_at=queued_at,
        answered_at=answered_at,
        ended_at=ended_at,
        wait_seconds=wait,
        talk_seconds=talk,
        end_reason=reason,
        ended_by=Party.CALLER,
        outcome=outcome,
        outcome_by=user.id if user and outcome else None,
        outcome_at=at(outcome_at, day) if outcome_at else None,
        notes=notes,
    )


def _no_answer(key: str, interface: str, when: datetime) -> PbxEvent:
    return PbxEvent(
        pbx=PBX,
        event_id=f"{key}:rna:{interface}",
        call_key=key,
        kind="agent_stopped_ringing",
        at=when,
        payload={
            "kind": "agent_stopped_ringing",
            "pbx": PBX,
            "call_key": key,
            "event_id": f"{key}:rna:{interface}",
            "at": when.isoformat(),
            "agent": interface,
            "reason": "no_answer",
            "queue": None,
        },
    )


async def load_day(session: AsyncSession) -> tuple[User, User]:
    """Insert the day described above (committed); Anna and Boris."""
    anna = await make_user(session, login="anna", name="Anna", extensions=[extension_of(ANNA_IF)])
    boris = await make_user(
        session, login="boris", name="Boris", extensions=[extension_of(BORIS_IF)]
    )
    await make_user(session, login="sup", name="Sup", role=Role.SUPERVISOR)
    await session.flush()
    completed, abandoned, timeout = (
        EndReason.COMPLETED,
        EndReason.ABANDONED,
        EndReason.QUEUE_TIMEOUT,
    )
    sales, support = "sales", "support"
    session.add_all(
        [
            _call("S1", queued="09:00:00", answered="09:00:10", ended="09:05:10", agent=ANNA_IF,
                  user=anna, queue=sales, reason=completed, outcome=Outcome.SALE,
                  outcome_at="09:06:10"),
            _call("S2", queued="09:10:00", answered="09:10:25", ended="09:12:25", agent=BORIS_IF,
                  user=boris, queue=sales, reason=completed, outcome=Outcome.COMPLAINT,
                  outcome_at="09:12:45", notes="  \n"),
            _call("S3", queued="09:20:00", ended="09:20:03", queue=sales, reason=abandoned),
            _call("S4", queued="09:30:00", ended="09:30:40", queue=sales, reason=abandoned),
            _call("S5", queued="10:00:00", answered="10:00:05", ended="10:00:35", agent=ANNA_IF,
                  user=anna, queue=sales, reason=completed, outcome=Outcome.WRONG_NUMBER,
                  outcome_at="10:20:35"),
            _call("S6", queued="10:15:00", ended="10:16:00", queue=sales, reason=timeout),
            _call("S7", queued="00:20:00", answered="00:20:15", ended="00:30:15", agent=BORIS_IF,
                  user=boris, queue=sales, reason=completed),
            _call("P1", queued="09:05:00", answered="09:05:28", ended="09:09:28", agent=ANNA_IF,
                  user=anna, queue=support, reason=completed, outcome=Outcome.CALL_BACK,
                  outcome_at="09:10:28", notes="перезвонить завтра"),
            _call("P2", queued="09:40:00", answered="09:40:35", ended="09:41:35", agent=BORIS_IF,
                  user=boris, queue=support, reason=completed, outcome=Outcome.INFO,
                  outcome_at="09:41:30"),
            _call("P3", queued="10:05:00", ended="10:05:04", queue=support, reason=abandoned),
            _call("P4", queued="10:30:00", ended="10:30:20", queue=support, reason=abandoned),
            _call("P5", queued="23:50:00", answered="23:50:10", ended="23:59:00", agent=ANNA_IF,
                  user=anna, queue=support, reason=completed, day=PREVIOUS),
            _call("D1", queued=None, answered="11:00:00", ended="11:02:00", agent=ANNA_IF,
                  user=anna, reason=completed, outcome=Outcome.COMPLETED, outcome_at="11:02:30"),
        ]
    )  # fmt: skip
    session.add_all(
        [
            _no_answer("S2", BORIS_IF, at("09:10:15")),
            _no_answer("S6", BORIS_IF, at("10:15:20")),
            _no_answer("P1", BORIS_IF, at("09:05:15")),
            _no_answer("P4", ANNA_IF, at("10:30:15")),
        ]
    )
    session.add_all(
        [
            AgentPause(pbx=PBX, interface=ANNA_IF, agent_name="Anna", queue=q, reason="lunch",
                       started_at=at("12:00:00"), ended_at=at("12:30:00"))
            for q in (sales, support)
        ]
        + [
            AgentPause(pbx=PBX, interface=BORIS_IF, agent_name="Boris", queue=sales,
                       reason="break", started_at=at("09:50:00"), ended_at=at("10:00:00")),
            AgentPause(pbx=PBX, interface=BORIS_IF, agent_name="Boris", queue=sales,
                       reason="lunch", started_at=at("23:50:00", PREVIOUS),
                       ended_at=at("00:10:00")),
        ]
    )  # fmt: skip
    session.add(QueueSettings(queue=support, service_level_s=30))
    await calls_repository.rebuild_unanswered_rings(session)  # as ingest keeps them
    await session.commit()
    return anna, boris
