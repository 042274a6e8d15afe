"""Who may do what with clients' personal data: a table of rights per role, as data.

Personal data are the fields that describe a person (name, position, phones, email, the
card's own notes). Everyone who works with clients may look at cards and add events to
them (notes, tasks, meetings, call outcomes, tags); changing the personal data itself,
exporting it, and reading the audit log are rights of higher roles. A deployment moves the
lines through settings (`operators_edit_personal_data`, `export_min_role`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from callcenter.auth.models import ROLE_RANK, Role


class Right(StrEnum):
    VIEW_CLIENTS = "view_clients"
    """Open cards, lists and timelines (each view is audited)."""
    ADD_EVENTS = "add_events"
    """Append to a card's history: notes, tasks, meetings, call outcomes, tags."""
    CREATE_CLIENTS = "create_clients"
    """Create a card (e.g. for a new caller, from the screen pop)."""
    EDIT_CARD = "edit_card"
    """Change a card's fields that are not personal data (its organisation)."""
    EDIT_PERSONAL_DATA = "edit_personal_data"
    """Change or remove personal data: name, position, email, card notes, phones."""
    MANAGE_SEGMENTS = "manage_segments"
    """Save, change and delete segments; recompute the ABC ranking."""
    EXPORT = "export"
    """Download a segment as a mailing list (names, phones, emails)."""
    READ_AUDIT = "read_audit"


PERSONAL_DATA_FIELDS = frozenset({"name", "position", "email", "notes", "phones"})
"""Client fields that are personal data (a person's phones count as one field)."""


class PersonalDataForbidden(PermissionError):
    """The caller's role may not change these personal-data fields."""

    def __init__(self, role: Role, fields: list[str]) -> None:
        super().__init__(f"the {role.value} role may not change personal data: {fields}")
        self.role = role
        self.fields = fields


class RightMissing(PermissionError):
    def __init__(self, role: Role, right: Right) -> None:
        super().__init__(f"the {role.value} role does not have the {right.value} right")
        self.role = role
        self.right = right


_BASE_RIGHTS = frozenset({Right.VIEW_CLIENTS, Right.ADD_EVENTS, Right.CREATE_CLIENTS})
_MIN_ROLE: Mapping[Right, Role] = {
    Right.EDIT_CARD: Role.OPERATOR,
    Right.EDIT_PERSONAL_DATA: Role.SUPERVISOR,
    Right.MANAGE_SEGMENTS: Role.SUPERVISOR,
    Right.EXPORT: Role.SUPERVISOR,
    Right.READ_AUDIT: Role.ADMIN,
}


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    rights: Mapping[Role, frozenset[Right]]

    def allows(self, role: Role, right: Right) -> bool:
        return right in self.rights.get(role, frozenset())

    def ensure(self, role: Role, right: Right) -> None:
        """Raise RightMissing unless `role` has `right`."""
        if not self.allows(role, right):
            raise RightMissing(role, right)

    def forbidden_fields(self, role: Role, fields: Iterable[str]) -> list[str]:
        """Of the client fields to change, those this role may not change (sorted)."""
        blocked = []
        for name in set(fields):
            needed = Right.EDIT_PERSONAL_DATA if name in PERSONAL_DATA_FIELDS else Right.EDIT_CARD
            if not self.allows(role, needed):
                blocked.append(name)
        return sorted(blocked)

    def ensure_may_change(self, role: Role, fields: Iterable[str]) -> None:
        """Raise PersonalDataForbidden naming every field this role may not change."""
        blocked = self.forbidden_fields(role, fields)
        if blocked:
            raise PersonalDataForbidden(role, blocked)


def access_policy(
    *,
    operators_edit_personal_data: bool = False,
    export_min_role: Role = Role.SUPERVISOR,
) -> AccessPolicy:
    """The rights of each role under a deployment's settings."""
    minimum = dict(_MIN_ROLE)
    if operators_edit_personal_data:
        minimum[Right.EDIT_PERSONAL_DATA] = Role.OPERATOR
    minimum[Right.EXPORT] = export_min_role
    rights = {
        role: _BASE_RIGHTS
        | {right for right, least in minimum.items() if ROLE_RANK[role] >= ROLE_RANK[least]}
        for role in Role
    }
    return AccessPolicy(rights)
