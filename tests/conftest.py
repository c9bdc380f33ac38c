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
    from pg_helpers import pg_database
    with pg_database() as url:
        yield url
