"""Garbage collection on the GUI thread only, after Anki's GarbageCollector.

Python's collector runs in whichever thread happens to allocate when a threshold is crossed:
on a desk worker thread it may finalize Qt objects that belong to the GUI thread, and Qt then
crashes the process (seen as a segmentation fault in a worker). Automatic collection is turned
off and the same generational thresholds are checked by a timer on the GUI thread instead.
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 1000
_NAME = "clinic-gui-thread-gc"


class GuiThreadGC(QObject):
    def __init__(self, parent: QObject, interval_ms: int = INTERVAL_MS):
        super().__init__(parent)
        self.setObjectName(_NAME)
        self._thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)

    def stop(self) -> None:
        """Hand collection back to Python (when Qt's event loop will no longer run the timer)."""
        self._timer.stop()
        self.setObjectName("")
        gc.collect()  # here, on the GUI thread, while the Qt objects' owners still exist
        gc.enable()

    def check(self) -> None:
        counts = gc.get_count()
        for generation in (2, 1, 0):  # the oldest generation due also collects the younger ones
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                return


def install(app: QObject) -> GuiThreadGC:
    """Once per application; later calls return the one already running."""
    existing = app.findChild(GuiThreadGC, _NAME)
    if existing is None:
        return GuiThreadGC(app)
    gc.disable()
    return existing
