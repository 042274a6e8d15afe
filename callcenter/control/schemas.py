"""API shapes of call control and the missed-calls worklist."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from callcenter.control.models import DialStatus, Resolution
from callcenter.control.pbx import SpyMode
from callcenter.events import EndReason

EXTENSION_PATTERN = r"^[A-Za-z0-9_.*#+-]{1,64}$"
Extension = Annotated[str, Field(pattern=EXTENSION_PATTERN)]
QueueName = Annotated[str, Field(pattern=r"^[\w.@+-]{1,64}$")]
INTERFACE_PATTERN = r"^[\w./@:+*#-]{1,128}$"
Interface = Annotated[str, Field(pattern=INTERFACE_PATTERN)]
"""A queue member interface as the PBX names it (`PJSIP/101`, `Local/101@agents`)."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PauseIn(_In):
    reason: str = Field(min_length=1, max_length=32)
    """One of the configured pause reason codes (`GET /api/control/me` lists them)."""
    text: str = Field(default="", max_length=255)
    """Free text, with the "other" reason only (its limit is the `pause_reason_max_length`)."""
    queue: QueueName | None = None
    """Pause in this queue only; every queue of the agent when absent."""
    interface: Interface | None = None
    """The member interface when it is not the settings' template for the extension."""


class UnpauseIn(_In):
    queue: QueueName | None = None
    interface: Interface | None = None


class MemberIn(_In):
    penalty: int = Field(default=0, ge=0, le=1000)
    member_name: str = Field(default="", max_length=128, pattern=r"^[^\r\n\x00]*$")
    """Shown in queue reports; the name of the user with this extension when empty."""
    paused: bool = False
    interface: Interface | None = None


class SpyIn(_In):
    mode: SpyMode
    from_extension: Extension | None = None
    """The supervisor's phone that rings (their first extension when absent)."""


class DialIn(_In):
    number: str = Field(min_length=1, max_length=64)
    """In any format people write numbers (`8 (916) 123-45-67`, `+7916...`, a local number)."""
    client_id: int | None = None
    """The client card the click came from (its name shows on the operator's phone)."""
    from_extension: Extension | None = None
    """The phone that rings first (the caller's first extension when absent)."""


class CloseIn(_In):
    resolution: Resolution = Resolution.DONE


class ActionResultOut(BaseModel):
    extension: str
    interface: str
    status: str
    """ok, refused, unknown or not_connected: what the PBX said."""
    message: str


class PauseOut(BaseModel):
    paused: bool
    reason: str
    """The Reason sent to the PBX (a code, or the free text)."""
    queue: str | None
    results: list[ActionResultOut]


class SpyOut(BaseModel):
    mode: SpyMode
    extension: str
    from_extension: str
    call_id: int
    status: str
    message: str


class DialOut(BaseModel):
    request_id: int
    status: DialStatus
    """accepted: the operator's phone rings; unknown: the PBX's answer was lost (it may
    ring; never re-sent)."""
    duplicate: bool
    """True when this click repeated an earlier one (the same key, or the same number within
    the dedupe window): nothing new was dialled; the earlier request is shown."""
    from_extension: str
    e164: str
    display: str
    dial_string: str
    message: str
    missed_call_id: int | None = None


class MemberStateOut(BaseModel):
    queue: str
    interface: str
    paused: bool
    reason: str


class ControlMeOut(BaseModel):
    extensions: list[str]
    pbx: str
    """ok, not_connected, unknown, refused, or unavailable (no PBX control in this process)."""
    paused: bool | None
    """Paused in at least one queue; None when the PBX could not be asked or there is no
    queue membership."""
    reason: str
    members: list[MemberStateOut]
    pause_reasons: list[str]
    reason_max_length: int
    other_reason: str


class WorklistItemOut(BaseModel):
    call_id: int
    """The newest missed call from this number: the item's id for call-back and close."""
    call_ids: list[int]
    e164: str
    display: str
    caller_name: str
    client_id: int | None
    client_name: str | None
    queue: str
    end_reason: EndReason
    started_at: datetime
    first_missed_at: datetime
    missed_count: int
    wait_seconds: float | None
    attempts: int
    last_attempt_at: datetime | None
    last_attempt_status: str | None


class ClosedOut(BaseModel):
    call_id: int
    call_ids: list[int]
    resolution: Resolution
