"""Control channel of a running virtual reader: swap cards and inject faults from outside.

``clinic reader emulate --control PATH`` listens on a Unix socket at PATH (loopback only by
construction; file mode 0600); ``clinic reader ctl --control PATH ...`` or any program sends
one JSON object per line and reads one JSON answer per line::

    {"op": "insert", "card": {...}}      -> the card factory builds a VirtualCard from "card"
    {"op": "remove"}
    {"op": "fault", "kind": "crc", "count": 2, "after": 0, "delay": 0.0}
    {"op": "clear"}                      -> all faults off
    {"op": "status"}
    answer: {"ok": true, "card": bool, "faults": {...}} or {"ok": false, "error": "..."}

Fault kinds (``FAULT_KINDS``) map onto ``VirtualReader``'s fault methods: noise, crc (damaged
CRC), partial (answers in pieces), slow (answer after ``delay`` s), pull (card pulled after
``count`` APDUs), silent (reader stops answering, after ``after`` answers), mute (card does not
answer), nak (requests NAKed).  What goes into "card" is up to the factory the owner passes
(``clinic`` maps a registry card number and a state to a VirtualCard).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from .cardfile import VirtualCard
from .emulator import VirtualReader

log = logging.getLogger(__name__)

FAULT_KINDS = ("noise", "crc", "partial", "slow", "pull", "silent", "mute", "nak")
CardFactory = Callable[[dict[str, Any]], VirtualCard]
_MAX_REQUEST = 64 * 1024


class ControlError(ValueError):
    pass


def apply_fault(reader: VirtualReader, kind: str, count: int = 1, after: int = 0,
                delay: float = 0.0) -> None:
    count = max(1, int(count))
    after = max(0, int(after))
    if kind == "noise":
        reader.add_noise(answers=count)
    elif kind == "crc":
        reader.corrupt_answers(count, after=after)
    elif kind == "partial":
        reader.split_answers(count, pieces=3, delay=delay or 0.05)
    elif kind == "slow":
        reader.slow(delay or 1.0)
    elif kind == "pull":
        reader.pull_card_after(count)
    elif kind == "silent":
        reader.set_silent(True, after=after)
    elif kind == "mute":
        reader.mute_card(True)
    elif kind == "nak":
        reader.nak_requests(count)
    else:
        raise ControlError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")


class ControlServer:
    """Serve control requests for ``reader`` on a Unix socket at ``path`` (own thread)."""

    def __init__(self, reader: VirtualReader, path: str | os.PathLike,
                 card_factory: CardFactory | None = None):
        self.reader = reader
        self.path = os.fspath(path)
        self.card_factory = card_factory
        if os.path.exists(self.path):
            os.unlink(self.path)   # a stale socket from a killed emulator
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self._sock.bind(self.path)
        finally:
            os.umask(old)
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reader-control", daemon=True)

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2.0)
                try:
                    self._serve(conn)
                except OSError as e:
                    log.info("control connection dropped: %s", e)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        while not self._stop.is_set():
            while b"\n" not in buf:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
                if len(buf) > _MAX_REQUEST:
                    conn.sendall(_line({"ok": False, "error": "request too long"}))
                    return
            line, buf = buf.split(b"\n", 1)
            conn.sendall(_line(self.handle(line)))

    def handle(self, line: bytes) -> dict[str, Any]:
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ControlError("request must be a JSON object")
            op = req.get("op")
            if op == "insert":
                if self.card_factory is None:
                    raise ControlError("this reader has no card factory")
                self.reader.insert(self.card_factory(req.get("card") or {}))
            elif op == "remove":
                self.reader.remove()
            elif op == "fault":
                apply_fault(self.reader, str(req.get("kind")), req.get("count", 1),
                            req.get("after", 0), float(req.get("delay", 0.0)))
            elif op == "clear":
                self.reader.clear_faults()
            elif op != "status":
                raise ControlError(f"unknown op {op!r}")
        except (ControlError, ValueError, TypeError, KeyError) as e:
            return {"ok": False, "error": str(e)}
        faults = {k: v for k, v in asdict(self.reader.faults).items()
                  if v not in (0, 0.0, None, False) and k not in ("noise", "split_pieces",
                                                                  "split_delay")}
        return {"ok": True, "card": self.reader.card is not None, "faults": faults}


def _line(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def control_request(path: str | os.PathLike, request: dict[str, Any],
                    timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to a running emulator's control socket; return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(os.fspath(path))
        s.sendall(_line(request))
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("control channel closed without an answer")
            buf += chunk
    return json.loads(buf.split(b"\n", 1)[0])
