"""A virtual card reader on a real pseudo-terminal, for the demo, training and tests.

What ``clinic reader emulate`` (or any caller) does::

    from cardreader.cardfile import VirtualCard
    from cardreader.emulator import VirtualReader

    reader = VirtualReader(VirtualCard.from_card_data(card_data, sex="1", birth="19800101"))
    path = reader.open_pty(link)     # link: e.g. "/tmp/clinic-reader", or None
    print(path)                      # "/dev/pts/N" -- give it (or the link) to CardReader
    reader.serve_forever()           # blocks; Ctrl-C or reader.stop() from another thread

Tests use ``reader.start()`` (a daemon thread) and ``reader.stop()``, or ``with reader:``.
``insert(card)`` / ``remove()`` swap the card while serving.

Faults for tests and training (each a method; ``clear_faults()`` undoes them all):
``add_noise(answers, noise)``, ``corrupt_answers(n, after)``, ``split_answers(n, pieces, delay)``,
``slow(delay)``, ``nak_requests(n)``, ``pull_card_after(apdus)``, ``set_silent(flag, after)``,
``mute_card(flag)``.
Cards with a problem are VirtualCards: past expiry date, ``pin_tries_left = 0`` (locked),
or another AID (not a social-security card: SELECT answers 6A82).
``type_pin(*entries)`` queues what the patient types on the reader's PIN pad (None = cancel).

The pty side (``lines.PtyLine``) keeps its own fd on the slave open, so the pty keeps its raw
termios between client sessions; EIO on the master (no slave open) is waited out.
``open_tcp()`` serves ``socket://127.0.0.1:PORT`` instead, for machines without ptys.
"""
from __future__ import annotations

import logging
import os
import threading
import time

from .cardfile import VirtualCard
from .errors import CrcMismatch
from .faults import DEFAULT_NOISE, FaultPlan
from .framing import Frame, FrameDecoder, Kind
from .lines import PtyLine, TcpLine
from .protocol import CARD_POWERED, CARD_PRESENT, Cmd, Status

log = logging.getLogger(__name__)
_IDLE_RESYNC = 0.3  # quiet line with a partial frame pending: its LEN was likely corrupted
_POLL = 0.05

__all__ = ["VirtualCard", "VirtualReader"]  # VirtualCard re-exported for `clinic reader emulate`

# Commands with effects on the card or the patient: a retransmission is answered from cache.
_REPLAYED = frozenset({Cmd.APDU, Cmd.PIN_ENTRY})


class VirtualReader:
    def __init__(self, card: VirtualCard | None = None, *,
                 version: str = "VirtualReader 1.0 (emulator)", dedupe_window: float = 10.0,
                 line_rate: int | None = None):
        self.version = version
        # A pty moves bytes as fast as memory; with ``line_rate`` (baud, 8N1 = 10 bits a byte)
        # the emulator takes as long as a real serial line would: it waits out each request's
        # transfer time before handling it and releases its answers at that rate.
        self.line_rate = line_rate
        self.bytes_in = self.bytes_out = 0      # on the line, both directions, for benchmarks
        self.dedupe_window = dedupe_window
        self.beeps: list[tuple[int, int]] = []   # (ms, led) of every BEEP, for tests and demo
        self.path: str | None = None
        self.link: str | None = None
        self._card = card
        self._powered = False
        self._lock = threading.RLock()
        self._line: PtyLine | TcpLine | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._decoder = FrameDecoder()
        self._last: tuple[bytes, bytes, float] | None = None  # (request, response, when)
        self.faults = FaultPlan()
        self._pin_pad: list[str | None] = []

    # -- card slot --------------------------------------------------------------------

    def insert(self, card: VirtualCard) -> None:
        with self._lock:
            self._card, self._powered, self._last = card, False, None

    def remove(self) -> None:
        """Pull the card out; an APDU after this gets CARD_REMOVED if it was powered."""
        with self._lock:
            self._card, self._last = None, None

    @property
    def card(self) -> VirtualCard | None:
        return self._card

    # -- faults -------------------------------------------------------------------------

    def add_noise(self, answers: int = 1, noise: bytes = DEFAULT_NOISE) -> None:
        """Write ``noise`` on the line before each of the next ``answers`` answer frames."""
        with self._lock:
            self.faults.noise_answers, self.faults.noise = answers, noise

    def corrupt_answers(self, n: int = 1, after: int = 0) -> None:
        """Damage the CRC of ``n`` answer frames (retransmissions included), starting after
        ``after`` intact answers."""
        with self._lock:
            self.faults.corrupt_answers, self.faults.corrupt_after = n, after

    def split_answers(self, n: int = 1, pieces: int = 3, delay: float = 0.05) -> None:
        """Send the next ``n`` answers in ``pieces`` parts, ``delay`` seconds apart."""
        with self._lock:
            f = self.faults
            f.split_answers, f.split_pieces, f.split_delay = n, pieces, delay

    def slow(self, delay: float) -> None:
        """ACK at once but answer only after ``delay`` seconds (0 = normal speed)."""
        with self._lock:
            self.faults.answer_delay = delay

    def nak_requests(self, n: int = 1) -> None:
        """Answer the next ``n`` valid requests with NAK, as if they had arrived damaged."""
        with self._lock:
            self.faults.nak_requests = n

    def pull_card_after(self, apdus: int) -> None:
        """The card is pulled out after ``apdus`` more APDUs have been answered."""
        with self._lock:
            self.faults.pull_card_after_apdus = apdus

    def set_silent(self, silent: bool = True, after: int = 0) -> None:
        """Reader unplugged / dead: bytes are read and dropped, nothing is answered --
        at once, or once ``after`` more answers have gone out."""
        with self._lock:
            if silent and after:
                self.faults.silent_after = after
            else:
                self.faults.silent, self.faults.silent_after = silent, None

    def mute_card(self, mute: bool = True) -> None:
        """The card is in the slot but does not answer (dirty or broken chip)."""
        with self._lock:
            self.faults.card_mute = mute

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = FaultPlan()

    def type_pin(self, *entries: str | None) -> None:
        """Queue PIN-pad entries, one per PIN_ENTRY request; None means the patient cancels."""
        with self._lock:
            self._pin_pad.extend(entries)

    # -- pty and serving --------------------------------------------------------------

    def open_pty(self, link: str | None = None, *, hold_slave: bool = True) -> str:
        """Open a pseudo-terminal; return the slave path; symlink ``link`` to it if given.

        ``hold_slave=False`` closes our slave fd, so the master sees EIO whenever no client
        has the port open (the serving loop waits that out)."""
        self._attach(PtyLine(hold_slave))
        if link:
            if os.path.islink(link):
                os.unlink(link)
            os.symlink(self.path, link)
            self.link = link
        return self.path

    def open_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on TCP instead (one client at a time); returns "socket://host:port", a URL
        CardReader accepts.  For machines without ptys (Windows demos)."""
        self._attach(TcpLine(host, port))
        return self.path

    def _attach(self, line: PtyLine | TcpLine) -> None:
        if self._line is not None:
            line.close()
            raise RuntimeError("this VirtualReader already has a line open")
        self._line, self.path = line, line.address

    def start(self) -> VirtualReader:
        """Serve on a daemon thread (opening a pty first if no line is open)."""
        if self._line is None:
            self.open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self.serve_forever, name="virtual-reader",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        line = self._line
        if line is None:
            raise RuntimeError("call open_pty() or open_tcp() first")
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            data, new_client = line.read(_POLL)
            if new_client:
                self._decoder.reset()  # a half frame from the last client means nothing now
            try:
                if data:
                    quiet_since = time.monotonic()
                    self._on_bytes(data)
                elif self._decoder.pending and time.monotonic() - quiet_since > _IDLE_RESYNC:
                    for frame in self._decoder.resync():
                        self._handle(frame)
            except Exception:  # one bad request must not take the reader down for the day
                log.exception("virtual reader: request handling failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                # Closing now could hand our fd numbers to someone else's files while the
                # thread still writes to them; leak them instead.
                log.warning("virtual reader thread did not stop; leaving its line open")
                return
        self._thread = None
        if self._line is not None:
            self._line.close()
            self._line = None
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)
        self.link = None

    def __enter__(self) -> VirtualReader:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- protocol -----------------------------------------------------------------------

    def _write(self, raw: bytes) -> None:
        if self._line is None:
            return
        self.bytes_out += len(raw)
        if not self.line_rate:
            self._line.write(raw)
            return
        per_byte = 10.0 / self.line_rate
        step = max(1, self.line_rate // 10 // 1000)    # about a millisecond of line time
        start = time.perf_counter()
        for i in range(0, len(raw), step):
            _sleep_until(start + i * per_byte)
            self._line.write(raw[i:i + step])
        _sleep_until(start + len(raw) * per_byte)      # the last byte's stop bit

    def _on_bytes(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.line_rate:
            # These bytes took this long to arrive on a real line; the pty gave them at once.
            _sleep_until(time.perf_counter() + len(data) * 10.0 / self.line_rate)
        if self.faults.silent:
            self._decoder.reset()
            return
        for frame in self._decoder.feed(data):
            self._handle(frame)
        for err in self._decoder.pop_errors():
            if isinstance(err, CrcMismatch):
                self._write(Frame.nak(err.seq).encode())

    def _handle(self, frame: Frame) -> None:
        if frame.kind is not Kind.DATA:
            return  # the host does not ACK answers; stray control frames mean nothing
        request, last = frame.encode(), self._last
        with self._lock:
            if self.faults.take("nak_requests"):
                self._write(Frame.nak(frame.seq).encode())
                return
        self._write(Frame.ack(frame.seq).encode())
        if (frame.code in _REPLAYED and last and last[0] == request
                and time.monotonic() - last[2] < self.dedupe_window):
            response = last[1]   # a retransmission: answer again, do not run it twice
        else:
            status, data = self._execute(frame.code, frame.data)
            response = Frame(frame.seq, status, data).encode()
            # Only card commands are cached; any other command (POWER_ON above all) ends
            # the window, so a new session can never get an old session's answer.
            self._last = (request, response, time.monotonic()) if frame.code in _REPLAYED else None
        with self._lock:
            pieces = self.faults.shape(response)
        for delay, piece in pieces:
            if delay and self._stop.wait(delay):
                return
            self._write(piece)

    def _execute(self, code: int, data: bytes) -> tuple[int, bytes]:
        with self._lock:
            card = self._card
            if code == Cmd.GET_VERSION:
                return Status.OK, self.version.encode("ascii")
            if code == Cmd.CARD_STATUS:
                flags = (CARD_PRESENT if card else 0) | (CARD_POWERED if card and self._powered else 0)
                return Status.OK, bytes((flags,))
            if code == Cmd.POWER_ON:
                if card is None:
                    return Status.NO_CARD, b""
                if self.faults.card_mute:
                    return Status.CARD_MUTE, b""
                self._powered = True
                return Status.OK, card.reset()
            if code == Cmd.POWER_OFF:
                self._powered = False
                return Status.OK, b""
            if code == Cmd.APDU:
                if card is None:
                    return (Status.CARD_REMOVED if self._powered else Status.NO_CARD), b""
                if not self._powered:
                    return Status.NOT_POWERED, b""
                if self.faults.card_mute:
                    return Status.CARD_MUTE, b""
                answer = card.transmit(data)
                self._count_apdu()
                return Status.OK, answer
            if code == Cmd.BEEP:
                if len(data) != 3:
                    return Status.BAD_PARAMETER, b""
                self.beeps.append((int.from_bytes(data[:2], "big"), data[2]))
                return Status.OK, b""
            if code == Cmd.PIN_ENTRY:
                entry = self._pin_pad.pop(0) if self._pin_pad else None
                if entry is None:
                    return Status.PIN_CANCELLED, b""
                return Status.OK, entry.encode("ascii")
            return Status.UNKNOWN_COMMAND, b""

    def _count_apdu(self) -> None:
        left = self.faults.pull_card_after_apdus
        if left is not None:
            self.faults.pull_card_after_apdus = left - 1
            if left - 1 <= 0:
                self.faults.pull_card_after_apdus = None
                self._card = None   # stays "powered": the next APDU gets CARD_REMOVED


def _sleep_until(t: float) -> None:
    left = t - time.perf_counter()
    if left > 0:
        time.sleep(left)
