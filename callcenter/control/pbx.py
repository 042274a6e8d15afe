"""What the domain asks of a PBX, and what it hears back (the seam adapters implement).

`callcenter` never imports an adapter: the composition root puts an implementation of
`PbxControl` on the app context (`ctx.pbx_control`) when this process runs one (the AMI
adapter today; a remote control that reaches an adapter process through Redis later).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class ControlStatus(StrEnum):
    OK = "ok"
    """The PBX carried the action out (for an originate: accepted it; the phone rings)."""
    REFUSED = "refused"
    """The PBX answered with an error (`message` says why); nothing happened."""
    UNKNOWN = "unknown"
    """Sent, but the answer was lost: it may or may not have happened. Never re-sent."""
    NOT_CONNECTED = "not_connected"
    """No link to the PBX right now: nothing was sent."""


@dataclass(frozen=True, slots=True)
class ControlResult:
    status: ControlStatus
    message: str = ""
    """The PBX's own message (refused), or why the outcome is unknown / nothing was sent."""
    action_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status is ControlStatus.OK


class SpyMode(StrEnum):
    LISTEN = "listen"
    """The supervisor hears both sides; nobody hears the supervisor."""
    WHISPER = "whisper"
    """The supervisor hears both sides and talks to the agent only."""
    BARGE = "barge"
    """The supervisor hears and talks to both sides."""


@dataclass(frozen=True, slots=True)
class MemberState:
    """One queue membership of an interface, as the PBX reports it now."""

    queue: str
    interface: str
    paused: bool
    reason: str


@dataclass(frozen=True, slots=True)
class MemberStates:
    """The answer to a status question: the memberships, or why there are none to show."""

    status: ControlStatus
    members: tuple[MemberState, ...] = ()
    message: str = ""


class PbxControl(Protocol):
    """Actions on one PBX. Every method answers with a result instead of raising for PBX
    trouble (refused, no answer, no link); invalid arguments raise `ValueError`."""

    async def pause(
        self, interface: str, queue: str | None, paused: bool, reason: str
    ) -> ControlResult:
        """Pause (or unpause) a queue member in `queue`, or in every queue when None."""
        ...

    async def add_member(
        self, queue: str, interface: str, member_name: str, penalty: int, paused: bool
    ) -> ControlResult: ...

    async def remove_member(self, queue: str, interface: str) -> ControlResult: ...

    async def spy(
        self, supervisor_extension: str, agent_extension: str, mode: SpyMode, *, request_id: str
    ) -> ControlResult:
        """Ring the supervisor's phone and, once answered, listen/whisper/barge on the call
        of the agent's phone."""
        ...

    async def originate_call(
        self,
        from_extension: str,
        dial_string: str,
        caller_id: str,
        *,
        request_id: str,
        variables: Mapping[str, str],
    ) -> ControlResult:
        """Ring `from_extension`'s phone and, once answered, dial `dial_string` out. Sent at
        most once per `request_id`."""
        ...

    async def member_states(self, interface: str) -> MemberStates:
        """Every queue membership of `interface` with its pause state, asked of the PBX."""
        ...
