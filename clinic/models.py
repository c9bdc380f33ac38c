"""The clinic's local tables (SQLAlchemy 2). Schema changes go through Alembic migrations."""
from __future__ import annotations

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .visit_state import UNRESOLVED_SQL


class Base(DeclarativeBase):
    pass


class Visit(Base):
    __tablename__ = "visit"
    # State is indexed only for the unresolved visits, looked up before every visit: the other
    # transitions write no index entry (migration 0005).
    __table_args__ = (Index("ix_visit_unresolved", "state", sqlite_where=text(UNRESOLVED_SQL)),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[str] = mapped_column(String(26))
    business_date: Mapped[str] = mapped_column(String(10), index=True)
    state: Mapped[str] = mapped_column(String(16))
    opter: Mapped[str] = mapped_column(String(20))
    cert_type: Mapped[str] = mapped_column(String(2))
    # Patient identity: sealed (AES-GCM, row-bound) plus a keyed hash for lookups.
    person_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    psn_ref: Mapped[str | None] = mapped_column(String(24), index=True)
    certno_ref: Mapped[str | None] = mapped_column(String(24), index=True)  # keyed hash of the ID number
    insutype: Mapped[str | None] = mapped_column(String(3))
    mdtrt_id: Mapped[str | None] = mapped_column(String(40))
    diagnosis: Mapped[str | None] = mapped_column(String(20))
    items_json: Mapped[str] = mapped_column(Text, default="[]")
    verdicts_json: Mapped[str] = mapped_column(Text, default="[]")
    presettle_json: Mapped[str | None] = mapped_column(Text)
    setl_msgid: Mapped[str | None] = mapped_column(String(30), unique=True)
    setl_id: Mapped[str | None] = mapped_column(String(40))
    setl_time: Mapped[str | None] = mapped_column(String(19))
    split_json: Mapped[str | None] = mapped_column(Text)
    receipt_path: Mapped[str | None] = mapped_column(String(400))
    message: Mapped[str | None] = mapped_column(String(500))
    # Self-pay (自费) while the network is down: cash only, nothing sent to the insurer.
    self_pay: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # A worker's free-text reason may name the patient: sealed, AAD "visit.revoke_reason|<id>".
    revoke_reason_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    revoked_by: Mapped[str | None] = mapped_column(String(20))
    revoke_setl_id: Mapped[str | None] = mapped_column(String(40))
    revoke_split_json: Mapped[str | None] = mapped_column(Text)


class VisitTransition(Base):
    __tablename__ = "visit_transition"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No index: nothing reads the trail by visit, and visit rows are never deleted nor re-keyed.
    visit_id: Mapped[str] = mapped_column(ForeignKey("visit.id"))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[str] = mapped_column(String(26))


class SignIn(Base):
    __tablename__ = "sign_in"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    business_date: Mapped[str] = mapped_column(String(10), index=True)
    opter: Mapped[str] = mapped_column(String(20))
    sign_no: Mapped[str] = mapped_column(String(40))
    sign_time: Mapped[str] = mapped_column(String(19))
    signed_out_at: Mapped[str | None] = mapped_column(String(26))


class AuditEvent(Base):
    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[str] = mapped_column(String(26))
    clinic: Mapped[str] = mapped_column(String(12))
    terminal: Mapped[str] = mapped_column(String(40))
    operator: Mapped[str] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))  # no index: nothing looks events up by action
    object: Mapped[str] = mapped_column(String(80))
    outcome: Mapped[str] = mapped_column(String(20))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class DayClose(Base):
    """One attempt to close a business day: local totals beside the insurer's verdict."""
    __tablename__ = "day_close"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    business_date: Mapped[str] = mapped_column(String(10), index=True)
    closed_at: Mapped[str] = mapped_column(String(26))
    opter: Mapped[str] = mapped_column(String(20))
    balanced: Mapped[bool] = mapped_column(Boolean)
    cash_expected: Mapped[int] = mapped_column(Integer)
    cash_counted: Mapped[int | None] = mapped_column(Integer)
    report_json: Mapped[str] = mapped_column(Text)


class AuditCheckpoint(Base):
    """A signed statement "the chain had `seq` events, the last one hashing to `head_hash`".

    Append-only like the events (triggers); copies leave the PC with day close and exports."""
    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    clinic: Mapped[str] = mapped_column(String(12))
    seq: Mapped[int] = mapped_column(Integer, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(26))
    reason: Mapped[str] = mapped_column(String(20))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))


class AppUser(Base):
    """A person who may use this counter. The password is never stored: an Argon2id derivation
    (salt and parameters kept here so they can be raised later) yields a verifier and the key
    that unwraps the user's key slot. Lockout state lives here so it survives restarts."""
    __tablename__ = "app_user"

    login: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(12))
    kdf_salt: Mapped[bytes] = mapped_column(LargeBinary)
    kdf_memory_kib: Mapped[int] = mapped_column(Integer)
    kdf_iterations: Mapped[int] = mapped_column(Integer)
    kdf_lanes: Mapped[int] = mapped_column(Integer)
    pw_verifier: Mapped[bytes] = mapped_column(LargeBinary)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    must_change: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    failed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[str] = mapped_column(String(26))
    password_changed_at: Mapped[str] = mapped_column(String(26))


class KeySlot(Base):
    """The data key wrapped (AES-GCM) under one user's password-derived key; the associated data
    binds slot id, login, role and purpose, so a slot moved to another row does not open."""
    __tablename__ = "key_slot"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    login: Mapped[str] = mapped_column(ForeignKey("app_user.login"), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(16))  # fingerprint of the data key it holds
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[str] = mapped_column(String(26))
