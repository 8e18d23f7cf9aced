"""audit log: every write to the governance tables, by trigger, append-only

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 07:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables whose every INSERT/UPDATE/DELETE is logged row by row, with the row before and after.
#: Bulk tables (building, household, road, estate) are logged once per import instead, and
#: cell_change / incident_event are audit trails of their own.
AUDITED_TABLES = (
    "app_user",
    "street",
    "community",
    "cell",
    "cell_version",
    "cell_sector",
    "sector",
    "level_duty",
    "role_assignment",
    "person",
    "volunteer_team",
    "organisation",
    "linked_household",
    "service_post",
    "post_activity",
    "visit",
    "incident",
    "incident_category",
    "incident_photo",
    "open311_key",
)

# Secrets and bulky blobs never enter the log.
_AUDIT_FUNCTION = r"""
CREATE FUNCTION gridsvc_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rec jsonb;
    v_cell integer;
    v_community integer;
    v_street integer;
BEGIN
    -- Bulk loaders (imports, the demo) log one summary event instead of one per row.
    IF coalesce(current_setting('gridsvc.audit_bulk', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN rec := to_jsonb(OLD); ELSE rec := to_jsonb(NEW); END IF;
    v_cell := CASE WHEN TG_TABLE_NAME = 'cell' THEN (rec->>'id')::integer
                   ELSE (rec->>'cell_id')::integer END;
    v_community := CASE WHEN TG_TABLE_NAME = 'community' THEN (rec->>'id')::integer
                        ELSE (rec->>'community_id')::integer END;
    IF v_community IS NULL AND v_cell IS NOT NULL THEN
        SELECT community_id INTO v_community FROM cell WHERE id = v_cell;
    END IF;
    IF v_community IS NULL AND rec->>'household_id' IS NOT NULL THEN
        SELECT b.community_id INTO v_community FROM household h JOIN building b
            ON b.id = h.building_id WHERE h.id = (rec->>'household_id')::integer;
    END IF;
    IF v_community IS NULL AND rec->>'building_id' IS NOT NULL THEN
        SELECT community_id INTO v_community FROM building
            WHERE id = (rec->>'building_id')::integer;
    END IF;
    IF v_community IS NULL AND rec->>'incident_id' IS NOT NULL THEN
        SELECT community_id INTO v_community FROM incident
            WHERE id = (rec->>'incident_id')::integer;
    END IF;
    IF v_community IS NULL AND rec->>'person_id' IS NOT NULL THEN
        SELECT community_id INTO v_community FROM person WHERE id = (rec->>'person_id')::integer;
    END IF;
    v_street := CASE WHEN TG_TABLE_NAME = 'street' THEN (rec->>'id')::integer
                     ELSE (rec->>'street_id')::integer END;
    IF v_street IS NULL AND v_community IS NOT NULL THEN
        SELECT street_id INTO v_street FROM community WHERE id = v_community;
    END IF;
    INSERT INTO audit_event (actor, action, table_name, row_id, street_id, community_id,
                             cell_id, reason, before, after)
    VALUES (
        coalesce(nullif(current_setting('gridsvc.actor', true), ''), 'db:' || session_user),
        lower(TG_OP), TG_TABLE_NAME, (rec->>'id')::bigint, v_street, v_community, v_cell,
        nullif(current_setting('gridsvc.reason', true), ''),
        CASE WHEN TG_OP <> 'INSERT'
             THEN to_jsonb(OLD) - 'password_hash' - 'key_hash' - 'data' END,
        CASE WHEN TG_OP <> 'DELETE'
             THEN to_jsonb(NEW) - 'password_hash' - 'key_hash' - 'data' END);
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.String(length=96), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("table_name", sa.String(length=48), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("cell_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index("ix_audit_event_street_at", "audit_event", ["street_id", "at"], unique=False)
    op.create_index(
        "ix_audit_event_community_at", "audit_event", ["community_id", "at"], unique=False
    )
    op.create_index(
        "ix_audit_event_table_row", "audit_event", ["table_name", "row_id"], unique=False
    )
    # Append-only: the database refuses to edit or remove the log.
    op.execute(
        "CREATE FUNCTION gridsvc_refuse_audit_event_edit() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION gridsvc_refuse_audit_event_edit()"
    )
    op.execute(
        "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridsvc_refuse_audit_event_edit()"
    )
    op.execute(_AUDIT_FUNCTION)
    for table in AUDITED_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_audit AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION gridsvc_audit()"
        )


def downgrade() -> None:
    """Revert this migration."""
    for table in AUDITED_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_audit ON {table}")
    op.execute("DROP FUNCTION IF EXISTS gridsvc_audit()")
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
    op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
    op.drop_index("ix_audit_event_table_row", table_name="audit_event")
    op.drop_index("ix_audit_event_community_at", table_name="audit_event")
    op.drop_index("ix_audit_event_street_at", table_name="audit_event")
    op.drop_table("audit_event")
    op.execute("DROP FUNCTION IF EXISTS gridsvc_refuse_audit_event_edit()")
