"""Qt's Python binding must not drop references to None, True and False when it delivers a
signal: on Python 3.11 they are ordinary objects, and PySide6 6.12.0 dropped one per delivery
to a Python slot, so an idle desk (timers firing into Python) aborted within seconds with
"none_dealloc". pyproject.toml keeps that release out; these tests catch any like it."""
from __future__ import annotations

import gc
import sys

import pytest
from PySide6.QtCore import QObject, Signal

from clinic.gui.workers import TaskRunner

pytestmark = pytest.mark.gui

DELIVERIES = 1000


class _Source(QObject):
    bare = Signal()
    flag = Signal(bool)


def _refcounts() -> tuple[int, int, int]:
    gc.collect()  # only what is still referenced counts
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def test_signals_delivered_to_python_slots_keep_none_and_the_bools_alive(qapp):
    source, seen = _Source(), []
    source.bare.connect(lambda: seen.append(1))
    source.flag.connect(lambda value: seen.append(2))
    before = _refcounts()
    for n in range(DELIVERIES):
        source.bare.emit()
        source.flag.emit(n % 2 == 0)
    after = _refcounts()
    assert len(seen) == 2 * DELIVERIES
    assert after == before


def test_the_desk_task_runner_keeps_none_and_the_bools_alive(qtbot):
    runner, results = TaskRunner(), []

    def run(tasks: int) -> None:  # results and errors both cross the thread as (token, ok, value)
        for n in range(tasks):
            runner.submit(lambda n=n: n if n % 2 else 1 // 0, results.append,
                          lambda exc: results.append(-1))
        qtbot.waitUntil(lambda: len(results) == tasks, timeout=30_000)
        results.clear()
    try:
        run(20)  # first use of each path may keep something for good; that is not a leak
        before = _refcounts()
        run(500)
        after = _refcounts()
    finally:
        runner.shutdown()
    # Qt's own wait may keep a few references more; a dropped one per task is the crash.
    assert all(a >= b for a, b in zip(after, before)), (before, after)
