"""Users, passwords, lockout and the data key a login unwraps (clinic.auth)."""
import json
import sqlite3
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from clinic.auth import (
    AccountDisabled,
    AccountLocked,
    AuthError,
    BadCredentials,
    NoUsersYet,
    Session,
    UserStore,
    WrongProfile,
    lock_duration,
    login_from_env_or_prompt,
)
from clinic.config import Settings
from clinic.crypto import FieldCipher
from clinic.db import open_database
from clinic.errors import NotAllowed
from clinic.keyslots import DEFAULT_KDF, OWASP_MIN_KDF, KdfParams
from clinic.models import AuditEvent, KeySlot

FAST = KdfParams(memory_kib=64, iterations=1, lanes=1)  # tests only; stored per user
PW = "correct horse 1"


class FakeClock:
    def __init__(self):
        self.now = datetime(2026, 11, 30, 9, 0, 0)

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += timedelta(**kw)


@pytest.fixture
def env(tmp_path):
    settings = Settings(home=tmp_path)
    engine = open_database(settings.db_path)
    clock = FakeClock()
    store = UserStore(engine, settings, clock=clock, kdf=FAST)
    yield settings, engine, clock, store
    engine.dispose()


def test_default_kdf_is_at_least_owasp_minimum():
    assert DEFAULT_KDF.memory_kib >= 19456 and DEFAULT_KDF.iterations >= 2
    assert DEFAULT_KDF.at_least(OWASP_MIN_KDF)
    assert (DEFAULT_KDF.memory_kib, DEFAULT_KDF.iterations, DEFAULT_KDF.lanes) == (65536, 3, 1)


def test_login_before_any_user_asks_for_user_init(env):
    _, _, _, store = env
    assert not store.has_users()
    with pytest.raises(NoUsersYet) as exc:
        store.login("admin", PW)
    assert "clinic user init" in exc.value.message and exc.value.exit_code == 6


def test_first_admin_logs_in_and_gets_the_same_data_key(env):
    _, _, _, store = env
    first = store.create_first_admin("admin", "王管理", PW)
    assert first.operator.role == "admin" and len(first.data_key) == 32
    again = store.login("admin", PW)
    assert again.data_key == first.data_key and again.operator.opter_name == "王管理"
    assert not again.must_change_password
    assert "data_key" not in repr(again) and first.data_key.hex() not in repr(again)


def test_second_first_admin_is_refused(env):
    _, _, _, store = env
    store.create_first_admin("admin", "王管理", PW)
    with pytest.raises(AuthError):
        store.create_first_admin("admin2", "李管理", PW)


def test_short_password_is_refused_in_chinese(env):
    _, _, _, store = env
    with pytest.raises(AuthError) as exc:
        store.create_first_admin("admin", "王管理", "short")
    assert "至少 8 位" in exc.value.message


def test_wrong_password_and_unknown_user_are_refused(env):
    _, _, _, store = env
    store.create_first_admin("admin", "王管理", PW)
    with pytest.raises(BadCredentials) as exc:
        store.login("admin", "wrong password")
    assert "还可再试 4 次" in exc.value.message
    with pytest.raises(BadCredentials):
        store.login("nobody", PW)


def test_lockout_after_five_failures_backs_off_and_survives_restart(env):
    settings, engine, clock, store = env
    store.create_first_admin("admin", "王管理", PW)
    for _ in range(4):
        with pytest.raises(BadCredentials):
            store.login("admin", "bad password")
    with pytest.raises(AccountLocked) as exc:
        store.login("admin", "bad password")
    assert exc.value.until == clock.now + timedelta(seconds=30)
    # Locked: even the right password is refused, and a new process sees the same lock.
    engine.dispose()
    store = UserStore(open_database(settings.db_path), settings, clock=clock, kdf=FAST)
    with pytest.raises(AccountLocked) as exc:
        store.login("admin", PW)
    assert "分钟后再试" in exc.value.message
    clock.advance(seconds=31)
    with pytest.raises(AccountLocked) as exc:  # the 6th failure doubles the lock
        store.login("admin", "bad password")
    assert exc.value.until == clock.now + timedelta(seconds=60)
    clock.advance(seconds=61)
    with pytest.raises(AccountLocked) as exc:
        store.login("admin", "bad password")
    assert exc.value.until == clock.now + timedelta(seconds=120)
    clock.advance(seconds=121)
    assert store.login("admin", PW).operator.opter == "admin"  # success resets the count
    with pytest.raises(BadCredentials) as exc:
        store.login("admin", "bad password")
    assert "还可再试 4 次" in exc.value.message


def test_lock_grows_to_fifteen_minutes_at_most():
    assert lock_duration(4) is None
    assert lock_duration(5) == timedelta(seconds=30)
    assert lock_duration(6) == timedelta(seconds=60)
    assert lock_duration(10) == timedelta(minutes=15)
    assert lock_duration(100) == timedelta(minutes=15)


def test_idle_unlock_shares_the_lockout_accounting(env):
    _, _, clock, store = env
    s = store.create_first_admin("admin", "王管理", PW)
    assert store.verify_password(s, PW)
    for _ in range(4):
        assert not store.verify_password(s, "nope nope")
    with pytest.raises(AccountLocked):
        store.verify_password(s, "nope nope")
    with pytest.raises(AccountLocked):
        store.login("admin", PW)
    clock.advance(seconds=31)
    assert store.verify_password(s, PW)


def test_disabled_user_cannot_log_in_and_its_slot_is_gone(env):
    _, engine, _, store = env
    admin = store.create_first_admin("admin", "王管理", PW)
    store.add_user(admin, "w1", "张医生", "worker", "worker pass 1")
    assert store.login("w1", "worker pass 1").data_key == admin.data_key
    store.disable_user(admin, "w1")
    with engine.connect() as conn:
        assert conn.execute(select(KeySlot).where(KeySlot.login == "w1")).first() is None
    with pytest.raises(AccountDisabled):
        store.login("w1", "worker pass 1")
    assert [u.disabled for u in store.users() if u.login == "w1"] == [True]


def test_last_admin_cannot_be_disabled(env):
    _, _, _, store = env
    admin = store.create_first_admin("admin", "王管理", PW)
    store.add_user(admin, "a2", "李管理", "admin", "admin two pw")
    a2 = store.login("a2", "admin two pw")
    store.disable_user(a2, "admin")
    with pytest.raises(AuthError):
        store.disable_user(a2, "a2")


def test_trainee_refused_outside_training(tmp_path):
    real = Settings(home=tmp_path / "real")
    engine = open_database(real.db_path)
    store = UserStore(engine, real, kdf=FAST)
    admin = store.create_first_admin("admin", "王管理", PW)
    with pytest.raises(WrongProfile):
        store.add_user(admin, "t1", "学员甲", "trainee", "trainee pw 1")
    # Created in training, then the same database opened by a real profile: refused to log in.
    training = Settings(home=tmp_path / "real", training=True)
    UserStore(engine, training, kdf=FAST).add_user(admin, "t1", "学员甲", "trainee", "trainee pw 1")
    assert UserStore(engine, training, kdf=FAST).login("t1", "trainee pw 1").operator.role == "trainee"
    with pytest.raises(WrongProfile):
        store.login("t1", "trainee pw 1")
    # Workers and admins log in in both profiles.
    assert UserStore(engine, training, kdf=FAST).login("admin", PW).operator.role == "admin"
    engine.dispose()


@pytest.mark.parametrize("role", ["worker", "supervisor", "trainee"])
def test_only_admin_may_manage_users(env, role):
    settings, engine, _, store = env
    admin = store.create_first_admin("admin", "王管理", PW)
    training = UserStore(engine, Settings(home=settings.home, training=True), kdf=FAST)
    training.add_user(admin, "u1", "某人", role, "user one pw")
    user = training.login("u1", "user one pw")
    for attempt in (lambda: store.add_user(user, "u2", "某人二", "worker", "user two pw"),
                    lambda: store.disable_user(user, "admin"),
                    lambda: store.reset_password(user, "admin", "new admin pw")):
        with pytest.raises(NotAllowed):
            attempt()
    assert store.login("admin", PW).operator.role == "admin"  # nothing changed


def test_reset_sets_must_change_and_change_clears_it(env):
    _, _, _, store = env
    admin = store.create_first_admin("admin", "王管理", PW)
    store.add_user(admin, "w1", "张医生", "worker", "worker pass 1")
    store.reset_password(admin, "w1", "temporary 1")
    with pytest.raises(BadCredentials):
        store.login("w1", "worker pass 1")
    s = store.login("w1", "temporary 1")
    assert s.must_change_password and s.data_key == admin.data_key
    s2 = store.change_password(s, "temporary 1", "my own secret")
    assert not s2.must_change_password
    s3 = store.login("w1", "my own secret")
    assert not s3.must_change_password and s3.data_key == admin.data_key
    with pytest.raises(BadCredentials):
        store.change_password(s3, "not the old one", "another secret")


def test_a_role_edited_in_the_database_does_not_open_the_key(env):
    settings, _, _, store = env
    admin = store.create_first_admin("admin", "王管理", PW)
    store.add_user(admin, "w1", "张医生", "worker", "worker pass 1")
    con = sqlite3.connect(settings.db_path)
    con.execute("UPDATE app_user SET role = 'admin' WHERE login = 'w1'")
    con.commit()
    con.close()
    with pytest.raises(AuthError) as exc:
        store.login("w1", "worker pass 1")
    assert "数据密钥" in exc.value.message


def test_legacy_key_file_is_adopted_then_removed(env):
    settings, _, _, store = env
    settings.keys_dir.mkdir(parents=True)
    legacy = bytes(range(32))
    (settings.keys_dir / "data.key").write_bytes(legacy)
    sealed = FieldCipher(legacy).seal_text("旧数据", "visit.person_sealed|v1")
    s = store.create_first_admin("admin", "王管理", PW)
    assert s.data_key == legacy
    assert not (settings.keys_dir / "data.key").exists()
    assert FieldCipher(store.login("admin", PW).data_key).open_text(
        sealed, "visit.person_sealed|v1") == "旧数据"


def test_weaker_stored_parameters_are_raised_at_the_next_login(env):
    settings, engine, clock, store = env
    store.create_first_admin("admin", "王管理", PW)
    stronger = KdfParams(memory_kib=128, iterations=2, lanes=1)
    key = store.login("admin", PW).data_key
    s = UserStore(engine, settings, clock=clock, kdf=stronger).login("admin", PW)
    assert s.data_key == key
    con = sqlite3.connect(settings.db_path)
    assert con.execute("SELECT kdf_memory_kib, kdf_iterations FROM app_user").fetchone() == (128, 2)
    assert UserStore(engine, settings, clock=clock, kdf=stronger).login("admin", PW).data_key == key


def test_audit_records_logins_and_user_changes_without_passwords(env):
    _, engine, _, store = env
    admin = store.create_first_admin("admin", "王管理", PW)
    store.add_user(admin, "w1", "张医生", "worker", "worker pass 1")
    with pytest.raises(BadCredentials):
        store.login("w1", "wrong wrong")
    s = store.login("w1", "worker pass 1")
    store.reset_password(admin, "w1", "temporary 1")
    s = store.login("w1", "temporary 1")
    store.change_password(s, "temporary 1", "my own secret")
    store.disable_user(admin, "w1")
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.operator, AuditEvent.action, AuditEvent.object,
                                   AuditEvent.outcome, AuditEvent.details)
                            .order_by(AuditEvent.seq)).all()
    seen = [(r.operator, r.action, r.outcome) for r in rows]
    assert ("admin", "user_add", "ok") in seen
    assert ("w1", "login", "failed") in seen
    assert ("admin", "password_reset", "ok") in seen
    assert ("w1", "password_change", "ok") in seen
    assert ("admin", "user_disable", "ok") in seen
    text = json.dumps([list(r) for r in rows], ensure_ascii=False)
    for secret in (PW, "worker pass 1", "wrong wrong", "temporary 1", "my own secret",
                   admin.data_key.hex()):
        assert secret not in text


def test_login_from_env(env, monkeypatch):
    settings, engine, _, store = env
    store.create_first_admin("admin", "王管理", PW)
    monkeypatch.setenv("CLINIC_USER", "admin")
    monkeypatch.setenv("CLINIC_PASSWORD", PW)
    s = login_from_env_or_prompt(settings, engine)
    assert isinstance(s, Session) and s.operator.opter == "admin"


def test_login_without_env_or_tty_says_how(env, monkeypatch):
    settings, engine, _, _ = env
    monkeypatch.delenv("CLINIC_USER", raising=False)
    monkeypatch.delenv("CLINIC_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    with pytest.raises(AuthError) as exc:
        login_from_env_or_prompt(settings, engine)
    assert "CLINIC_USER" in exc.value.message
