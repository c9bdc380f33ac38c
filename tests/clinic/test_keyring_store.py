"""The optional OS keyring holding the data key (clinic.keyring_store), with an in-test backend."""
import sqlite3

import pytest

keyring = pytest.importorskip("keyring")
from keyring.backend import KeyringBackend

from clinic import keyring_store
from clinic.auth import AuthError, KeySlotInvalid, UserStore
from clinic.config import Settings
from clinic.db import open_database
from clinic.errors import NotAllowed
from clinic.keyslots import KdfParams

FAST = KdfParams(memory_kib=64, iterations=1, lanes=1)
PW = "correct horse 1"


class MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self):
        super().__init__()
        self.entries = {}

    def get_password(self, service, username):
        return self.entries.get((service, username))

    def set_password(self, service, username, password):
        self.entries[(service, username)] = password

    def delete_password(self, service, username):
        self.entries.pop((service, username))


@pytest.fixture
def memory_keyring():
    before = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(before)


@pytest.fixture
def store(tmp_path):
    settings = Settings(home=tmp_path)
    engine = open_database(settings.db_path)
    yield settings, UserStore(engine, settings, kdf=FAST)
    engine.dispose()


def _admin_and_worker(users):
    admin = users.create_first_admin("admin", "王管理", PW)
    users.add_user(admin, "w1", "张医生", "worker", "worker pass 1")
    return admin


def _alter(settings, sql):
    """Change the database behind the store's back, as someone with the file could."""
    con = sqlite3.connect(settings.db_path)
    con.execute(sql)
    con.commit()
    con.close()


def test_without_a_usable_backend_the_keyring_is_not_available(store):
    from keyring.backends import fail
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        settings, users = store
        admin = users.create_first_admin("admin", "王管理", PW)
        assert not keyring_store.available() and keyring_store.load_key(settings) is None
        with pytest.raises(AuthError):
            users.enable_keyring(admin)
    finally:
        keyring.set_keyring(before)


def test_keyring_opens_the_data_after_a_verified_password_without_a_slot(store, memory_keyring):
    settings, users = store
    admin = _admin_and_worker(users)
    users.enable_keyring(admin)
    assert admin.data_key.hex() not in str(memory_keyring.entries)  # base64, with fingerprint
    _alter(settings, "DELETE FROM key_slot WHERE login='w1'")
    assert users.login("w1", "worker pass 1").data_key == admin.data_key
    with pytest.raises(AuthError):
        users.login("w1", "wrong password")  # the password is still checked
    users.disable_keyring(admin)
    assert memory_keyring.entries == {}
    with pytest.raises(KeySlotInvalid):
        users.login("w1", "worker pass 1")


def test_a_keyring_key_that_does_not_match_the_slots_is_ignored(store, memory_keyring):
    settings, users = store
    _admin_and_worker(users)
    keyring_store.store_key(settings, bytes(32))  # another key, planted
    _alter(settings, "DELETE FROM key_slot WHERE login='w1'")
    with pytest.raises(KeySlotInvalid):
        users.login("w1", "worker pass 1")


def test_a_tampered_slot_is_refused_even_with_the_keyring(store, memory_keyring):
    settings, users = store
    admin = _admin_and_worker(users)
    users.enable_keyring(admin)
    _alter(settings, "UPDATE key_slot SET wrapped = zeroblob(61) WHERE login='w1'")
    with pytest.raises(KeySlotInvalid):
        users.login("w1", "worker pass 1")


def test_only_an_admin_enables_the_keyring(store, memory_keyring):
    _, users = store
    _admin_and_worker(users)
    with pytest.raises(NotAllowed):
        users.enable_keyring(users.login("w1", "worker pass 1"))
    assert memory_keyring.entries == {}
