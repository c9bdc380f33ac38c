"""Shared fixtures: a sample card and a virtual reader serving on a real pseudo-terminal."""
from __future__ import annotations

import pytest

from cardreader.card import CardData
from cardreader.cardfile import VirtualCard
from cardreader.emulator import VirtualReader

# GB 11643's own example number (check digit X); the rest is made up.
SAMPLE = CardData(
    region_code="310117", certno="11010519491231002X", card_no="M12345678",
    card_sn="310117D15600000512A3B4C5D6E7F809", name="张晓梅",
    atr="3B6800005343534333303031", spec_version="3.00",
    issue_date="20210315", expiry_date="20310315")


@pytest.fixture
def sample() -> CardData:
    return SAMPLE


@pytest.fixture
def virtual_reader(tmp_path):
    """A VirtualReader with the sample card, serving on a pty; yields (reader, path)."""
    reader = VirtualReader(VirtualCard.from_card_data(SAMPLE))
    path = reader.open_pty(str(tmp_path / "reader"))
    reader.start()
    try:
        yield reader, path
    finally:
        reader.stop()
