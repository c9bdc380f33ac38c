"""users, key slots; ID-number lookups by keyed hash; the revocation reason sealed

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Existing rows are rewritten here: a pre-issue-8 installation has exactly one key, the plain
file `<db dir>/keys/data.key`; it computes `certno_ref` from each sealed person record and
seals each plaintext `revoke_reason`. Without the file, rows that need it stop the upgrade
(nothing half-done: the whole upgrade runs in one transaction).
"""
import json
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


class LegacyKeyMissing(RuntimeError):
    pass


def _legacy_key() -> bytes:
    bind = op.get_bind()
    db = bind.engine.url.database
    path = Path(db).resolve().parent / "keys" / "data.key" if db and db != ":memory:" else None
    if path is None or not path.exists():
        raise LegacyKeyMissing(
            f"升级数据库需要原来的数据密钥文件 {path}，但找不到它；请把原机器上的 keys/data.key "
            f"放回数据目录后再启动（database has visits to re-key; legacy key file missing: {path})")
    key = path.read_bytes()
    if len(key) != 32:
        raise LegacyKeyMissing(f"数据密钥文件 {path} 已损坏（{len(key)} 字节）")
    return key


def _certno(payload: dict) -> str:
    for part in (payload.get("person") or {}, payload.get("cred") or {}, payload):
        if isinstance(part, dict) and part.get("certno"):
            return str(part["certno"])
    return ""


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("login", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("role", sa.String(12), nullable=False),
        sa.Column("kdf_salt", sa.LargeBinary(), nullable=False),
        sa.Column("kdf_memory_kib", sa.Integer(), nullable=False),
        sa.Column("kdf_iterations", sa.Integer(), nullable=False),
        sa.Column("kdf_lanes", sa.Integer(), nullable=False),
        sa.Column("pw_verifier", sa.LargeBinary(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("must_change", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("failed_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.String(26), nullable=True),
        sa.Column("created_at", sa.String(26), nullable=False),
        sa.Column("password_changed_at", sa.String(26), nullable=False),
    )
    op.create_table(
        "key_slot",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("login", sa.String(20), sa.ForeignKey("app_user.login"), nullable=False,
                  unique=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.String(26), nullable=False),
    )
    with op.batch_alter_table("visit") as batch:
        batch.add_column(sa.Column("certno_ref", sa.String(24), nullable=True))
        batch.add_column(sa.Column("revoke_reason_sealed", sa.LargeBinary(), nullable=True))
        batch.create_index("ix_visit_certno_ref", ["certno_ref"])

    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, person_sealed, revoke_reason FROM visit "
        "WHERE person_sealed IS NOT NULL OR (revoke_reason IS NOT NULL AND revoke_reason != '')"
    )).all()
    if rows:
        from cryptography.exceptions import InvalidTag

        from clinic.crypto import FieldCipher
        cipher = FieldCipher(_legacy_key())
        for visit_id, person_sealed, reason in rows:
            values = {}
            if person_sealed is not None:
                try:
                    payload = json.loads(cipher.open_text(person_sealed,
                                                          f"visit.person_sealed|{visit_id}"))
                except (InvalidTag, ValueError) as exc:  # wrong key, altered row, bad JSON
                    raise LegacyKeyMissing(
                        f"就诊记录 {visit_id} 的患者信息无法用 keys/data.key 解开，升级已停止"
                        f"（wrong key or damaged row: {type(exc).__name__}）") from None
                certno = _certno(payload)
                if certno:
                    values["certno_ref"] = cipher.keyed_hash(certno)
            if reason:
                values["revoke_reason_sealed"] = cipher.seal_text(
                    reason, f"visit.revoke_reason|{visit_id}")
            if values:
                sets = ", ".join(f"{k} = :{k}" for k in sorted(values))
                conn.execute(sa.text(f"UPDATE visit SET {sets} WHERE id = :id"),
                             {**values, "id": visit_id})
    # SQLite's own DROP COLUMN (3.35+): a batch copy-and-rename of `visit` would trip the
    # foreign keys that visit_transition holds on it (foreign_keys=ON on every connection).
    op.execute("ALTER TABLE visit DROP COLUMN revoke_reason")


def downgrade() -> None:
    # The sealed reasons cannot be opened without a session's data key: they are dropped.
    op.add_column("visit", sa.Column("revoke_reason", sa.String(200), nullable=True))
    op.drop_index("ix_visit_certno_ref", table_name="visit")
    op.execute("ALTER TABLE visit DROP COLUMN revoke_reason_sealed")
    op.execute("ALTER TABLE visit DROP COLUMN certno_ref")
    op.drop_table("key_slot")
    op.drop_table("app_user")
