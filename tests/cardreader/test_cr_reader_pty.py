"""CardReader against VirtualReader over a real pseudo-terminal (no mocks of our code)."""
from __future__ import annotations

import os
import time

import pytest
import serial

from cardreader.cardfile import VirtualCard
from cardreader.driver import CardReader
from cardreader.errors import NoCardError, ReaderNotFound, ReaderNotResponding
from cardreader.framing import FrameDecoder, Kind
from cardreader.protocol import Cmd, Led


def test_read_card_over_pty_returns_the_inserted_card_data(virtual_reader, sample):
    _, path = virtual_reader
    with CardReader(path, timeout=1.0) as reader:
        assert reader.read_card() == sample


def test_read_card_through_the_symlink_works(virtual_reader, sample):
    reader, _ = virtual_reader
    with CardReader(reader.link, timeout=1.0) as r:
        assert r.read_card().card_sn == sample.card_sn


def test_atr_in_card_data_is_the_atr_the_card_sent(virtual_reader, sample):
    vr, path = virtual_reader
    vr.insert(VirtualCard(vr.card.files, atr=bytes.fromhex("3B6800001122334455667788")))
    with CardReader(path, timeout=1.0) as reader:
        assert reader.read_card().atr == "3B6800001122334455667788"


def test_no_card_inserted_gives_chinese_no_card_error(virtual_reader):
    vr, path = virtual_reader
    vr.remove()
    with CardReader(path, timeout=1.0) as reader:
        assert reader.card_present() is False
        with pytest.raises(NoCardError) as e:
            reader.read_card()
    assert e.value.message == "未检测到医保卡，请将社保卡芯片朝上插入读卡器"


def test_card_inserted_after_no_card_is_read(virtual_reader, sample):
    vr, path = virtual_reader
    card = vr.card
    vr.remove()
    with CardReader(path, timeout=1.0) as reader:
        with pytest.raises(NoCardError):
            reader.read_card()
        vr.insert(card)
        assert reader.card_present() is True
        assert reader.read_card() == sample


def test_version_is_the_readers_version_string(virtual_reader):
    _, path = virtual_reader
    with CardReader(path, timeout=1.0) as reader:
        assert reader.version() == "VirtualReader 1.0 (emulator)"


def test_beep_reaches_the_reader(virtual_reader):
    vr, path = virtual_reader
    with CardReader(path, timeout=1.0) as reader:
        reader.beep(200, Led.RED)
    assert vr.beeps == [(200, Led.RED)]


def test_client_can_close_and_reopen_the_port(virtual_reader, sample):
    _, path = virtual_reader
    for _ in range(3):
        with CardReader(path, timeout=1.0) as reader:
            assert reader.read_card() == sample


def test_plain_pyserial_open_of_the_slave_sees_raw_bytes(virtual_reader):
    _, path = virtual_reader
    with serial.Serial(path, timeout=1.0) as port:
        port.write(bytes.fromhex("02000001 01A7D003"))  # GET_VERSION, seq 1
        time.sleep(0.1)
        frames = FrameDecoder().feed(port.read(port.in_waiting))
    assert frames[0].kind is Kind.ACK and frames[1].data.startswith(b"VirtualReader")


def test_exchange_trace_never_contains_id_number_name_or_card_number(virtual_reader, sample):
    _, path = virtual_reader
    trace = []
    with CardReader(path, timeout=1.0, on_exchange=lambda c, r: trace.append(c + " " + r)) as rd:
        rd.read_card()
    text = "\n".join(trace)
    assert "POWER_ON" in text and "SW 9000" in text
    for secret in (sample.certno, sample.name, sample.card_no):
        for form in (secret, secret.encode("utf-8").hex().upper(),
                     secret.encode("gbk").hex().upper()):
            assert form not in text


def test_silent_reader_gives_chinese_no_response_error_after_three_retransmissions():
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        with CardReader(path, timeout=0.1) as reader:
            with pytest.raises(ReaderNotResponding) as e:
                reader.version()
        sent = FrameDecoder().feed(os.read(master, 4096))
    finally:
        os.close(master), os.close(slave)
    assert e.value.message == "读卡器没有响应，请检查读卡器连接线后重试"
    assert len(sent) == 4 and len({f.encode() for f in sent}) == 1  # same frame, same SEQ
    assert sent[0].code == Cmd.GET_VERSION


def test_missing_port_gives_reader_not_found():
    with pytest.raises(ReaderNotFound) as e:
        CardReader("/dev/does-not-exist-reader")
    assert "读卡器" in e.value.message


def test_each_request_gets_a_new_seq(virtual_reader):
    _, path = virtual_reader
    with CardReader(path, timeout=1.0) as reader:
        first = reader._seq
        reader.version()
        reader.version()
        assert reader._seq == (first + 2) & 0xFF


def test_emulator_survives_no_client_then_serves_a_new_one(virtual_reader, sample):
    vr, path = virtual_reader
    time.sleep(0.2)  # nobody has the port open: the serving loop must keep going
    assert vr._thread.is_alive()
    with CardReader(path, timeout=1.0) as reader:
        assert reader.read_card() == sample


def test_emulator_without_its_own_slave_fd_survives_eio_between_clients(sample):
    from cardreader.emulator import VirtualReader
    vr = VirtualReader(VirtualCard.from_card_data(sample))
    path = vr.open_pty(hold_slave=False)
    vr.start()
    try:
        time.sleep(0.15)  # no client: reads on the master fail with EIO
        for _ in range(2):
            with CardReader(path, timeout=1.0) as reader:
                assert reader.read_card() == sample
            time.sleep(0.15)
        assert vr._thread.is_alive()
    finally:
        vr.stop()


def test_emulator_stopped_mid_session_gives_reader_error_not_a_crash(sample):
    from cardreader.emulator import VirtualReader
    vr = VirtualReader(VirtualCard.from_card_data(sample))
    path = vr.open_pty()
    vr.start()
    with CardReader(path, timeout=0.2) as reader:
        assert reader.card_present()
        vr.stop()
        with pytest.raises(ReaderNotResponding) as e:
            reader.card_present()
    assert e.value.message == "读卡器没有响应，请检查读卡器连接线后重试"


def test_stop_removes_the_symlink(tmp_path, sample):
    from cardreader.emulator import VirtualReader
    vr = VirtualReader(None)
    link = tmp_path / "reader"
    vr.open_pty(str(link))
    assert link.is_symlink()
    vr.stop()
    assert not link.exists() and not link.is_symlink()


def test_an_endless_stream_of_acks_cannot_keep_the_driver_waiting():
    import threading

    from cardreader.framing import Frame
    master, slave = os.openpty()
    stop = threading.Event()

    def babble():
        dec = FrameDecoder()
        while not stop.is_set():
            frames = dec.feed(os.read(master, 4096))
            if frames:
                while not stop.wait(0.01):
                    os.write(master, Frame.ack(frames[0].seq).encode())
    threading.Thread(target=babble, daemon=True).start()
    try:
        with CardReader(os.ttyname(slave), timeout=0.1, retries=0) as reader:
            start = time.monotonic()
            with pytest.raises(ReaderNotResponding):
                reader.version()
            assert time.monotonic() - start < 0.5
    finally:
        stop.set()
        time.sleep(0.05)
        os.close(master), os.close(slave)
