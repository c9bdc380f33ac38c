"""docs/reader-protocol.md's hex examples are produced by the code; this keeps them true.

Run ``python tests/cardreader/test_cr_docs.py`` to print the examples for the document.
"""
from __future__ import annotations

from pathlib import Path

from cardreader import apdu as A
from cardreader.card import CardData
from cardreader.cardfile import SFI_CARD_ID, SFI_HOLDER, SSC_AID, VirtualCard
from cardreader.driver import _trace_apdu, _trace_response
from cardreader.framing import Frame, encode_frame
from cardreader.protocol import Cmd, Led, Status

DOC = Path(__file__).resolve().parents[2] / "docs" / "reader-protocol.md"
CARD = CardData(region_code="310117", certno="11010519491231002X", card_no="M12345678",
                card_sn="310117D15600000512A3B4C5D6E7F809", name="张晓梅",
                atr="3B6800005343534333303031", spec_version="3.00",
                issue_date="20210315", expiry_date="20310315")


def hx(b: bytes) -> str:
    return b.hex(" ").upper()


def examples() -> list[tuple[str, str]]:
    card = VirtualCard.from_card_data(CARD)
    atr = card.reset()
    select = A.select_aid(SSC_AID).encode()
    rb5, rb6 = A.read_binary_sfi(SFI_CARD_ID).encode(), A.read_binary_sfi(SFI_HOLDER).encode()
    ans = [card.transmit(x) for x in (select, rb5, rb6)]
    return [
        ("GET_VERSION request, SEQ 01", hx(encode_frame(0x01, Cmd.GET_VERSION))),
        ("ACK of SEQ 01", hx(Frame.ack(0x01).encode())),
        ("NAK of SEQ 01", hx(Frame.nak(0x01).encode())),
        ("GET_VERSION answer", hx(encode_frame(0x01, Status.OK, b"VirtualReader 1.0 (emulator)"))),
        ("CARD_STATUS request, SEQ 02", hx(encode_frame(0x02, Cmd.CARD_STATUS))),
        ("CARD_STATUS answer: card present", hx(encode_frame(0x02, Status.OK, b"\x01"))),
        ("POWER_ON request, SEQ 03", hx(encode_frame(0x03, Cmd.POWER_ON))),
        ("POWER_ON answer: ATR", hx(encode_frame(0x03, Status.OK, atr))),
        ("POWER_ON answer: no card", hx(encode_frame(0x03, Status.NO_CARD))),
        ("SELECT APDU", hx(select)),
        ("APDU request carrying SELECT, SEQ 04", hx(encode_frame(0x04, Cmd.APDU, select))),
        ("APDU answer: 90 00", hx(encode_frame(0x04, Status.OK, ans[0]))),
        ("READ BINARY EF05 APDU", hx(rb5)),
        ("READ BINARY EF05 answer (R-APDU)", hx(ans[1])),
        ("READ BINARY EF06 APDU", hx(rb6)),
        ("READ BINARY EF06 answer (R-APDU)", hx(ans[2])),
        ("POWER_OFF request, SEQ 07", hx(encode_frame(0x07, Cmd.POWER_OFF))),
        ("BEEP 200 ms green, SEQ 08", hx(encode_frame(0x08, Cmd.BEEP, bytes((0, 200, Led.GREEN))))),
        ("SELECT answer on a card without the application", hx(bytes.fromhex("6A82"))),
        ("READ RECORD ID number", hx(A.read_record(0x08, SFI_HOLDER).encode())),
        ("VERIFY 123456", hx(A.verify("123456").encode())),
        ("trace of READ BINARY EF05", trace(rb5, ans[1])),
        ("trace of READ BINARY EF06", trace(rb6, ans[2])),
    ]


def trace(cmd: bytes, answer: bytes) -> str:
    c = A.Command.parse(cmd)
    return f"{_trace_apdu(c)} -> {_trace_response(A.Response.parse(answer))}"


def test_every_hex_example_in_the_protocol_doc_is_what_the_code_produces():
    text = DOC.read_text(encoding="utf-8")
    missing = [label for label, h in examples() if h not in text]
    assert not missing


if __name__ == "__main__":
    for label, h in examples():
        print(f"{label}\n    {h}")
