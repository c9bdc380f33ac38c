"""Which serial ports could be the card reader: for the settings screen's port picker.

Readers are USB devices behind a USB-serial bridge; we show the bridge's USB vid:pid so the
support line can tell "the reader is plugged in" from "the cable is". The bridge chips below
are the common ones; they say nothing about what sits behind them, so USB ports are only
sorted first, never filtered.
"""
from __future__ import annotations

from dataclasses import dataclass

from serial.tools import list_ports

# USB-serial bridge chips (vid, pid) -> name.
KNOWN_BRIDGES: dict[tuple[int, int], str] = {
    (0x1A86, 0x7523): "CH340",
    (0x067B, 0x2303): "PL2303",
    (0x0403, 0x6001): "FTDI FT232R",
    (0x10C4, 0xEA60): "Silicon Labs CP210x",
}


@dataclass(frozen=True)
class SerialPort:
    device: str                 # what to give CardReader: /dev/ttyUSB0, COM3
    description: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None

    @property
    def is_usb(self) -> bool:
        return self.vid is not None

    @property
    def usb_id(self) -> str:
        """"1A86:7523" for a USB device, "" otherwise."""
        return f"{self.vid:04X}:{self.pid or 0:04X}" if self.vid is not None else ""

    @property
    def bridge(self) -> str:
        return KNOWN_BRIDGES.get((self.vid or 0, self.pid or 0), "")

    def label(self) -> str:
        """One line for a port picker, e.g. "/dev/ttyUSB0  USB 1A86:7523 CH340  USB Serial"."""
        parts = [self.device]
        if self.is_usb:
            parts.append(f"USB {self.usb_id}" + (f" {self.bridge}" if self.bridge else ""))
        if self.description and self.description != "n/a":
            parts.append(self.description)
        return "  ".join(parts)


def list_serial_ports() -> list[SerialPort]:
    """All serial ports the OS reports, USB ones first, then by device name."""
    ports = [SerialPort(p.device, p.description or "", p.vid, p.pid, p.serial_number,
                        p.manufacturer) for p in list_ports.comports()]
    return sorted(ports, key=lambda p: (not p.is_usb, p.device))
