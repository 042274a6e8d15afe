"""Imports every model so that `Base.metadata` is complete (Alembic, tests)."""

from callcenter.auth.models import AgentExtension, ApiToken, AuditEntry, AuthSession, User
from callcenter.calls.models import Call, PbxEvent
from callcenter.clients.models import Client, Organization, Phone
from callcenter.db import Base
from callcenter.tasks.models import Task

__all__ = [
    "AgentExtension",
    "ApiToken",
    "AuditEntry",
    "AuthSession",
    "Base",
    "Call",
    "Client",
    "Organization",
    "PbxEvent",
    "Phone",
    "Task",
    "User",
]
