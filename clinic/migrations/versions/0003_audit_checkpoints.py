"""signed audit checkpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("clinic", sa.String(12), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False, index=True),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("ts", sa.String(26), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    # Append-only, like audit_event: the database itself refuses edits and deletions.
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_checkpoint_no_{verb.lower()} BEFORE {verb} ON audit_checkpoint "
            f"BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END"
        )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_checkpoint_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_checkpoint_no_delete")
    op.drop_table("audit_checkpoint")
