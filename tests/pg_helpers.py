"""A fresh PostgreSQL database for tests, from the cluster `make test` starts."""
from __future__ import annotations

import contextlib
import os
import uuid

import pytest


@contextlib.contextmanager
def pg_database():
    """Create an empty database on CLINIC_TEST_PG_URL's server, yield its URL, drop it after.
    Skipped without CLINIC_TEST_PG_URL on a developer's machine; a failure in CI."""
    from sqlalchemy import create_engine, text
    base = os.environ.get("CLINIC_TEST_PG_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("CLINIC_TEST_PG_URL is not set in CI: scripts/test-postgres.sh did not run")
        pytest.skip("no PostgreSQL for tests (run through `make test`)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
