"""Crash injection for the exactly-once tests, in the manner of SQLite's own testing.

`CLINIC_CRASH_AT=2207:after_intent` makes the process SIGKILL itself at that point, so a test
can prove that recovery finishes the work whatever instant the power went.
"""
from __future__ import annotations

import os
import signal

ENV = "CLINIC_CRASH_AT"
POINTS = ("after_intent", "after_answer", "after_settled")


def crash_point(point: str, infno: str = "") -> None:
    target = os.environ.get(ENV)
    if target and target in (point, f"{infno}:{point}"):
        os.kill(os.getpid(), signal.SIGKILL)
