"""The virtual reader over TCP (socket:// URL), for machines without pseudo-terminals."""
from __future__ import annotations

import pytest

from cardreader.cardfile import VirtualCard
from cardreader.driver import CardReader
from cardreader.emulator import VirtualReader
from cardreader.errors import NoCardError


@pytest.fixture
def tcp_reader(sample):
    vr = VirtualReader(VirtualCard.from_card_data(sample))
    url = vr.open_tcp()
    vr.start()
    try:
        yield vr, url
    finally:
        vr.stop()


def test_card_reads_over_a_socket_url(tcp_reader, sample):
    vr, url = tcp_reader
    assert url.startswith("socket://127.0.0.1:")
    with CardReader(url, timeout=1.0) as reader:
        assert reader.read_card() == sample


def test_tcp_reader_serves_the_next_client_after_one_disconnects(tcp_reader, sample):
    vr, url = tcp_reader
    with CardReader(url, timeout=1.0) as reader:  # (pyserial sleeps 0.3 s on socket close)
        assert reader.read_card() == sample
    vr.remove()
    with CardReader(url, timeout=1.0) as reader, pytest.raises(NoCardError):
        reader.read_card()
