"""ReaderService (one thread owns the reader) and DeviceStore, over real pseudo-terminals."""
from __future__ import annotations

import threading
import time

import pytest

from cardreader.card import CardData
from cardreader.cardfile import VirtualCard
from cardreader.devices import DeviceStore, ReaderChoice
from cardreader.driver import CardReader
from cardreader.emulator import VirtualReader
from cardreader.errors import CardRemovedError, NoCardError, ReaderNotFound
from cardreader.ports import SerialPort
from cardreader.service import Callbacks, ReaderService

SAMPLE = CardData(   # the same card as conftest.SAMPLE (which the virtual_reader fixture holds)
    region_code="310117", certno="11010519491231002X", card_no="M12345678",
    card_sn="310117D15600000512A3B4C5D6E7F809", name="张晓梅",
    atr="3B6800005343534333303031", spec_version="3.00",
    issue_date="20210315", expiry_date="20310315")


class Recorder:
    """A listener that records (event, thread name) and wakes waiters."""

    def __init__(self):
        self.events: list[tuple[str, str]] = []
        self.cards = []
        self._cv = threading.Condition()

    def _add(self, name):
        with self._cv:
            self.events.append((name, threading.current_thread().name))
            self._cv.notify_all()

    def reader_connected(self, version): self._add("connected")
    def reader_disconnected(self, error): self._add("disconnected")
    def card_inserted(self): self._add("inserted")
    def card_removed(self): self._add("removed")
    def card_read_failed(self, error): self._add("read_failed")

    def card_read(self, card):
        self.cards.append(card)
        self._add("read")

    def wait(self, name, count=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._cv:
            while sum(1 for e, _ in self.events if e == name) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {name!r} x{count} within {timeout}s: {self.events}")
                self._cv.wait(left)

    def names(self):
        return [e for e, _ in self.events]


def _service(url, *listeners, **kw):
    """A service with short intervals; listeners subscribed before it starts."""
    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("reconnect_interval", 0.1)
    kw.setdefault("timeout", 0.3)
    svc = ReaderService(str(url), **kw)
    for listener in listeners:
        svc.subscribe(listener)
    return svc


def test_read_card_future_runs_on_the_service_thread_and_returns_the_card(virtual_reader):
    _, path = virtual_reader
    threads = []

    class Tracing(CardReader):
        def read_card(self, **kw):
            threads.append(threading.current_thread().name)
            return super().read_card(**kw)

    with _service(path, reader_factory=Tracing) as svc:
        assert svc.read_card().result(10) == SAMPLE
        assert svc.version().result(5).startswith("VirtualReader")
    assert threads == ["card-reader"]


def test_requests_from_many_threads_are_serialised_and_all_answered(virtual_reader):
    _, path = virtual_reader
    with _service(path) as svc:
        futures = []
        workers = [threading.Thread(target=lambda: futures.append(svc.read_card()))
                   for _ in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert [f.result(20) for f in futures] == [SAMPLE] * 6


def test_card_insert_and_remove_are_events_delivered_on_the_service_thread(virtual_reader):
    vr, path = virtual_reader
    card = vr.card
    vr.remove()
    rec = Recorder()
    with _service(path, rec):
        rec.wait("connected")
        time.sleep(0.2)
        vr.insert(card)
        rec.wait("inserted")
        vr.remove()
        rec.wait("removed")
    assert rec.names() == ["connected", "inserted", "removed"]
    assert {t for _, t in rec.events} == {"card-reader"}


def test_auto_read_delivers_card_data_after_insert(virtual_reader):
    vr, path = virtual_reader
    card = vr.card
    vr.remove()
    rec = Recorder()
    with _service(path, rec, auto_read=True):
        rec.wait("connected")
        vr.insert(card)
        rec.wait("read")
    assert rec.cards == [SAMPLE]


def test_auto_read_of_a_card_pulled_mid_read_reports_failure_not_data(virtual_reader):
    vr, path = virtual_reader
    card = vr.card
    vr.remove()
    rec = Recorder()
    failures = []
    with _service(path, rec, Callbacks(card_read_failed=failures.append), auto_read=True):
        rec.wait("connected")
        vr.pull_card_after(2)
        vr.insert(card)
        rec.wait("read_failed")
    assert rec.cards == [] and isinstance(failures[0], CardRemovedError)


def test_request_errors_reach_the_caller_and_the_service_goes_on(virtual_reader):
    vr, path = virtual_reader
    card = vr.card
    vr.remove()
    with _service(path) as svc:
        with pytest.raises(NoCardError) as e:
            svc.read_card().result(10)
        assert "未检测到医保卡" in e.value.message
        vr.insert(card)
        assert svc.read_card().result(10) == SAMPLE


def test_service_reconnects_after_the_reader_is_unplugged_and_plugged_back(tmp_path):
    link = str(tmp_path / "reader")
    first = VirtualReader(VirtualCard.from_card_data(SAMPLE))
    first.open_pty(link)
    first.start()
    rec = Recorder()
    with _service(link, rec) as svc:
        rec.wait("connected")
        assert svc.read_card().result(10) == SAMPLE
        first.stop()                      # unplugged: pty closed, link removed
        rec.wait("disconnected")
        with pytest.raises(ReaderNotFound) as e:   # nothing there: a clear error, no hang
            svc.read_card().result(10)
        assert "找不到读卡器" in e.value.message
        second = VirtualReader(VirtualCard.from_card_data(SAMPLE))
        second.open_pty(link)             # plugged back: a new pty behind the same link
        second.start()
        try:
            rec.wait("connected", count=2)
            assert svc.read_card().result(10) == SAMPLE
            assert svc.connects == 2
        finally:
            svc.stop()
            second.stop()
    lifecycle = [n for n in rec.names() if n in ("connected", "disconnected")]
    assert lifecycle == ["connected", "disconnected", "connected"]


def test_requests_fail_cleanly_when_no_reader_was_ever_there(tmp_path):
    with _service(tmp_path / "nothing") as svc:
        with pytest.raises(ReaderNotFound):
            svc.read_card().result(5)
        assert not svc.connected


def test_pending_requests_fail_when_the_service_stops(virtual_reader):
    vr, path = virtual_reader
    vr.slow(0.2)
    svc = _service(path, timeout=1.0).start()
    futures = [svc.read_card() for _ in range(5)]
    svc.stop()
    outcomes = [f.exception(5) for f in futures]
    assert all(o is None or isinstance(o, ReaderNotFound) for o in outcomes)
    assert any(isinstance(o, ReaderNotFound) for o in outcomes)


# ---- the remembered port ---------------------------------------------------------------

def test_device_store_remembers_the_chosen_port_across_instances(tmp_path):
    port = SerialPort("/dev/ttyUSB0", "USB Serial", 0x1A86, 0x7523, "A1")
    DeviceStore(tmp_path / "reader.json").save(ReaderChoice.from_port(port, 9600))
    choice = DeviceStore(tmp_path / "reader.json").load()
    assert choice == ReaderChoice("/dev/ttyUSB0", 9600, "1A86:7523", "A1", "USB Serial")


def test_device_store_without_a_file_or_with_a_broken_one_has_no_choice(tmp_path):
    store = DeviceStore(tmp_path / "reader.json")
    assert store.load() is None and store.resolve() is None
    store.path.write_text("{not json", encoding="utf-8")
    assert store.load() is None


def test_device_store_finds_the_reader_again_under_a_new_name_by_usb_id(tmp_path):
    store = DeviceStore(tmp_path / "reader.json")
    store.save(ReaderChoice("/dev/ttyUSB-gone", 115200, "1A86:7523", "A1"))
    ports = [SerialPort("/dev/ttyS0", "n/a"), SerialPort("/dev/ttyUSB1", "USB", 0x1A86, 0x7523, "A1"),
             SerialPort("/dev/ttyUSB2", "USB", 0x1A86, 0x7523, "B2")]
    assert store.resolve(lambda: ports) == "/dev/ttyUSB1"


def test_device_store_keeps_an_existing_path_as_it_is(virtual_reader, tmp_path):
    vr, _ = virtual_reader
    store = DeviceStore(tmp_path / "reader.json")
    store.save(ReaderChoice(vr.link, usb_id="1A86:7523"))
    assert store.resolve(list) == vr.link


def test_service_opens_the_port_the_store_resolves(virtual_reader, tmp_path):
    vr, _ = virtual_reader
    store = DeviceStore(tmp_path / "reader.json")
    store.save(ReaderChoice(vr.link))
    with _service("/dev/not-this-one", resolve_url=store.resolve) as svc:
        assert svc.read_card().result(10) == SAMPLE
        assert svc.url == vr.link
