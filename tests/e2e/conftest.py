"""The real processes every end-to-end test talks to: simulator and virtual reader."""
from __future__ import annotations

import pytest

from clinic.services import start_reader, start_simulator


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    work = tmp_path_factory.mktemp("services")
    sim = start_simulator(work / "insurer.db")
    reader = start_reader()
    yield sim.address, reader.address, work / "insurer.db"
    reader.stop()
    sim.stop()
