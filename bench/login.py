"""A logged-in session for a benchmark's fresh data directory: its first administrator."""
from __future__ import annotations

import secrets


def first_admin_session(settings):
    from clinic.auth import UserStore
    from clinic.db import open_database
    engine = open_database(settings.db_path)
    try:
        return UserStore(engine, settings).create_first_admin(
            "bench", "基准测试", secrets.token_urlsafe(12))
    finally:
        engine.dispose()
