"""indexes every visit commit kept up for no query dropped; unresolved visits in a partial index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

- ix_audit_event_action: nothing looks events up by action (the supervisor's sup_event has its
  own index).
- ix_visit_transition_visit_id: the trail is written, never looked up by visit. The foreign key
  would read it only when a visit row is deleted or its id changed, and nothing does either.
- ix_visit_state: each of a visit's transitions moved its entry, while the queries worth an
  index look for unresolved visits only (recovery's start-up reads scan the table, as its
  missing-receipt query in effect already did through this index; and the patient-history
  query walked all settled visits in it instead of using ix_visit_psn_ref). The partial index
  holds a visit just while it is in one of those states: a settle call, barring a lost answer.
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# clinic.visit_state.UNRESOLVED_SQL as of this revision, copied: the queries spell this same term
# (tests check that they use the index).
UNRESOLVED = "state IN ('settling', 'unknown', 'revoking', 'reversing')"


def upgrade() -> None:
    op.drop_index("ix_audit_event_action", table_name="audit_event")
    op.drop_index("ix_visit_transition_visit_id", table_name="visit_transition")
    op.drop_index("ix_visit_state", table_name="visit")
    op.create_index("ix_visit_unresolved", "visit", ["state"], sqlite_where=sa.text(UNRESOLVED))


def downgrade() -> None:
    op.drop_index("ix_visit_unresolved", table_name="visit")
    op.create_index("ix_visit_state", "visit", ["state"])
    op.create_index("ix_visit_transition_visit_id", "visit_transition", ["visit_id"])
    op.create_index("ix_audit_event_action", "audit_event", ["action"])
