"""Port listing: pyserial's comports() is the OS boundary, replaced here by fixed port info."""
from __future__ import annotations

from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from cardreader.ports import SerialPort, list_serial_ports


def port(device, vid=None, pid=None, description="n/a"):
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.description = vid, pid, description
    return info


def test_usb_ports_are_listed_first_with_vid_and_pid(monkeypatch):
    monkeypatch.setattr(list_ports, "comports", lambda: [
        port("/dev/ttyS0"), port("/dev/ttyUSB0", 0x1A86, 0x7523, "USB Serial")])
    ports = list_serial_ports()
    assert [p.device for p in ports] == ["/dev/ttyUSB0", "/dev/ttyS0"]
    assert ports[0].usb_id == "1A86:7523" and ports[0].bridge == "CH340"
    assert ports[0].label() == "/dev/ttyUSB0  USB 1A86:7523 CH340  USB Serial"
    assert ports[1].usb_id == "" and ports[1].label() == "/dev/ttyS0"


def test_unknown_usb_device_shows_its_id_without_a_bridge_name():
    p = SerialPort("/dev/ttyACM0", "Reader", vid=0x1234, pid=0x5678)
    assert p.label() == "/dev/ttyACM0  USB 1234:5678  Reader"


def test_listing_real_ports_returns_serial_port_values():
    assert all(isinstance(p, SerialPort) for p in list_serial_ports())
