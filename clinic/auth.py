"""Who is at the counter: users, passwords, lockout, and the data key each login unwraps.

A password is checked by one Argon2id derivation (clinic.keyslots): 32 bytes of verifier, 32
bytes of key-encryption key that opens the user's key slot, which holds the installation's data
key (DEK). The DEK is in memory only inside a Session. docs/security.md.
"""
from __future__ import annotations

import getpass
import logging
import os
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from . import keyslots
from .audit import Actor, AuditLog
from .config import Settings
from .crypto import shred
from .domain import Operator
from .errors import CounterError
from .keyslots import DEFAULT_KDF, KdfParams, SlotInvalid
from .models import AppUser, KeySlot
from .roles import ADMIN, SUPERVISOR, TRAINEE, WORKER, require

log = logging.getLogger(__name__)

ROLES = (WORKER, ADMIN, SUPERVISOR, TRAINEE)
ROLE_NAMES = {WORKER: "村医", ADMIN: "管理员", SUPERVISOR: "督导", TRAINEE: "学员"}
MIN_PASSWORD = 8
MAX_FAILURES = 5                      # consecutive failures before the first lock
FIRST_LOCK = timedelta(seconds=30)    # then doubling with each further failure ...
MAX_LOCK = timedelta(minutes=15)      # ... up to this
LEGACY_KEY = "data.key"               # pre-issue-8: the data key in clear in keys/


@dataclass(frozen=True)
class Session:
    operator: Operator
    data_key: bytes = field(repr=False)
    must_change_password: bool = False


@dataclass(frozen=True)
class UserInfo:
    login: str
    name: str
    role: str
    disabled: bool
    locked_until: datetime | None
    must_change: bool


class AuthError(CounterError):
    exit_code = 6
    status = "auth"


class BadCredentials(AuthError):
    pass


class AccountLocked(AuthError):
    def __init__(self, until: datetime, now: datetime, detail: str = ""):
        minutes = max(1, -(-int((until - now).total_seconds()) // 60))
        super().__init__(f"连续输错，账号已锁定，请 {minutes} 分钟后再试", detail)
        self.until = until


class AccountDisabled(AuthError):
    pass


class NoUsersYet(AuthError):
    pass


class WrongProfile(AuthError):
    pass


class KeySlotInvalid(AuthError):
    """The password was right but the user's key slot does not open: altered or moved."""


def lock_duration(failures: int) -> timedelta | None:
    """The lock after `failures` consecutive failures: none below 5, then 30 s doubling to 15 min."""
    if failures < MAX_FAILURES:
        return None
    return min(FIRST_LOCK * (2 ** min(failures - MAX_FAILURES, 16)), MAX_LOCK)


def check_password_rule(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"密码至少 {MIN_PASSWORD} 位", "password too short")


class UserStore:
    def __init__(self, engine: Engine, settings: Settings, *, clock=datetime.now,
                 kdf: KdfParams = DEFAULT_KDF):
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._kdf = kdf

    # ---- reading --------------------------------------------------------------------------

    def has_users(self) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(AppUser.login).limit(1)).first() is not None

    def users(self) -> list[UserInfo]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(AppUser).order_by(AppUser.login)).all()
        now = self._clock()
        out = []
        for r in rows:
            until = datetime.fromisoformat(r.locked_until) if r.locked_until else None
            out.append(UserInfo(r.login, r.name, r.role, bool(r.disabled),
                                until if until and until > now else None, bool(r.must_change)))
        return out

    # ---- the first administrator ------------------------------------------------------------

    def create_first_admin(self, login: str, name: str, password: str) -> Session:
        login, name = _clean_login(login), _clean_name(name)
        check_password_rule(password)
        legacy = self._settings.keys_dir / LEGACY_KEY
        adopted = legacy.exists()
        if adopted:
            dek = legacy.read_bytes()
            if len(dek) != 32:
                raise AuthError("原数据密钥文件已损坏，不能继续；请联系技术支持",
                                f"{legacy} holds {len(dek)} bytes")
        else:
            dek = keyslots.new_data_key()
        now = self._clock()
        with self._engine.begin() as conn:
            # Inside the write transaction, so two first starts cannot both make an admin.
            conn.exec_driver_sql("UPDATE app_user SET login = login WHERE 0")
            if conn.execute(select(AppUser.login).limit(1)).first() is not None:
                raise AuthError("已经有管理员了，请用管理员账号登录后添加用户", "users exist")
            self._write_user(conn, login, name, ADMIN, password, dek, now)
        if adopted:
            _shred(legacy)
        session = Session(Operator(login, name, ADMIN), dek, False)
        self._audit(login, ADMIN).append("user_add", login, "ok", role=ADMIN, first_admin=True,
                                         key="adopted" if adopted else "new",
                                         key_id=keyslots.key_id(dek))
        return session

    # ---- logging in -------------------------------------------------------------------------

    def login(self, login: str, password: str) -> Session:
        login = (login or "").strip()
        if not self.has_users():
            raise NoUsersYet("还没有管理员。请先运行 clinic user init 创建第一个管理员", "no users")
        row = self._row(login)
        if row is None:
            # As slow as a real check, so timing does not tell which logins exist.
            keyslots.derive(password, b"\0" * 16, self._kdf, login)
            self._audit(login, "").append("login", login, "failed", reason="unknown_user")
            raise BadCredentials("用户名或密码不对", f"unknown login {login!r}")
        if row.disabled:
            self._audit(login, row.role).append("login", login, "refused", reason="disabled")
            raise AccountDisabled("该账号已停用，请联系管理员", f"{login} disabled")
        if row.role == TRAINEE and not self._settings.training:
            self._audit(login, row.role).append("login", login, "refused", reason="profile")
            raise WrongProfile("学员账号只能在培训模式下登录", f"trainee {login} outside training")
        _, kek = self._check(row, password)
        with self._engine.connect() as conn:
            slot = conn.execute(select(KeySlot).where(KeySlot.login == login)).first()
        if slot is None:
            # A kiosk may keep the data key in the OS keyring (clinic.keyring_store): the
            # password was verified above; the key must match the one the slots hold.
            dek = self._keyring_key()
            if dek is None:
                self._audit(login, row.role).append("login", login, "refused",
                                                    reason="no_key_slot")
                raise KeySlotInvalid("该账号没有数据密钥，请管理员重置密码", f"{login} has no slot")
        else:
            try:
                dek = keyslots.unwrap(slot.wrapped, kek, slot_id=slot.id, login=login,
                                      role=row.role, purpose=slot.purpose)
            except SlotInvalid as exc:
                self._audit(login, row.role).append("login", login, "refused",
                                                    reason="key_slot_invalid")
                raise KeySlotInvalid("该账号的数据密钥已损坏或被改动，不能打开数据；请管理员重置密码",
                                     f"{login}: {exc}") from None
        stored = KdfParams(row.kdf_memory_kib, row.kdf_iterations, row.kdf_lanes)
        if not stored.at_least(self._kdf):  # parameters raised since: rehash now we can
            with self._engine.begin() as conn:
                self._write_user(conn, login, row.name, row.role, password, dek, self._clock(),
                                 replace=True, must_change=bool(row.must_change))
        # No event for a login that succeeds: every command logs in, and an event appended here
        # would land after the last signed checkpoint (`audit verify` would call the chain
        # unproven because the supervisor logged in to verify it). What the user then does is
        # recorded under their id and name; failures and lockouts are recorded above and below.
        return Session(Operator(login, row.name, row.role), dek, bool(row.must_change))

    def verify_password(self, session: Session, password: str) -> bool:
        """Unlocking an idle-locked screen: the same check and lockout as a login."""
        login = session.operator.opter
        row = self._row(login)
        if row is None or row.disabled:
            raise AccountDisabled("该账号已停用，请联系管理员", f"{login} disabled or gone")
        try:
            self._check(row, password, action="unlock")
        except BadCredentials:
            return False
        self._audit(login, row.role).append("unlock", login, "ok")
        return True

    def _check(self, row, password: str, action: str = "login") -> tuple[bytes, bytes]:
        """Verify the password with lockout accounting; (verifier, kek) when right."""
        login = row.login
        now = self._clock()
        if row.locked_until:
            until = datetime.fromisoformat(row.locked_until)
            if until > now:
                self._audit(login, row.role).append(action, login, "locked",
                                                    until=until.isoformat(timespec="seconds"))
                raise AccountLocked(until, now, f"{login} locked until {until}")
        params = KdfParams(row.kdf_memory_kib, row.kdf_iterations, row.kdf_lanes)
        verifier, kek = keyslots.derive(password, row.kdf_salt, params, login)
        if keyslots.verifier_matches(row.pw_verifier, verifier):
            if row.failed_count or row.locked_until:
                with self._engine.begin() as conn:
                    conn.execute(update(AppUser).where(AppUser.login == login)
                                 .values(failed_count=0, locked_until=None))
            return verifier, kek
        with self._engine.begin() as conn:
            conn.execute(update(AppUser).where(AppUser.login == login)
                         .values(failed_count=AppUser.failed_count + 1))
            failures = conn.execute(select(AppUser.failed_count)
                                    .where(AppUser.login == login)).scalar_one()
            lock = lock_duration(failures)
            until = now + lock if lock else None
            if until:
                conn.execute(update(AppUser).where(AppUser.login == login)
                             .values(locked_until=until.isoformat()))
        if until:
            self._audit(login, row.role).append(action, login, "locked", failures=failures,
                                                until=until.isoformat(timespec="seconds"))
            raise AccountLocked(until, now, f"{login} locked after {failures} failures")
        self._audit(login, row.role).append(action, login, "failed", failures=failures)
        left = MAX_FAILURES - failures
        raise BadCredentials(f"用户名或密码不对（还可再试 {left} 次）",
                             f"{login}: wrong password ({failures})")

    # ---- managing users (an administrator, who holds the data key) --------------------------

    def add_user(self, by: Session, login: str, name: str, role: str, password: str) -> None:
        require(by.operator, "manage_users")
        login, name = _clean_login(login), _clean_name(name)
        if role not in ROLES:
            raise AuthError(f"没有这个角色：{role}（可选：{'、'.join(ROLES)}）", f"role {role!r}")
        if role == TRAINEE and not self._settings.training:
            raise WrongProfile("学员账号只能在培训模式下创建", "trainee outside training")
        check_password_rule(password)
        self._check_key(by)
        with self._engine.begin() as conn:
            if conn.execute(select(AppUser.login).where(AppUser.login == login)).first():
                raise AuthError(f"用户名 {login} 已存在", f"{login} exists")
            # The administrator chose this password: the user replaces it at first login.
            self._write_user(conn, login, name, role, password, by.data_key, self._clock(),
                             must_change=True)
        self._audit(by.operator.opter, by.operator.role).append("user_add", login, "ok",
                                                                role=role)

    def disable_user(self, by: Session, login: str) -> None:
        require(by.operator, "manage_users")
        if login == by.operator.opter:
            raise AuthError("不能停用自己的账号", "self-disable")
        with self._engine.begin() as conn:
            row = conn.execute(select(AppUser).where(AppUser.login == login)).first()
            if row is None:
                raise AuthError(f"没有用户 {login}", f"no user {login!r}")
            if row.role == ADMIN and not row.disabled:
                admins = conn.execute(select(AppUser.login).where(
                    AppUser.role == ADMIN, AppUser.disabled.is_(False))).all()
                if len(admins) <= 1:
                    raise AuthError("不能停用最后一个管理员", "last admin")
            conn.execute(delete(KeySlot).where(KeySlot.login == login))
            conn.execute(update(AppUser).where(AppUser.login == login).values(disabled=True))
        self._audit(by.operator.opter, by.operator.role).append("user_disable", login, "ok")

    def reset_password(self, by: Session, login: str, new_password: str) -> None:
        require(by.operator, "manage_users")
        check_password_rule(new_password)
        self._check_key(by)
        with self._engine.begin() as conn:
            row = conn.execute(select(AppUser).where(AppUser.login == login)).first()
            if row is None:
                raise AuthError(f"没有用户 {login}", f"no user {login!r}")
            if row.disabled:
                raise AccountDisabled("该账号已停用，不能重置密码", f"{login} disabled")
            self._write_user(conn, login, row.name, row.role, new_password, by.data_key,
                             self._clock(), replace=True, must_change=True)
        self._audit(by.operator.opter, by.operator.role).append("password_reset", login, "ok")

    def change_password(self, session: Session, old: str, new: str) -> Session:
        login = session.operator.opter
        row = self._row(login)
        if row is None or row.disabled:
            raise AccountDisabled("该账号已停用，请联系管理员", f"{login} disabled or gone")
        self._check(row, old, action="password_change")
        check_password_rule(new)
        if new == old:
            raise AuthError("新密码不能与原密码相同", "same password")
        self._check_key(session)
        with self._engine.begin() as conn:
            self._write_user(conn, login, row.name, row.role, new, session.data_key,
                             self._clock(), replace=True, must_change=False)
        self._audit(login, row.role).append("password_change", login, "ok")
        return Session(session.operator, session.data_key, False)

    # ---- the OS keyring (optional) ------------------------------------------------------------

    def enable_keyring(self, by: Session) -> None:
        """Keep the data key in the OS keyring too (an administrator, who holds it)."""
        from . import keyring_store
        require(by.operator, "manage_users")
        self._check_key(by)
        if not keyring_store.store_key(self._settings, by.data_key):
            raise AuthError("本机没有可用的系统密钥环（keyring），无法启用",
                            "no usable keyring backend")
        self._audit(by.operator.opter, by.operator.role).append(
            "keyring_enable", by.operator.opter, "ok", key_id=keyslots.key_id(by.data_key))

    def disable_keyring(self, by: Session) -> None:
        from . import keyring_store
        require(by.operator, "manage_users")
        removed = keyring_store.remove_key(self._settings)
        self._audit(by.operator.opter, by.operator.role).append(
            "keyring_disable", by.operator.opter, "ok" if removed else "absent")

    def _keyring_key(self) -> bytes | None:
        from . import keyring_store
        dek = keyring_store.load_key(self._settings)
        if dek is None:
            return None
        with self._engine.connect() as conn:
            ids = set(conn.execute(select(KeySlot.key_id)).scalars())
        if ids and ids != {keyslots.key_id(dek)}:
            log.warning("keyring data key does not match the key slots; ignored")
            return None
        return dek

    # ---- inside ---------------------------------------------------------------------------

    def _row(self, login: str):
        with self._engine.connect() as conn:
            return conn.execute(select(AppUser).where(AppUser.login == login)).first()

    def _check_key(self, session: Session) -> None:
        """The DEK a session brings must be the one the other slots hold (never mix two keys)."""
        with self._engine.connect() as conn:
            ids = set(conn.execute(select(KeySlot.key_id)).scalars())
        if ids and ids != {keyslots.key_id(session.data_key)}:
            raise AuthError("数据密钥不一致，操作已拒绝；请联系技术支持",
                            f"session key {keyslots.key_id(session.data_key)} vs slots {ids}")

    def _write_user(self, conn, login: str, name: str, role: str, password: str, dek: bytes,
                    now: datetime, *, replace: bool = False, must_change: bool = False) -> None:
        salt = keyslots.new_salt()
        verifier, kek = keyslots.derive(password, salt, self._kdf, login)
        stamp = now.isoformat()
        values = {"name": name, "role": role, "kdf_salt": salt,
                  "kdf_memory_kib": self._kdf.memory_kib, "kdf_iterations": self._kdf.iterations,
                  "kdf_lanes": self._kdf.lanes, "pw_verifier": verifier,
                  "must_change": must_change, "failed_count": 0, "locked_until": None,
                  "password_changed_at": stamp}
        if replace:
            conn.execute(update(AppUser).where(AppUser.login == login).values(**values))
            conn.execute(delete(KeySlot).where(KeySlot.login == login))
        else:
            conn.execute(insert(AppUser).values(login=login, disabled=False, created_at=stamp,
                                                **values))
        slot_id = uuid.uuid4().hex
        conn.execute(insert(KeySlot).values(
            id=slot_id, login=login, purpose=keyslots.DEK_PURPOSE, key_id=keyslots.key_id(dek),
            wrapped=keyslots.wrap(dek, kek, slot_id=slot_id, login=login, role=role),
            created_at=stamp))

    def _audit(self, login: str, role: str) -> AuditLog:
        return AuditLog(self._engine, Actor(self._settings.fixmedins_code, self._settings.terminal,
                                            (login or "")[:20], role), self._clock)


def _clean_login(login: str) -> str:
    login = (login or "").strip()
    if not login or len(login) > 20 or not all(c.isalnum() or c in "._-" for c in login):
        raise AuthError("用户名须为 1–20 位字母、数字或 . _ -", f"bad login {login!r}")
    return login


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 40:
        raise AuthError("姓名不能为空，且不超过 40 个字", "bad name")
    return name


def _shred(path) -> None:
    try:
        shred(path)
    except OSError as exc:
        log.error("could not remove legacy key file %s: %s", path, exc)


def login_from_env_or_prompt(settings: Settings, engine=None) -> Session:
    """CLINIC_USER + CLINIC_PASSWORD (automation, tests), else a prompt on a terminal."""
    user, password = os.environ.get("CLINIC_USER"), os.environ.get("CLINIC_PASSWORD")
    if not (user and password):
        if not sys.stdin.isatty():
            raise AuthError("需要登录：设置 CLINIC_USER/CLINIC_PASSWORD 或在终端运行",
                            "no credentials and no tty")
        user = user or input("用户名：").strip()
        password = getpass.getpass("密码：")
    own = engine is None
    if own:
        from .db import open_database
        engine = open_database(settings.db_path)
    try:
        return UserStore(engine, settings).login(user, password)
    finally:
        if own:
            engine.dispose()
