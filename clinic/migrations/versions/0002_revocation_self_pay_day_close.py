"""revocation columns, self-pay visits, sign-out, day close

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visit") as batch:
        batch.add_column(sa.Column("self_pay", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("revoke_reason", sa.String(200), nullable=True))
        batch.add_column(sa.Column("revoked_by", sa.String(20), nullable=True))
        batch.add_column(sa.Column("revoke_setl_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("revoke_split_json", sa.Text(), nullable=True))
    with op.batch_alter_table("sign_in") as batch:
        batch.add_column(sa.Column("signed_out_at", sa.String(26), nullable=True))
    op.create_table(
        "day_close",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("business_date", sa.String(10), nullable=False, index=True),
        sa.Column("closed_at", sa.String(26), nullable=False),
        sa.Column("opter", sa.String(20), nullable=False),
        sa.Column("balanced", sa.Boolean(), nullable=False),
        sa.Column("cash_expected", sa.Integer(), nullable=False),
        sa.Column("cash_counted", sa.Integer(), nullable=True),
        sa.Column("report_json", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("day_close")
    with op.batch_alter_table("sign_in") as batch:
        batch.drop_column("signed_out_at")
    with op.batch_alter_table("visit") as batch:
        for col in ("revoke_split_json", "revoke_setl_id", "revoked_by", "revoke_reason", "self_pay"):
            batch.drop_column(col)
