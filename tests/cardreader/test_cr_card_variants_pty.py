"""Card and reader variants through the real pty: T=0 cards, files over 256 bytes, a dead chip,
insertion/removal events, and random combinations of line faults."""
from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardreader.cardfile import SFI_CARD_ID, VirtualCard
from cardreader.driver import CardReader
from cardreader.errors import CardMuteError, CardReaderError
from cardreader.monitor import CardMonitor
from cardreader.tlv import encode_tlv


def test_t0_card_answers_are_fetched_with_get_response(virtual_reader, sample):
    vr, path = virtual_reader
    vr.insert(VirtualCard(vr.card.files, t0=True, atr=vr.card.atr))
    trace: list[str] = []
    with CardReader(path, timeout=1.0, on_exchange=lambda c, r: trace.append(c)) as reader:
        assert reader.read_card() == sample
    assert any(c.startswith("APDU 00C00000") for c in trace)


def test_file_longer_than_256_bytes_is_read_in_chunks(virtual_reader, sample):
    vr, path = virtual_reader
    big = vr.card.files[SFI_CARD_ID] + encode_tlv([(0x20, bytes(300))])  # extra item: 303 B
    vr.insert(VirtualCard({**vr.card.files, SFI_CARD_ID: big}, atr=vr.card.atr))
    trace: list[str] = []
    with CardReader(path, timeout=1.0, on_exchange=lambda c, r: trace.append(c)) as reader:
        assert reader.read_card() == sample
    assert "APDU 00B0010000" in trace  # READ BINARY continued at offset 256


def test_dead_chip_gives_chinese_card_mute_error(virtual_reader):
    vr, path = virtual_reader
    vr.mute_card()
    with CardReader(path, timeout=1.0) as reader, pytest.raises(CardMuteError) as e:
        reader.read_card()
    assert e.value.message == "卡片没有应答，请确认社保卡芯片朝上并插到底后重试"


def test_monitor_reports_insertion_and_removal(virtual_reader):
    vr, path = virtual_reader
    card = vr.card
    vr.remove()
    events: list[str] = []
    changed = threading.Event()

    def note(name):
        events.append(name)
        changed.set()

    with CardReader(path, timeout=0.5) as reader:
        with CardMonitor(reader, on_insert=lambda: note("in"), on_remove=lambda: note("out"),
                         interval=0.02):
            for action in (lambda: vr.insert(card), vr.remove):
                changed.clear()
                action()
                assert changed.wait(2)
    assert events == ["in", "out"]


def test_monitor_reports_a_dead_reader_once_not_every_poll(virtual_reader):
    vr, path = virtual_reader
    vr.set_silent()
    errors: list[CardReaderError] = []
    with CardReader(path, timeout=0.02, retries=0) as reader:
        monitor = CardMonitor(reader, on_error=errors.append)
        for _ in range(3):
            monitor.poll()
    assert len(errors) == 1 and "读卡器" in errors[0].message


# Damaged answers and NAKs may all hit the same request: together they stay within the
# three retransmissions.  Noise (without STX) and split answers cost no retransmission.
faults = st.fixed_dictionaries({
    "noise": st.integers(0, 5),
    "corrupt": st.integers(0, 3),
    "split": st.integers(0, 5),
    "nak": st.integers(0, 3),
}).filter(lambda f: f["corrupt"] + f["nak"] <= 3)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(faults)
def test_any_mix_of_recoverable_line_faults_still_reads_the_exact_card(virtual_reader, sample, f):
    vr, path = virtual_reader
    vr.clear_faults()
    vr.add_noise(f["noise"], noise=b"\x55\xAA")
    vr.corrupt_answers(f["corrupt"])
    vr.split_answers(f["split"], pieces=3, delay=0.005)
    vr.nak_requests(f["nak"])
    with CardReader(path, timeout=0.3) as reader:
        assert reader.read_card() == sample


def test_virtual_t0_card_chains_get_response_for_long_answers(sample):
    from cardreader import apdu as A
    from cardreader.cardfile import SSC_AID
    big = encode_tlv([(0x20, bytes(300))])
    card = VirtualCard({SFI_CARD_ID: big}, t0=True)
    card.transmit(A.select_aid(SSC_AID).encode())
    first = card.transmit(A.read_binary_sfi(SFI_CARD_ID, le=0).encode())
    assert first == b"\x61\x00"  # 256 bytes waiting (00 = 256)
    got = card.transmit(A.get_response(0).encode())
    assert len(got) == 258 and got[-2:] == b"\x90\x00"
