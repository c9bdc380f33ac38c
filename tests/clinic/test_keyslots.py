"""Key slots: the data key wrapped under each user's password-derived key (clinic.keyslots)."""
import sqlite3

import pytest

from clinic import keyslots
from clinic.auth import AuthError, BadCredentials, KeySlotInvalid, UserStore
from clinic.config import Settings
from clinic.db import open_database
from clinic.keyslots import KdfParams, SlotInvalid

FAST = KdfParams(memory_kib=64, iterations=1, lanes=1)
PW = "correct horse 1"


@pytest.fixture
def two_users(tmp_path):
    settings = Settings(home=tmp_path)
    engine = open_database(settings.db_path)
    store = UserStore(engine, settings, kdf=FAST)
    admin = store.create_first_admin("admin", "王管理", PW)
    store.add_user(admin, "w1", "张医生", "worker", "worker pass 1")
    yield settings, store, admin
    engine.dispose()


def _sql(settings, statement, *args):
    con = sqlite3.connect(settings.db_path)
    con.execute(statement, args)
    con.commit()
    con.close()


def test_wrap_unwrap_round_trip_and_any_flipped_bit_is_refused():
    dek, kek = keyslots.new_data_key(), keyslots.new_data_key()
    w = keyslots.wrap(dek, kek, slot_id="s1", login="a", role="admin")
    assert dek not in w
    assert keyslots.unwrap(w, kek, slot_id="s1", login="a", role="admin") == dek
    for i in range(1, len(w)):
        bad = bytearray(w)
        bad[i] ^= 0x01
        with pytest.raises(SlotInvalid):
            keyslots.unwrap(bytes(bad), kek, slot_id="s1", login="a", role="admin")


def test_the_associated_data_binds_slot_login_role_and_purpose():
    dek, kek = keyslots.new_data_key(), keyslots.new_data_key()
    w = keyslots.wrap(dek, kek, slot_id="s1", login="a", role="worker")
    for kw in ({"slot_id": "s2", "login": "a", "role": "worker"},
               {"slot_id": "s1", "login": "b", "role": "worker"},
               {"slot_id": "s1", "login": "a", "role": "admin"},
               {"slot_id": "s1", "login": "a", "role": "worker", "purpose": "keyring"}):
        with pytest.raises(SlotInvalid):
            keyslots.unwrap(w, kek, **kw)


def test_derivation_gives_verifier_and_kek_bound_to_the_login():
    salt = b"s" * 16
    v, k = keyslots.derive(PW, salt, FAST, "a")
    assert len(v) == 32 and len(k) == 32 and v != k
    assert keyslots.derive(PW, salt, FAST, "a") == (v, k)
    assert keyslots.derive(PW, salt, FAST, "b") != (v, k)
    assert keyslots.derive("other password", salt, FAST, "a") != (v, k)


def test_a_flipped_bit_in_a_stored_slot_refuses_the_login(two_users):
    settings, store, _ = two_users
    con = sqlite3.connect(settings.db_path)
    wrapped = con.execute("SELECT wrapped FROM key_slot WHERE login='w1'").fetchone()[0]
    con.close()
    bad = bytearray(wrapped)
    bad[20] ^= 0x80
    _sql(settings, "UPDATE key_slot SET wrapped = ? WHERE login = 'w1'", bytes(bad))
    with pytest.raises(KeySlotInvalid) as exc:
        store.login("w1", "worker pass 1")
    assert exc.value.exit_code == 6 and "数据密钥" in exc.value.message


def test_a_slot_copied_to_another_users_row_is_refused(two_users):
    settings, store, _ = two_users
    con = sqlite3.connect(settings.db_path)
    admin_wrapped = con.execute("SELECT wrapped FROM key_slot WHERE login='admin'").fetchone()[0]
    con.close()
    # The admin's wrapped key pasted into the worker's slot: the worker's password is right but
    # the slot does not open.
    _sql(settings, "UPDATE key_slot SET wrapped = ? WHERE login = 'w1'", admin_wrapped)
    with pytest.raises(KeySlotInvalid):
        store.login("w1", "worker pass 1")


def test_a_users_credentials_and_slot_moved_to_another_login_are_refused(two_users):
    settings, store, _ = two_users
    # The admin's salt, verifier and whole slot copied onto the worker's row, hoping the admin's
    # password then opens the data under the worker's name: the derivation and the slot's
    # associated data both name the login, so it is refused.
    con = sqlite3.connect(settings.db_path)
    salt, ver = con.execute("SELECT kdf_salt, pw_verifier FROM app_user "
                            "WHERE login='admin'").fetchone()
    con.execute("UPDATE app_user SET kdf_salt=?, pw_verifier=? WHERE login='w1'", (salt, ver))
    con.execute("DELETE FROM key_slot WHERE login='w1'")
    con.execute("UPDATE key_slot SET login='w1' WHERE login='admin'")
    con.commit()
    con.close()
    with pytest.raises(BadCredentials):
        store.login("w1", PW)
    with pytest.raises(KeySlotInvalid):
        store.login("admin", PW)  # the admin's row no longer has its slot


def test_the_data_key_is_stored_nowhere_in_clear(two_users):
    settings, _, admin = two_users
    raw = settings.db_path.read_bytes()
    wal = settings.db_path.with_name("clinic.db-wal")
    if wal.exists():
        raw += wal.read_bytes()
    assert admin.data_key not in raw
    assert not (settings.keys_dir / "data.key").exists()


def test_an_admin_session_with_another_data_key_cannot_write_slots(two_users):
    _, store, admin = two_users
    from clinic.auth import Session
    forged = Session(admin.operator, keyslots.new_data_key())
    with pytest.raises(AuthError):
        store.add_user(forged, "w2", "李医生", "worker", "worker pass 2")

