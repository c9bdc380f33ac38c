"""Coverage-guided fuzzing (atheris / libFuzzer) of the card-reader parsers.

    pip install atheris
    python bench/fuzz_cardreader.py [-max_total_time=300] [-runs=N] [corpus_dir]

Not part of the test suite (it runs for minutes).  The first input byte picks a target; every
target states what must hold for ANY bytes, and a violation raises (libFuzzer then saves the
crashing input and stops):

* frames: ``FrameDecoder.feed`` over the input cut into fuzzer-chosen chunks never raises,
  keeps less than one maximal frame buffered, and every frame it returns re-encodes to bytes
  that decode to the same frame; ``decode_frame`` raises nothing but ``ProtocolError``.
* apdu: ``Command.parse`` / ``Response.parse`` raise only ``ApduFormatError``; a parsed
  command re-encodes to the same bytes and parses back equal.
* tlv: ``parse_tlv`` / ``tlv_dict`` raise only ``TlvError``; parsed items re-encode and parse
  back equal.
* files: ``card_data_from_files`` (atr, EF05, EF06 carved from the input) returns a CardData
  or raises ``CardDataError`` -- never another exception, never partial data.
* card: ``VirtualCard.transmit`` answers any bytes with at least a status word, never raises.

libFuzzer's last line ("Done N runs in S second(s)") gives the number of inputs tried.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    from cardreader import apdu as A
    from cardreader.card import CardData
    from cardreader.cardfile import (
        SFI_CARD_ID,
        SFI_HOLDER,
        VirtualCard,
        card_data_from_files,
    )
    from cardreader.errors import (
        ApduFormatError,
        CardDataError,
        ProtocolError,
        TlvError,
    )
    from cardreader.framing import (
        MAX_PAYLOAD,
        OVERHEAD,
        FrameDecoder,
        decode_frame,
        encode_frame,
    )
    from cardreader.tlv import encode_tlv, parse_tlv, tlv_dict

SAMPLE = CardData(region_code="310117", certno="11010519491231002X", card_no="M12345678",
                  card_sn="310117D15600000512A3B4C5D6E7F809", name="张晓梅",
                  atr="3B6800005343534333303031", spec_version="3.00",
                  issue_date="20210315", expiry_date="20310315")
_CARD = VirtualCard.from_card_data(SAMPLE, pin="123456")


def fuzz_frames(fdp: atheris.FuzzedDataProvider) -> None:
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    dec = FrameDecoder(MAX_PAYLOAD)
    i, cuts = 0, [b % 17 + 1 for b in data[:64]] or [1]
    k = 0
    while i < len(data):
        n = cuts[k % len(cuts)]
        k += 1
        for f in dec.feed(data[i:i + n]):
            assert decode_frame(f.encode()) == f, "frame does not round-trip"
        assert dec.pending < OVERHEAD + MAX_PAYLOAD, "decoder buffer unbounded"
        i += n
    while dec.pending:
        dec.resync()
    try:
        decode_frame(data)
    except ProtocolError:
        pass


def fuzz_apdu(fdp: atheris.FuzzedDataProvider) -> None:
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        cmd = A.Command.parse(data)
    except ApduFormatError:
        pass
    else:
        assert cmd.encode() == data, "command APDU does not re-encode"
        assert A.Command.parse(cmd.encode()) == cmd
    try:
        resp = A.Response.parse(data)
        assert resp.encode() == data
    except ApduFormatError:
        pass


def fuzz_tlv(fdp: atheris.FuzzedDataProvider) -> None:
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        items = parse_tlv(data)
    except TlvError:
        return
    assert parse_tlv(encode_tlv(items)) == items, "TLV does not round-trip"
    try:
        tlv_dict(data)
    except TlvError:
        pass


def fuzz_files(fdp: atheris.FuzzedDataProvider) -> None:
    atr = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 33))
    ef05 = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
    ef06 = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        card = card_data_from_files(atr, ef05, ef06)
    except CardDataError:
        return
    assert all(isinstance(v, str) for v in vars(card).values())
    assert len(card.to_record().split("|")) == 11, "record would not have 11 fields"


def fuzz_card(fdp: atheris.FuzzedDataProvider) -> None:
    _CARD.reset()
    while fdp.remaining_bytes():
        apdu = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 270))
        answer = _CARD.transmit(apdu)
        assert isinstance(answer, bytes) and len(answer) >= 2, "card gave no status word"


TARGETS = (fuzz_frames, fuzz_apdu, fuzz_tlv, fuzz_files, fuzz_card)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    TARGETS[data[0] % len(TARGETS)](fdp)


def seed_corpus(directory: str) -> None:
    """Valid inputs for every target, so the fuzzer starts from the interesting paths."""
    files = _CARD.files
    seeds = [
        bytes([0]) + encode_frame(1, 0x01) + bytes((0x06, 1)) + encode_frame(2, 0x12, bytes(40)),
        bytes([1]) + A.select_aid(b"sx1.sh.\xc9\xe7\xbb\xe1\xb1\xa3\xd5\xcf").encode(),
        bytes([1]) + A.verify("123456").encode(),
        bytes([2]) + files[SFI_CARD_ID],
        bytes([2]) + files[SFI_HOLDER] + b"\x00\x00",
        bytes([3, 12]) + bytes.fromhex(SAMPLE.atr) + bytes([len(files[SFI_CARD_ID])])
        + files[SFI_CARD_ID] + files[SFI_HOLDER],
        bytes([4, 20]) + A.select_aid(b"sx1.sh.\xc9\xe7\xbb\xe1\xb1\xa3\xd5\xcf").encode()
        + bytes([5]) + A.read_binary_sfi(5).encode(),
    ]
    for i, s in enumerate(seeds):
        Path(directory, f"seed{i}").write_bytes(s)


def main() -> None:
    args = sys.argv[1:]
    if not any(not a.startswith("-") for a in args):
        corpus = tempfile.mkdtemp(prefix="fuzz-cardreader-")
        seed_corpus(corpus)
        args.append(corpus)
    if not any(a.startswith(("-max_total_time", "-runs")) for a in args):
        args.append("-max_total_time=60")
    print(f"fuzzing {', '.join(t.__name__ for t in TARGETS)}; pid {os.getpid()}", flush=True)
    atheris.Setup([sys.argv[0], *args], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
