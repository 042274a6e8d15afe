"""The personal-data policy: a table of rights per role, moved by settings."""

from __future__ import annotations

import pytest

from callcenter.auth.models import Role
from callcenter.crm.policy import (
    PERSONAL_DATA_FIELDS,
    PersonalDataForbidden,
    Right,
    RightMissing,
    access_policy,
)

OP, SUP, ADM = Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN


def test_given_default_settings_then_the_table_is_the_documented_one() -> None:
    policy = access_policy()
    base = {Right.VIEW_CLIENTS, Right.ADD_EVENTS, Right.CREATE_CLIENTS, Right.EDIT_CARD}
    supervisor_extra = {Right.EDIT_PERSONAL_DATA, Right.MANAGE_SEGMENTS, Right.EXPORT}

    assert policy.rights[OP] == base
    assert policy.rights[SUP] == base | supervisor_extra
    assert policy.rights[ADM] == base | supervisor_extra | {Right.READ_AUDIT}


def test_given_an_operator_when_changing_fields_then_only_personal_data_is_refused() -> None:
    policy = access_policy()

    assert policy.forbidden_fields(OP, ["organization_id"]) == []
    assert policy.forbidden_fields(OP, ["email", "organization_id", "name"]) == ["email", "name"]
    assert policy.forbidden_fields(OP, PERSONAL_DATA_FIELDS) == sorted(PERSONAL_DATA_FIELDS)
    assert policy.forbidden_fields(SUP, PERSONAL_DATA_FIELDS) == []
    with pytest.raises(PersonalDataForbidden) as refused:
        policy.ensure_may_change(OP, ["phones", "position"])
    assert refused.value.fields == ["phones", "position"]
    policy.ensure_may_change(SUP, ["phones", "position"])


def test_given_operators_may_edit_personal_data_then_they_may_but_still_not_export() -> None:
    policy = access_policy(operators_edit_personal_data=True)

    assert policy.forbidden_fields(OP, PERSONAL_DATA_FIELDS) == []
    assert not policy.allows(OP, Right.EXPORT)
    assert not policy.allows(OP, Right.READ_AUDIT)


@pytest.mark.parametrize(
    ("minimum", "allowed"),
    [(OP, {OP, SUP, ADM}), (SUP, {SUP, ADM}), (ADM, {ADM})],
)
def test_given_an_export_minimum_role_then_exactly_the_roles_at_or_above_may_export(
    minimum: Role, allowed: set[Role]
) -> None:
    policy = access_policy(export_min_role=minimum)

    assert {role for role in Role if policy.allows(role, Right.EXPORT)} == allowed


def test_given_a_missing_right_when_ensured_then_it_names_role_and_right() -> None:
    with pytest.raises(RightMissing) as refused:
        access_policy().ensure(SUP, Right.READ_AUDIT)
    assert (refused.value.role, refused.value.right) == (SUP, Right.READ_AUDIT)
