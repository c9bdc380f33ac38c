"""Shared fixtures: every test gets its own data directories, never the user's."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_homes(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.mktemp("homes")
    monkeypatch.setenv("CLINIC_HOME", str(base / "clinic"))
    monkeypatch.setenv("CLINIC_TRAINING_HOME", str(base / "clinic-training"))
    for var in ("CLINIC_NETWORK", "CLINIC_READER", "CLINIC_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    # `clinic` processes log in as the test administrator (auth_helpers.ensure_admin makes it).
    from auth_helpers import TEST_ADMIN, TEST_PASSWORD
    monkeypatch.setenv("CLINIC_USER", TEST_ADMIN)
    monkeypatch.setenv("CLINIC_PASSWORD", TEST_PASSWORD)
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


@pytest.fixture
def cli_admin(isolated_homes):
    """The isolated home's administrator, for tests that start `clinic` processes themselves."""
    import os
    from pathlib import Path

    from auth_helpers import ensure_admin
    ensure_admin(Path(os.environ["CLINIC_HOME"]))


@pytest.fixture
def cli_supervisor(cli_admin, monkeypatch):
    """`clinic` processes log in as a town supervisor (added by the home's administrator)."""
    import os
    from pathlib import Path

    from auth_helpers import make_user

    from clinic.config import load_settings
    make_user(load_settings(home=Path(os.environ["CLINIC_HOME"])), "super", "supervisor")
    monkeypatch.setenv("CLINIC_USER", "super")
