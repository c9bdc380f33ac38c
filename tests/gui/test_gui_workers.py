"""The task runner: work happens off the GUI thread, one call at a time, answers come back on it."""
from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QThread

from clinic.gui.workers import TaskRunner

pytestmark = pytest.mark.gui


@pytest.fixture
def runner():
    """A runner whose pool is drained at the end: a thread left to the interpreter's exit
    takes its Qt objects down in no safe order (seen as an abort after the last test)."""
    made = TaskRunner()
    yield made
    made.shutdown()


def test_work_runs_off_the_gui_thread_and_callbacks_on_it(qtbot, qapp, runner):
    seen = {}

    def work():
        seen["work"] = QThread.currentThread()
        return 42

    runner.submit(work, lambda r: seen.update(ok=(r, QThread.currentThread())), seen.update)
    qtbot.waitUntil(lambda: "ok" in seen)
    assert seen["work"] is not qapp.thread()
    assert seen["ok"] == (42, qapp.thread())


def test_calls_never_overlap_so_one_sqlite_engine_is_safe(qtbot, runner):
    active, overlaps, done = [0], [], []
    lock = threading.Lock()

    def work():
        with lock:
            active[0] += 1
            overlaps.append(active[0])
        time.sleep(0.01)  # long enough that a second thread would overlap
        with lock:
            active[0] -= 1

    for _ in range(5):
        runner.submit(work, done.append, done.append)
    qtbot.waitUntil(lambda: len(done) == 5)
    assert max(overlaps) == 1


def test_an_exception_in_work_reaches_the_error_callback_and_busy_clears(qtbot, runner):
    states, errors = [], []
    runner.busyChanged.connect(states.append)

    def work():
        raise ValueError("boom")

    runner.submit(work, lambda r: None, errors.append)
    assert runner.busy
    qtbot.waitUntil(lambda: bool(errors))
    assert isinstance(errors[0], ValueError) and not runner.busy and states == [True, False]


def test_quiet_work_does_not_mark_the_runner_busy(qtbot, runner):
    results = []
    runner.submit(lambda: 1, results.append, results.append, quiet=True)
    assert not runner.busy and not runner.idle
    qtbot.waitUntil(lambda: results == [1])
    assert runner.idle
