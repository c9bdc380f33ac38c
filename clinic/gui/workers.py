"""Background work for the desk, after Anki's task manager.

All Counter calls go through one single-thread pool: they share one SQLite engine and the
journal assumes one writer, so they must never overlap. Workers only compute and emit; the
result is delivered by a queued signal to a QObject living in the GUI thread, which is the
only place that touches widgets.
"""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Signals(QObject):
    done = Signal(int, bool, object)


class _Task(QRunnable):
    def __init__(self, token: int, fn: Callable[[], Any], signals: _Signals):
        super().__init__()
        self.setAutoDelete(True)
        self._token, self._fn, self._signals = token, fn, signals

    def run(self) -> None:
        try:
            result, ok = self._fn(), True
        except BaseException as exc:  # delivered to the GUI thread, shown there
            result, ok = exc, False
        self._signals.done.emit(self._token, ok, result)


class TaskRunner(QObject):
    """Runs callables one at a time off the GUI thread; callbacks run on the GUI thread."""

    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self._pending: dict[int, tuple[Callable[[Any], None], Callable[[BaseException], None]]] = {}
        self._quiet: set[int] = set()
        self._tokens = itertools.count(1)

    def submit(self, fn: Callable[[], Any], on_ok: Callable[[Any], None],
               on_error: Callable[[BaseException], None], *, quiet: bool = False) -> None:
        """quiet: background refreshes (live verdicts) that must not disable the buttons."""
        token = next(self._tokens)
        was_busy = self.busy
        self._pending[token] = (on_ok, on_error)
        if quiet:
            self._quiet.add(token)
        elif not was_busy:
            self.busyChanged.emit(True)
        self._pool.start(_Task(token, fn, self._signals))

    @property
    def busy(self) -> bool:
        return len(self._pending) > len(self._quiet)

    @property
    def idle(self) -> bool:
        return not self._pending

    def _on_done(self, token: int, ok: bool, result: object) -> None:
        callbacks = self._pending.pop(token, None)
        if callbacks is None:  # shut down meanwhile
            return
        if token in self._quiet:
            self._quiet.discard(token)
        elif not self.busy:
            self.busyChanged.emit(False)
        on_ok, on_error = callbacks
        if ok:
            on_ok(result)
        else:
            on_error(result)  # type: ignore[arg-type]

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Drop queued work and wait for the running call: a settle must finish, not be cut."""
        self._pool.clear()
        self._pool.waitForDone(timeout_ms)
        self._pending.clear()
        self._quiet.clear()
