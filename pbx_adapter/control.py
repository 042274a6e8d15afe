"""`PbxControl` on Asterisk's AMI: the exact actions each supervisor and operator button sends.

| domain call      | AMI action                                                             |
|------------------|------------------------------------------------------------------------|
| `pause`          | `QueuePause` Interface, Queue (when one), Paused true/false, Reason    |
| `add_member`     | `QueueAdd` Queue, Interface, MemberName, Penalty, Paused               |
| `remove_member`  | `QueueRemove` Queue, Interface                                         |
| `spy`            | `Originate` Channel=<supervisor's phone>, Application=ChanSpy,         |
|                  | Data=`<agent's phone>-,<options>`, CallerID, Timeout, Async, Variable  |
| `originate_call` | `Originate` Channel=<operator's phone>, Context=<dial-out context>,    |
|                  | Exten=<dial string>, Priority=1, CallerID, Timeout, Async, Variable    |
| `member_states`  | `QueueStatus` Member=<interface>                                       |

Phones are named from `DeviceNaming.channel_template` (`PJSIP/{ext}` on most PBXs,
`Local/{ext}@agents` in the lab): the same name with a `-` is the prefix of every channel of
that phone (`PJSIP/101-0000002a`), which is what ChanSpy is pointed at, so `101` never
matches `1010`.

ChanSpy options (app_chanspy): `q` no beep and no channel name spoken to the supervisor,
`b` only channels in a bridged call (not one still ringing), `E` hang up the supervisor's
phone when the spied-on channel hangs up, `S` stop at once when there is nothing to spy on;
plus `w` (whisper: talk to the agent only) or `B` (barge: talk to both sides).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from callcenter.control.pbx import (
    ControlResult,
    ControlStatus,
    MemberState,
    MemberStates,
    SpyMode,
)
from pbx_adapter.ami import (
    AmiClient,
    AmiNoAnswer,
    AmiNotConnected,
    OriginateOutcome,
    OriginateResult,
)
from pbx_adapter.frames import Frame

SPY_OPTIONS: Mapping[SpyMode, str] = {
    SpyMode.LISTEN: "qbES",
    SpyMode.WHISPER: "qbESw",
    SpyMode.BARGE: "qbESB",
}

_EXTENSION = re.compile(r"^[A-Za-z0-9_.*#+-]{1,64}$")
"""What may be put into a channel name or ChanSpy's prefix (no `,`, `/`, `@`, spaces)."""
_DIAL_STRING = re.compile(r"^\+?[0-9*#]{1,32}$")
_ORIGINATED_MARK = {"CRM_ORIGINATED": "1"}
"""Set on every channel the CRM originates, so the dialplan and reports can tell them apart."""


@dataclass(frozen=True, slots=True)
class DeviceNaming:
    """How a user's extension becomes the channel that rings their phone, and where a
    click-to-call dials out (from settings, through the composition root)."""

    channel_template: str = "Local/{ext}@agents"
    dialout_context: str = "from-internal"
    ring_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if "{ext}" not in self.channel_template:
            raise ValueError(f"channel template {self.channel_template!r} has no {{ext}}")
        if not self.dialout_context or any(c in self.dialout_context for c in ",\r\n "):
            raise ValueError(f"invalid dial-out context {self.dialout_context!r}")
        if not self.ring_timeout_s > 0:
            raise ValueError("ring_timeout_s must be positive")

    def channel(self, extension: str) -> str:
        """`101` → `PJSIP/101`: the channel an originate rings first."""
        if not _EXTENSION.fullmatch(extension):
            raise ValueError(f"not an extension: {extension!r}")
        return self.channel_template.replace("{ext}", extension)

    def spy_prefix(self, extension: str) -> str:
        """`101` → `PJSIP/101-`: every channel of that phone, and no other phone's."""
        return f"{self.channel(extension)}-"


def spy_data(prefix: str, mode: SpyMode) -> str:
    """ChanSpy's arguments: `<channel prefix>,<options>`."""
    return f"{prefix},{SPY_OPTIONS[mode]}"


class AmiPbxControl:
    """`PbxControl` over one `AmiClient` (the adapter's own link: actions share its login)."""

    def __init__(self, client: AmiClient, naming: DeviceNaming | None = None) -> None:
        self.client = client
        self.naming = naming or DeviceNaming()

    async def pause(
        self, interface: str, queue: str | None, paused: bool, reason: str
    ) -> ControlResult:
        return await _single(
            lambda: self.client.queue_pause(interface, paused, queue=queue, reason=reason)
        )

    async def add_member(
        self, queue: str, interface: str, member_name: str, penalty: int, paused: bool
    ) -> ControlResult:
        return await _single(
            lambda: self.client.queue_add(
                queue, interface, member_name=member_name, penalty=penalty, paused=paused
            )
        )

    async def remove_member(self, queue: str, interface: str) -> ControlResult:
        return await _single(lambda: self.client.queue_remove(queue, interface))

    async def spy(
        self, supervisor_extension: str, agent_extension: str, mode: SpyMode, *, request_id: str
    ) -> ControlResult:
        channel = self.naming.channel(supervisor_extension)
        data = spy_data(self.naming.spy_prefix(agent_extension), mode)
        return await self._originate(
            lambda: self.client.originate(
                channel,
                application="ChanSpy",
                data=data,
                caller_id=f'"{mode.value} {agent_extension}" <{agent_extension}>',
                ring_timeout_s=self.naming.ring_timeout_s,
                variables={**_ORIGINATED_MARK, "CRM_SPY": mode.value},
                action_id=request_id,
            )
        )

    async def originate_call(
        self,
        from_extension: str,
        dial_string: str,
        caller_id: str,
        *,
        request_id: str,
        variables: Mapping[str, str],
    ) -> ControlResult:
        if not _DIAL_STRING.fullmatch(dial_string):
            raise ValueError(f"not a dial string: {dial_string!r}")
        channel = self.naming.channel(from_extension)
        return await self._originate(
            lambda: self.client.originate(
                channel,
                context=self.naming.dialout_context,
                exten=dial_string,
                priority="1",
                caller_id=caller_id,
                ring_timeout_s=self.naming.ring_timeout_s,
                variables={**_ORIGINATED_MARK, **variables},
                action_id=request_id,
            )
        )

    async def member_states(self, interface: str) -> MemberStates:
        try:
            frames = await self.client.send_list_action(
                {"Action": "QueueStatus", "Member": interface}
            )
        except AmiNotConnected as exc:
            return MemberStates(ControlStatus.NOT_CONNECTED, message=str(exc))
        except AmiNoAnswer as exc:
            return MemberStates(ControlStatus.UNKNOWN, message=exc.reason)
        first = frames[0] if frames else {}
        if first.get("Response", "Success") != "Success":
            return MemberStates(ControlStatus.REFUSED, message=first.get("Message", ""))
        members = tuple(
            MemberState(
                queue=frame.get("Queue", ""),
                interface=interface,
                paused=frame.get("Paused", "0") == "1",
                reason=frame.get("PausedReason", ""),
            )
            for frame in frames
            if frame.get("Event") == "QueueMember" and frame.get("Location") == interface
        )
        return MemberStates(ControlStatus.OK, members)

    async def _originate(self, send: Callable[[], Awaitable[OriginateResult]]) -> ControlResult:
        try:
            result = await send()
        except AmiNotConnected as exc:
            return ControlResult(ControlStatus.NOT_CONNECTED, str(exc))
        status = {
            OriginateOutcome.ACCEPTED: ControlStatus.OK,
            OriginateOutcome.REJECTED: ControlStatus.REFUSED,
            OriginateOutcome.UNKNOWN: ControlStatus.UNKNOWN,
        }[result.outcome]
        return ControlResult(status, result.message, result.action_id)


async def _single(send: Callable[[], Awaitable[Frame]]) -> ControlResult:
    """One single-answer action: Success → ok, Error → refused with Asterisk's message."""
    try:
        response = await send()
    except AmiNotConnected as exc:
        return ControlResult(ControlStatus.NOT_CONNECTED, str(exc))
    except AmiNoAnswer as exc:
        return ControlResult(ControlStatus.UNKNOWN, exc.reason, exc.action_id)
    action_id = response.get("ActionID", "")
    message = response.get("Message", "")
    if response.get("Response") == "Success":
        return ControlResult(ControlStatus.OK, message, action_id)
    return ControlResult(ControlStatus.REFUSED, message or "refused", action_id)
