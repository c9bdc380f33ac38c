"""QR-code scanners for the electronic voucher (医保电子凭证): what comes in, cleaned and checked.

Two kinds of scanner reach the counter:

* a **serial scanner** (USB-serial or RS-232): each code arrives as a line of text ending in
  CR, LF or CR LF.  ``QrScanner(url)`` reads lines on a pyserial port (``read_code`` with a
  timeout, or ``listen(on_code)`` on its own thread); ``VirtualScanner`` plays one on a real
  pseudo-terminal for tests and training.
* a **keyboard wedge** types the code into whatever field has focus, then Enter.  The desk
  app hands the field's text to ``normalize_scanned(text)``.

``normalize_scanned`` undoes what a wedge and the desk's input method do to the text (a
Chinese IME turns ASCII into full-width forms; scanners add CR/LF, tabs, spaces, a BOM), and
refuses what cannot be a voucher code with a ``ScanError`` (Chinese message): empty text,
control characters, non-ASCII, too long -- and an 18-digit ID number, which the worker
should type into the ID-number field instead.  It does not decide whether a code is valid:
only the voucher hub can.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import tty
import unicodedata
from collections.abc import Callable

import serial

from .errors import CardReaderError, ReaderNotFound, ReaderNotResponding

log = logging.getLogger(__name__)

MIN_LEN, MAX_LEN = 8, 512
_POLL = 0.05


class ScanError(CardReaderError):
    default_message = "扫到的内容不是医保电子凭证二维码，请患者打开医保电子凭证后重新扫码"


class ScanTooLong(ScanError):
    default_message = "扫码内容过长，不是医保电子凭证二维码，请重新扫码"


class ScannedIdNumber(ScanError):
    default_message = "扫到的是身份证号码，不是医保电子凭证；请在“身份证号”一栏输入后查询"


def normalize_scanned(text: str) -> str:
    """Clean one scanned code (serial line or keyboard-wedge input) or raise ScanError."""
    if not isinstance(text, str):
        raise ScanError(detail=f"scanned value is {type(text).__name__}")
    # NFKC folds full-width forms (ＡＢＣ１２３) typed through a Chinese IME back to ASCII.
    s = unicodedata.normalize("NFKC", text).replace("\ufeff", "").strip(" \t\r\n")
    if not s:
        raise ScanError("没有扫到内容，请把二维码对准扫码器后重新扫码", detail="empty")
    if len(s) > MAX_LEN:
        raise ScanTooLong(detail=f"{len(s)} chars")
    if not s.isascii() or not s.isprintable():
        raise ScanError(detail="non-ASCII or control characters")
    if len(s) < MIN_LEN:
        raise ScanError(detail=f"only {len(s)} chars")
    if len(s) == 18 and s[:17].isdigit() and s[17] in "0123456789Xx":
        raise ScannedIdNumber(detail="18-digit ID number shape")
    return s


class LineBuffer:
    """Bytes in, lines out: CR, LF and CR LF all end a line; a line longer than ``max_len``
    is dropped up to its end (and reported as too long), so the buffer stays bounded."""

    def __init__(self, max_len: int = MAX_LEN):
        self.max_len = max_len
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[bytes | None]:
        """Complete lines (bytes), or None for a line that was too long."""
        out: list[bytes | None] = []
        for b in data:
            if b in (0x0D, 0x0A):
                if self._overflow:
                    out.append(None)
                elif self._buf:
                    out.append(bytes(self._buf))
                self._buf.clear()
                self._overflow = False
            elif not self._overflow:
                if len(self._buf) >= self.max_len:
                    self._buf.clear()
                    self._overflow = True
                else:
                    self._buf.append(b)
        return out


class QrScanner:
    """A serial QR scanner: ``read_code(timeout)`` returns the next cleaned code or None.

    ``url``: device path or pyserial URL; most scanners default to 9600 8N1."""

    def __init__(self, url: str | os.PathLike, *, baudrate: int = 9600):
        self.url = os.fspath(url)
        self._lines = LineBuffer()
        self._pending: list[bytes | None] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self._port = serial.serial_for_url(self.url, baudrate=baudrate, timeout=_POLL)
        except (serial.SerialException, OSError, ValueError) as e:
            raise ReaderNotFound("找不到扫码器，请检查扫码器连接线，或在设置里选择正确的端口",
                                 detail=f"cannot open scanner {self.url}: {e}") from None

    def read_code(self, timeout: float | None = None) -> str | None:
        """Next code, cleaned (``normalize_scanned``); None if nothing within ``timeout``.
        A line that is not a voucher code raises ScanError; the next call reads on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            try:
                chunk = self._port.read(self._port.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError) as e:
                raise ReaderNotResponding("扫码器连接中断，请检查扫码器连接线后重试",
                                          detail=f"scanner read failed: {e}") from None
            if chunk:
                self._pending += self._lines.feed(chunk)
        line = self._pending.pop(0)
        if line is None:
            raise ScanTooLong(detail=f"line over {MAX_LEN} bytes")
        return normalize_scanned(line.decode("utf-8", "replace"))

    def listen(self, on_code: Callable[[str], None],
               on_error: Callable[[CardReaderError], None] | None = None) -> QrScanner:
        """Read codes on a daemon thread; callbacks run on that thread (a GUI hands them
        over to its own).  A dead port is reported once through on_error, then we stop."""
        def run() -> None:
            while not self._stop.is_set():
                try:
                    code = self.read_code(timeout=0.2)
                except ScanError as e:
                    _call(on_error, e)
                    continue
                except CardReaderError as e:
                    _call(on_error, e)
                    return
                if code is not None:
                    _call(on_code, code)
        self._stop.clear()
        self._thread = threading.Thread(target=run, name="qr-scanner", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass

    def __enter__(self) -> QrScanner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _call(fn: Callable | None, *args) -> None:
    if fn is None:
        return
    try:
        fn(*args)
    except Exception:  # a bad handler must not kill the scanner
        log.exception("scanner callback failed")


class VirtualScanner:
    """A serial QR scanner on a real pseudo-terminal: ``scan(text)`` "reads" a code."""

    def __init__(self, terminator: bytes = b"\r\n"):
        master, slave = os.openpty()
        tty.setraw(slave)
        self.master, self.slave = master, slave
        self.path = os.ttyname(slave)
        self.terminator = terminator

    def scan(self, text: str | bytes, *, terminator: bytes | None = None,
             chunk: int = 0, delay: float = 0.0) -> None:
        """Send one code; ``chunk``/``delay`` split it as a slow UART would."""
        raw = (text.encode("utf-8") if isinstance(text, str) else text) + (
            self.terminator if terminator is None else terminator)
        step = chunk or len(raw)
        for i in range(0, len(raw), step):
            os.write(self.master, raw[i:i + step])
            if delay:
                time.sleep(delay)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> VirtualScanner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
