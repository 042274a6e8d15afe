"""Imports every model so that `Base.metadata` is complete (Alembic, tests)."""

from callcenter.auth.models import AgentExtension, ApiToken, AuditEntry, AuthSession, User
from callcenter.calls.models import Call, PbxEvent, UnansweredRing
from callcenter.clients.merge import ClientMerge
from callcenter.clients.models import Client, Organization, Phone
from callcenter.control.models import MissedCallClosure, OutboundRequest
from callcenter.crm.models import ClientRank, ClientTag, Note, OrganizationTag, Segment, Tag
from callcenter.db import Base
from callcenter.imports.models import ImportBatch, ImportChange, ImportTemplate
from callcenter.jobs.models import DeadLetter, JobEffect
from callcenter.queues.models import AgentPause, QueueSettings
from callcenter.recordings.models import RecordingAnalysisRecord
from callcenter.reports.models import PlanTarget
from callcenter.tasks.models import Meeting, MeetingParticipant, Task

__all__ = [
    "AgentExtension",
    "AgentPause",
    "ApiToken",
    "AuditEntry",
    "AuthSession",
    "Base",
    "Call",
    "Client",
    "ClientMerge",
    "ClientRank",
    "ClientTag",
    "DeadLetter",
    "ImportBatch",
    "ImportChange",
    "ImportTemplate",
    "JobEffect",
    "Meeting",
    "MeetingParticipant",
    "MissedCallClosure",
    "Note",
    "Organization",
    "OrganizationTag",
    "OutboundRequest",
    "PbxEvent",
    "Phone",
    "PlanTarget",
    "QueueSettings",
    "RecordingAnalysisRecord",
    "Segment",
    "Tag",
    "Task",
    "UnansweredRing",
    "User",
]
