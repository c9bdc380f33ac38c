"""``ReaderService``: the one thread that talks to the card reader.

As in Electrum's hardware-wallet plugins, every byte to and from the reader goes through a
single dedicated thread, and the UI only sees results and events:

* **requests** -- ``read_card()``, ``version()``, ``beep()`` or any ``submit(fn)`` -- are
  queued and run one at a time on the service thread; each returns a
  ``concurrent.futures.Future`` (``future.result(timeout)``, or ``add_done_callback``).
* **events** -- ``subscribe(listener)``; the listener's methods (all optional, see
  ``ReaderListener``) are called on the service thread: ``reader_connected(version)``,
  ``reader_disconnected(error)``, ``card_inserted()``, ``card_removed()``,
  ``card_read(card)`` / ``card_read_failed(error)`` (with ``auto_read``).  A Qt GUI forwards
  them to its own thread with a queued signal; nothing here imports Qt.
* **reconnection** -- between requests the service polls CARD_STATUS every ``poll_interval``
  seconds.  When the link fails (cable pulled, USB device gone, pty closed) the port is
  closed, ``reader_disconnected`` fires once, and the service re-opens the port every
  ``reconnect_interval`` until a reader answers GET_VERSION again; then
  ``reader_connected`` fires and polling resumes.  ``resolve_url`` (optional) is asked for
  the port before each attempt, so a reader that comes back under another name (ttyUSB0 ->
  ttyUSB1) is found by its USB id (``devices.DeviceStore.resolve``).

A request made while no reader is connected first tries to connect once; if that fails its
future gets the error (``ReaderNotFound`` / ``ReaderNotResponding``, Chinese message).
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from .card import CardData
from .driver import CardReader
from .errors import CardReaderError, ReaderNotFound, ReaderNotResponding
from .protocol import Led

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors that mean "the line is gone", not "this card/this command failed".
LINK_ERRORS = (ReaderNotFound, ReaderNotResponding)


class ReaderListener:
    """What a UI can implement (every method optional; all run on the service thread)."""

    def reader_connected(self, version: str) -> None: ...
    def reader_disconnected(self, error: CardReaderError) -> None: ...
    def card_inserted(self) -> None: ...
    def card_removed(self) -> None: ...
    def card_read(self, card: CardData) -> None: ...
    def card_read_failed(self, error: CardReaderError) -> None: ...


class ReaderService:
    def __init__(self, url: str, *, baudrate: int = 115200, timeout: float = 2.0,
                 poll_interval: float = 0.5, reconnect_interval: float = 1.0,
                 auto_read: bool = False, read_options: dict[str, Any] | None = None,
                 resolve_url: Callable[[], str | None] | None = None,
                 reader_factory: Callable[..., CardReader] = CardReader,
                 terminal_no: str = "", device_no: str = ""):
        self.url = url
        self.baudrate, self.timeout = baudrate, timeout
        self.poll_interval, self.reconnect_interval = poll_interval, reconnect_interval
        self.auto_read, self.read_options = auto_read, dict(read_options or {})
        self.resolve_url = resolve_url
        self._factory = reader_factory
        self._ids = {"terminal_no": terminal_no, "device_no": device_no}
        self._reader: CardReader | None = None
        self._queue: queue.Queue[tuple[Callable[[CardReader], Any], Future] | None] = queue.Queue()
        self._listeners: list[Any] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.present: bool | None = None   # card in the slot; None = unknown
        self.version_string = ""
        self.connects = 0                  # successful (re)connections, for tests and status

    # -- public, any thread -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._reader is not None

    def subscribe(self, listener: Any) -> Callable[[], None]:
        """Add a listener (a ReaderListener or any object with some of its methods);
        returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def submit(self, fn: Callable[[CardReader], T]) -> Future[T]:
        """Run ``fn(reader)`` on the service thread; its result or exception in the future."""
        fut: Future[T] = Future()
        if self._stop.is_set():
            fut.set_exception(ReaderNotFound(detail="reader service stopped"))
        else:
            self._queue.put((fn, fut))
        return fut

    def read_card(self, **options: Any) -> Future[CardData]:
        """``CardReader.read_card(**options)`` on the service thread."""
        return self.submit(lambda r: r.read_card(**options))

    def version(self) -> Future[str]:
        return self.submit(lambda r: r.version())

    def beep(self, ms: int = 100, led: Led = Led.GREEN) -> Future[None]:
        return self.submit(lambda r: r.beep(ms, led))

    def start(self) -> ReaderService:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="card-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout if timeout is not None else 4 * self.timeout + 2)
        self._thread = None

    def __enter__(self) -> ReaderService:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the service thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._reader is None and not self._connect():
                    self._wait_for_work(self.reconnect_interval, connected=False)
                    continue
                self._wait_for_work(self.poll_interval, connected=True)
                if self._reader is not None and not self._stop.is_set():
                    self._poll()
        finally:
            self._disconnect(None)
            self._fail_pending(ReaderNotFound(detail="reader service stopped"))

    def _wait_for_work(self, seconds: float, connected: bool) -> None:
        """Run queued requests until ``seconds`` pass without one."""
        try:
            item = self._queue.get(timeout=seconds)
        except queue.Empty:
            return
        while item is not None:
            fn, fut = item
            if self._stop.is_set():      # stopping: what is still queued fails at once
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(ReaderNotFound(detail="reader service stopped"))
            elif fut.set_running_or_notify_cancel():
                self._execute(fn, fut)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return

    def _execute(self, fn: Callable[[CardReader], Any], fut: Future) -> None:
        if self._reader is None and not self._connect():
            fut.set_exception(self._last_error)
            return
        try:
            result = fn(self._reader)
        except LINK_ERRORS as e:
            self._disconnect(e)
            fut.set_exception(e)
        except BaseException as e:  # noqa: BLE001 -- the caller gets every failure
            fut.set_exception(e)
        else:
            fut.set_result(result)

    _last_error: CardReaderError = ReaderNotFound(detail="not connected yet")

    def _connect(self) -> bool:
        url = self.url
        if self.resolve_url is not None:
            try:
                url = self.resolve_url() or url
            except Exception:
                log.exception("resolve_url failed")
        try:
            reader = self._factory(url, baudrate=self.baudrate, timeout=self.timeout,
                                   **self._ids)
        except CardReaderError as e:
            self._last_error = e
            return False
        try:
            version = reader.version()
        except CardReaderError as e:
            reader.close()
            self._last_error = e
            return False
        self._reader, self.url, self.version_string = reader, url, version
        self.connects += 1
        self.present = None
        log.info("card reader connected on %s", url)
        self._emit("reader_connected", version)
        return True

    def _disconnect(self, error: CardReaderError | None) -> None:
        if self._reader is None:
            return
        self._reader.close()
        self._reader = None
        if self.present:
            self.present = None
        if error is not None:
            self._last_error = error
            log.warning("card reader lost: %s", error.detail)
            self._emit("reader_disconnected", error)

    def _poll(self) -> None:
        try:
            present = self._reader.card_present()
        except LINK_ERRORS as e:
            self._disconnect(e)
            return
        except CardReaderError as e:
            log.info("card status poll failed: %s", e.detail)
            return
        if present == self.present:
            return
        first, self.present = self.present is None, present
        if present:
            self._emit("card_inserted")
            if self.auto_read:
                self._auto_read()
        elif not first:
            self._emit("card_removed")

    def _auto_read(self) -> None:
        try:
            card = self._reader.read_card(**self.read_options)
        except LINK_ERRORS as e:
            self._disconnect(e)
            self._emit("card_read_failed", e)
        except CardReaderError as e:
            self._emit("card_read_failed", e)
        else:
            self._emit("card_read", card)

    def _fail_pending(self, error: CardReaderError) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item[1].set_running_or_notify_cancel():
                item[1].set_exception(error)

    def _emit(self, event: str, *args: Any) -> None:
        for listener in list(self._listeners):
            fn = getattr(listener, event, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:  # a bad listener must not stop the reader
                log.exception("reader listener %s failed", event)


class Callbacks:
    """A listener from plain functions: ``Callbacks(card_inserted=f, card_read=g)``."""

    def __init__(self, **fns: Callable[..., None]):
        unknown = set(fns) - {n for n in vars(ReaderListener) if not n.startswith("_")}
        if unknown:
            raise TypeError(f"unknown reader events: {', '.join(sorted(unknown))}")
        for name, fn in fns.items():
            setattr(self, name, fn)
