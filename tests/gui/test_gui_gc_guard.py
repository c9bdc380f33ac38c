"""Collection happens on the GUI thread, never in a desk worker (where finalizing Qt objects
crashes the process)."""
from __future__ import annotations

import gc
import threading


def test_automatic_collection_is_off_and_the_gui_thread_collects(desk_app):  # conftest installs it
    from clinic.gui import gc_guard
    guard = gc_guard.install(desk_app)
    assert gc_guard.install(desk_app) is guard          # one per application
    assert not gc.isenabled()

    threads = []
    gc.callbacks.append(lambda phase, info: threads.append(threading.current_thread()))
    try:
        for _ in range(gc.get_threshold()[0] + 10):     # cross generation 0's threshold
            cycle = []
            cycle.append(cycle)
        guard.check()
    finally:
        gc.callbacks.pop()
    assert threads and set(threads) == {threading.main_thread()}
    assert gc.get_count()[0] < gc.get_threshold()[0]


def test_stopping_the_guard_gives_collection_back_to_python(desk_app):
    from clinic.gui import gc_guard
    guard = gc_guard.GuiThreadGC(desk_app)
    guard.stop()
    assert gc.isenabled()
    gc_guard.install(desk_app)                          # the module's guard is still in charge
    assert not gc.isenabled()
