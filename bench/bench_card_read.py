"""Card insert -> CardData, at 9600 and 115200 baud, against the line's transfer-time floor.

Run: ``python bench/run.py card_read``.

Setup: the virtual reader on a real pseudo-terminal, the client ``ReaderService`` (its own
thread, CARD_STATUS polled every ``POLL`` s, ``auto_read``) as the desk would use it.  A pty
moves bytes at memory speed, so the emulator is run with ``line_rate=BAUD``: it waits out each
request's transfer time before handling it and releases its answers byte-paced at BAUD
(8N1: 10 bits per byte).  Host -> reader bytes are not slowed by the pty; the emulator's wait
stands in for them.

Figures per rate:
* insert -> CardData: from ``VirtualReader.insert(card)`` to the service's ``card_read``
  event; includes waiting for the next poll.
* read_card alone: ``CardReader.read_card()`` (POWER_ON .. POWER_OFF) called directly.
Floor: all bytes exchanged in both directions in that window (counted by the emulator:
frames, ACKs, and for insert -> CardData the CARD_STATUS polls too) x 10 bits / baud.
"""
from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cardreader.card import CardData
from cardreader.cardfile import VirtualCard
from cardreader.driver import CardReader
from cardreader.emulator import VirtualReader
from cardreader.service import ReaderService

CARD = CardData(region_code="310117", certno="11010519491231002X", card_no="M12345678",
                card_sn="310117D15600000512A3B4C5D6E7F809", name="张晓梅",
                atr="3B6800005343534333303031", spec_version="3.00",
                issue_date="20210315", expiry_date="20310315")
POLL = 0.05
RUNS = {9600: 8, 115200: 20}


class Waiter:
    def __init__(self):
        self.cv = threading.Condition()
        self.read_at: float | None = None
        self.removed = False

    def card_read(self, card):
        with self.cv:
            self.read_at = time.perf_counter()
            self.cv.notify_all()

    def card_read_failed(self, error):
        raise SystemExit(f"card read failed during the benchmark: {error}")

    def card_removed(self):
        with self.cv:
            self.removed = True
            self.cv.notify_all()

    def wait(self, pred, timeout=10.0):
        with self.cv:
            if not self.cv.wait_for(pred, timeout):
                raise SystemExit("benchmark: event did not come")


def run_rate(baud: int, runs: int) -> dict:
    card = VirtualCard.from_card_data(CARD)
    vr = VirtualReader(card, line_rate=baud)
    path = vr.open_pty()
    vr.start()
    w = Waiter()
    svc = ReaderService(path, baudrate=baud, poll_interval=POLL, auto_read=True, timeout=2.0)
    svc.subscribe(w)
    insert_t, insert_floor = [], []
    try:
        svc.start()
        w.wait(lambda: w.read_at is not None)           # the card present at start is read
        for _ in range(runs):
            w.removed = False
            vr.remove()
            w.wait(lambda: w.removed)
            time.sleep(POLL * 0.37)                      # insert at varying poll phases
            w.read_at = None
            vr.bytes_in = vr.bytes_out = 0
            t0 = time.perf_counter()
            vr.insert(card)
            w.wait(lambda: w.read_at is not None)
            insert_t.append(w.read_at - t0)
            insert_floor.append((vr.bytes_in + vr.bytes_out) * 10 / baud)
    finally:
        svc.stop()
    direct_t, direct_floor, direct_bytes = [], [], 0
    with CardReader(path, baudrate=baud, timeout=2.0) as reader:
        for _ in range(runs):
            vr.bytes_in = vr.bytes_out = 0
            t0 = time.perf_counter()
            reader.read_card()
            direct_t.append(time.perf_counter() - t0)
            direct_bytes = vr.bytes_in + vr.bytes_out
            direct_floor.append(direct_bytes * 10 / baud)
    vr.stop()
    return {"insert": (statistics.median(insert_t), statistics.median(insert_floor),
                       max(insert_t)),
            "direct": (statistics.median(direct_t), statistics.median(direct_floor),
                       max(direct_t)),
            "bytes": direct_bytes}


def main() -> None:
    print("virtual reader on a pty, paced by the emulator at the line rate (8N1, 10 bits/byte);"
          f" client ReaderService polling every {POLL * 1000:.0f} ms")
    for baud, runs in RUNS.items():
        r = run_rate(baud, runs)
        t, floor, worst = r["insert"]
        print(f"{baud:>6} baud  insert -> CardData   median {t * 1000:7.1f} ms  (worst "
              f"{worst * 1000:6.1f})  floor {floor * 1000:6.1f} ms  ratio {t / floor:4.2f}x"
              f"  [{runs} runs]")
        t, floor, worst = r["direct"]
        print(f"{baud:>6} baud  read_card alone      median {t * 1000:7.1f} ms  (worst "
              f"{worst * 1000:6.1f})  floor {floor * 1000:6.1f} ms  ratio {t / floor:4.2f}x"
              f"  [{r['bytes']} bytes on the line]")


if __name__ == "__main__":
    main()
