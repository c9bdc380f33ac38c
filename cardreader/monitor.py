"""Card insertion/removal as events (like pyscard's CardMonitor), by polling CARD_STATUS.

Callbacks run on the monitor's thread; a GUI must hand them over to its own thread.  The
reader's lock keeps the poll from interleaving with a read_card running elsewhere.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .driver import CardReader
from .errors import CardReaderError

log = logging.getLogger(__name__)


class CardMonitor:
    def __init__(self, reader: CardReader, *, on_insert: Callable[[], None] | None = None,
                 on_remove: Callable[[], None] | None = None,
                 on_error: Callable[[CardReaderError], None] | None = None,
                 interval: float = 0.5):
        self.reader = reader
        self.on_insert, self.on_remove, self.on_error = on_insert, on_remove, on_error
        self.interval = interval
        self.present: bool | None = None   # unknown until the first successful poll
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """One look at the slot; fires on_insert/on_remove on a change, on_error once per
        outage (not every poll) so a log is not flooded while the cable is out."""
        try:
            present = self.reader.card_present()
        except CardReaderError as e:
            if not self._failing and self.on_error:
                self._call(self.on_error, e)
            self._failing = True
            return
        self._failing = False
        if present != self.present:
            first = self.present is None
            self.present = present
            if present and self.on_insert:
                self._call(self.on_insert)
            elif not present and not first and self.on_remove:
                self._call(self.on_remove)

    def start(self) -> CardMonitor:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="card-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 4 * self.reader.timeout + 1)
        self._thread = None

    def __enter__(self) -> CardMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    @staticmethod
    def _call(fn: Callable, *args) -> None:
        try:
            fn(*args)
        except Exception:  # a bad handler must not kill the monitor
            log.exception("card monitor callback failed")
