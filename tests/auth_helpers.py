"""Logging in for tests: the first administrator of a test home, created on first use.

The autouse fixture in conftest.py exports CLINIC_USER/CLINIC_PASSWORD, so `clinic` processes a
test starts log in as this administrator once `ensure_admin(home)` has created it.
"""
from __future__ import annotations

from pathlib import Path

TEST_ADMIN = "admin"
TEST_ADMIN_NAME = "测试管理员"
TEST_PASSWORD = "correct-horse-1"


def admin_session(settings):
    """Log in as the home's administrator, creating it first if the home has no users."""
    from clinic.auth import UserStore
    from clinic.db import open_database
    engine = open_database(settings.db_path)
    try:
        store = UserStore(engine, settings)
        if store.has_users():
            return store.login(TEST_ADMIN, TEST_PASSWORD)
        return store.create_first_admin(TEST_ADMIN, TEST_ADMIN_NAME, TEST_PASSWORD)
    finally:
        engine.dispose()


_ENSURED: set[Path] = set()


def ensure_admin(home: Path, *, training: bool = False) -> None:
    """Create the home's administrator if it has none (no login: that costs a key derivation)."""
    home = Path(home)
    if home in _ENSURED and (home / "clinic.db").exists():
        return
    from clinic.auth import UserStore
    from clinic.config import load_settings
    from clinic.db import open_database
    settings = load_settings(home=home, training=training)
    engine = open_database(settings.db_path)
    try:
        store = UserStore(engine, settings)
        if not store.has_users():
            store.create_first_admin(TEST_ADMIN, TEST_ADMIN_NAME, TEST_PASSWORD)
    finally:
        engine.dispose()
    _ENSURED.add(home)


def make_user(settings, login: str, role: str, password: str = TEST_PASSWORD):
    """Another user of the home (added by its administrator); returns their session."""
    from clinic.auth import UserStore
    from clinic.db import open_database
    admin = admin_session(settings)
    engine = open_database(settings.db_path)
    try:
        store = UserStore(engine, settings)
        store.add_user(admin, login, f"测试{role}", role, "given-by-admin-1")
        first = store.login(login, "given-by-admin-1")   # must change it before anything else
        return store.change_password(first, "given-by-admin-1", password)
    finally:
        engine.dispose()
