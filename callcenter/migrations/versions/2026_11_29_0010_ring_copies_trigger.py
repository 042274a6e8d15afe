"""ring copies by trigger: the database keeps the call facts copied into unanswered rings

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 16:30:00

`unanswered_rings` copies each call's end and the user who answered it. Ingest used to
update the copies itself, one extra statement in nearly every batch on the screen pop's
path. A row trigger on `calls` now does it, only when one of those facts changes and
whoever changes it; the statement it runs finds the rings by their primary key prefix.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "trg_calls_copy_to_unanswered_rings"

_COPY = """
        UPDATE unanswered_rings
        SET call_ended_at = NEW.ended_at,
            call_answered_by = CASE WHEN NEW.answered_at IS NOT NULL
                                    THEN NEW.agent_user_id END
        WHERE call_id = NEW.id;
"""

_POSTGRESQL = [
    f"""
    CREATE FUNCTION {_NAME}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_COPY}
        RETURN NULL;
    END
    $$
    """,
    f"""
    CREATE TRIGGER {_NAME}
    AFTER UPDATE OF ended_at, answered_at, agent_user_id ON calls
    FOR EACH ROW
    WHEN (OLD.ended_at IS DISTINCT FROM NEW.ended_at
          OR (OLD.answered_at IS NULL) <> (NEW.answered_at IS NULL)
          OR OLD.agent_user_id IS DISTINCT FROM NEW.agent_user_id)
    EXECUTE FUNCTION {_NAME}()
    """,
]

_SQLITE = [
    f"""
    CREATE TRIGGER {_NAME}
    AFTER UPDATE OF ended_at, answered_at, agent_user_id ON calls
    FOR EACH ROW
    WHEN OLD.ended_at IS NOT NEW.ended_at
         OR (OLD.answered_at IS NULL) <> (NEW.answered_at IS NULL)
         OR OLD.agent_user_id IS NOT NEW.agent_user_id
    BEGIN
        {_COPY}
    END
    """,
]


def upgrade() -> None:
    for statement in _POSTGRESQL if op.get_bind().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {_NAME}" + _on_calls())
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {_NAME}()")


def _on_calls() -> str:
    return " ON calls" if op.get_bind().dialect.name == "postgresql" else ""
