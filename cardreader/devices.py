"""Remember which serial port is the card reader, across restarts and re-plugging.

``DeviceStore(path)`` keeps the choice in a small JSON file the caller names (the desk puts it
in its data directory).  With the port's USB id and serial number saved too, ``resolve()``
finds the reader again when the OS gives it another name after re-plugging (ttyUSB0 ->
ttyUSB1, COM3 -> COM4); ``ReaderService(resolve_url=store.resolve)`` asks it before every
reconnection attempt.  Writes are atomic (temp file + rename), so a power cut leaves the old
choice or the new one, never half a file.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .ports import SerialPort, list_serial_ports

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReaderChoice:
    url: str                          # device path or pyserial URL given to CardReader
    baudrate: int = 115200
    usb_id: str = ""                  # "1A86:7523" when chosen from a USB port
    serial_number: str = ""
    description: str = ""

    @classmethod
    def from_port(cls, port: SerialPort, baudrate: int = 115200) -> ReaderChoice:
        return cls(port.device, baudrate, port.usb_id, port.serial_number or "",
                   port.description or "")


class DeviceStore:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def load(self) -> ReaderChoice | None:
        """The saved choice, or None (nothing saved, or an unreadable file -- logged)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            d = raw["reader"]
            return ReaderChoice(str(d["url"]), int(d.get("baudrate", 115200)),
                                str(d.get("usb_id", "")), str(d.get("serial_number", "")),
                                str(d.get("description", "")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("reader choice in %s unreadable (%s); choose the port again",
                        self.path, type(e).__name__)
            return None

    def save(self, choice: ReaderChoice) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"version": 1, "reader": asdict(choice)}, ensure_ascii=False, indent=2)
        fd, tmp = tempfile.mkstemp(prefix=".reader-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def forget(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def resolve(self, ports: Callable[[], list[SerialPort]] = list_serial_ports) -> str | None:
        """The URL to open now: the saved one if that device exists (or is a URL, not a
        path); else a port with the saved USB id (and serial number, if saved); else the
        saved one anyway (it may come back).  None if nothing is saved."""
        choice = self.load()
        if choice is None:
            return None
        if "://" in choice.url or os.path.exists(choice.url) or not choice.usb_id:
            return choice.url
        try:
            candidates = [p for p in ports() if p.usb_id == choice.usb_id
                          and (not choice.serial_number or p.serial_number == choice.serial_number)]
        except Exception:
            log.exception("listing serial ports failed")
            candidates = []
        if len(candidates) == 1:
            log.info("reader %s found again on %s", choice.usb_id, candidates[0].device)
            return candidates[0].device
        return choice.url
