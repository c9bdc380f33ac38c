"""GUI tests run headless: the offscreen platform is chosen before any QApplication exists."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def desk_app(qapp):
    """The session QApplication with the desk's CJK font, as `run_desk` sets it up."""
    from clinic.gui.app import configure_app
    configure_app(qapp)
    return qapp
