"""Shared fixtures: every test gets its own data directories, never the user's."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_homes(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.mktemp("homes")
    monkeypatch.setenv("CLINIC_HOME", str(base / "clinic"))
    monkeypatch.setenv("CLINIC_TRAINING_HOME", str(base / "clinic-training"))
    for var in ("CLINIC_NETWORK", "CLINIC_READER", "CLINIC_OPERATOR", "CLINIC_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    return base


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test (dropped afterwards).

    `make test` starts a throwaway cluster and sets CLINIC_TEST_PG_URL; without it the test is
    skipped on a developer's machine but fails in CI, where PostgreSQL is part of the job.
    """
    import os
    import uuid

    base = os.environ.get("CLINIC_TEST_PG_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("CLINIC_TEST_PG_URL is not set in CI: scripts/test-postgres.sh did not run")
        pytest.skip("no PostgreSQL for tests (run through `make test`)")
    from sqlalchemy import create_engine, text
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
