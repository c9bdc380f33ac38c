"""The frame codec: exact bytes, any chunking, noise, corruption, bounded buffer."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardreader.errors import (
    BadEndMarker,
    BadInput,
    CrcMismatch,
    FrameTooLong,
    MalformedFrame,
    ProtocolError,
)
from cardreader.framing import (
    ACK,
    NAK,
    OVERHEAD,
    STX,
    Frame,
    FrameDecoder,
    Kind,
    crc16_ccitt_false,
    decode_frame,
    encode_frame,
)

FAST = settings(max_examples=120, deadline=None)

data_frames = st.builds(Frame, seq=st.integers(0, 255), code=st.integers(0, 255),
                        data=st.binary(max_size=300))
control_frames = st.builds(lambda s, ack: Frame.ack(s) if ack else Frame.nak(s),
                           st.integers(0, 255), st.booleans())
frames = st.lists(st.one_of(data_frames, control_frames), min_size=1, max_size=6)
clean_noise = st.binary(max_size=50).map(lambda b: bytes(x for x in b if x not in (STX, ACK, NAK)))


def chunked(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(raw) + 1) for c in cuts})
    edges = [0, *points, len(raw)]
    return [raw[a:b] for a, b in zip(edges, edges[1:])]


def test_crc_is_ccitt_false_check_value():
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_get_version_request_encodes_to_documented_bytes():
    assert encode_frame(0x01, 0x01).hex(" ").upper() == "02 00 00 01 01 A7 D0 03"


def test_ack_and_nak_are_two_bytes():
    assert Frame.ack(7).encode() == bytes((ACK, 7))
    assert Frame.nak(7).encode() == bytes((NAK, 7))


@FAST
@given(frames, st.lists(st.integers(0, 10_000), max_size=20))
def test_any_frames_split_into_any_chunks_decode_the_same(fs, cuts):
    raw = b"".join(f.encode() for f in fs)
    dec = FrameDecoder()
    got = [f for chunk in chunked(raw, cuts) for f in dec.feed(chunk)]
    assert got == fs
    assert dec.pending == 0 and not dec.errors


@FAST
@given(frames)
def test_frames_fed_one_byte_at_a_time_decode_the_same(fs):
    raw = b"".join(f.encode() for f in fs)
    dec = FrameDecoder()
    assert [f for i in range(len(raw)) for f in dec.feed(raw[i:i + 1])] == fs


@FAST
@given(clean_noise, frames, clean_noise)
def test_noise_between_frames_is_dropped_and_counted(before, fs, after):
    dec = FrameDecoder()
    got = dec.feed(before + b"".join(f.encode() for f in fs) + after)
    assert got == fs
    assert dec.dropped == len(before) + len(after)


@pytest.mark.timeout(30)
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 10_000), max_size=10))
def test_arbitrary_bytes_give_frames_never_an_exception_and_buffer_stays_bounded(junk, cuts):
    dec = FrameDecoder(max_payload=64)
    for chunk in chunked(junk, cuts):
        for f in dec.feed(chunk):
            assert isinstance(f, Frame)
        assert dec.pending < OVERHEAD + 64
    for _ in range(len(junk) + 1):  # resync always makes progress: this cannot spin
        if not dec.pending:
            break
        dec.resync()
    assert dec.pending == 0
    assert all(isinstance(e, ProtocolError) for e in dec.errors)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_strict_decode_of_arbitrary_bytes_gives_frame_or_protocol_error(junk):
    try:
        assert isinstance(decode_frame(junk), Frame)
    except ProtocolError:
        pass


@FAST
@given(data_frames)
def test_strict_decode_round_trips(frame):
    assert decode_frame(frame.encode()) == frame


def test_corrupted_crc_is_reported_and_next_frame_still_decoded():
    bad = bytearray(encode_frame(5, 0x12, b"abc"))
    bad[-2] ^= 0xFF
    good = Frame(6, 0x00, b"ok")
    dec = FrameDecoder()
    assert dec.feed(bytes(bad) + good.encode()) == [good]
    errors = dec.pop_errors()
    assert isinstance(errors[0], CrcMismatch) and errors[0].seq == 5


def test_wrong_end_marker_is_reported_and_skipped():
    bad = bytearray(encode_frame(1, 1, b"x"))
    bad[-1] = 0x7E
    dec = FrameDecoder()
    assert dec.feed(bytes(bad) + Frame.ack(1).encode()) == [Frame.ack(1)]
    assert isinstance(dec.pop_errors()[0], BadEndMarker)


def test_length_above_max_payload_resyncs_to_the_next_stx():
    good = Frame(3, 0, b"hi")
    dec = FrameDecoder(max_payload=16)
    assert dec.feed(bytes((STX, 0x10, 0x00)) + good.encode()) == [good]
    assert isinstance(dec.pop_errors()[0], FrameTooLong)


def test_corrupted_length_waits_then_resync_recovers_the_frame_behind_it():
    good = Frame(9, 0, b"card")
    dec = FrameDecoder()
    # A stray STX with a plausible LEN swallows the good frame as its "payload".
    assert dec.feed(bytes((STX, 0x00, 0x40, 0x01, 0x00)) + good.encode()) == []
    assert dec.pending > 0
    assert dec.resync() == [good]


def test_frame_in_a_stray_stx_is_found_after_crc_failure_of_the_outer_one():
    good = Frame(4, 0, b"zz").encode()
    outer = bytes((STX, 0x00, len(good))) + b"\x01\x00" + good + b"\x00\x00\x03"
    assert FrameDecoder().feed(outer) == [Frame(4, 0, b"zz")]


def test_payload_too_long_cannot_be_encoded():
    with pytest.raises(FrameTooLong):
        encode_frame(0, 0, bytes(4097))


def test_feeding_text_raises_typed_protocol_error():
    with pytest.raises(BadInput) as e:
        FrameDecoder().feed("02 00")  # type: ignore[arg-type]
    assert isinstance(e.value, ProtocolError)


def test_strict_decode_rejects_trailing_bytes():
    with pytest.raises(MalformedFrame):
        decode_frame(encode_frame(1, 1, b"a") + b"\x00")


def test_control_frame_kinds_are_distinguished():
    out = FrameDecoder().feed(bytes((ACK, 1, NAK, 2)))
    assert [(f.kind, f.seq) for f in out] == [(Kind.ACK, 1), (Kind.NAK, 2)]


def test_frame_repr_shows_no_payload():
    assert "310117" not in repr(Frame(1, 0, b"310117"))


def _crc_bitwise(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@FAST
@given(st.binary(max_size=200))
def test_crc_matches_a_bitwise_ccitt_false_reference(data):
    assert crc16_ccitt_false(data) == _crc_bitwise(data)


@pytest.mark.timeout(10)
def test_adversarial_stx_pattern_is_decoded_quickly():
    import time
    junk = b"\x02\x03" * 100_000  # every STX's LEN and ETX check out; only the CRC fails
    start = time.monotonic()
    assert FrameDecoder().feed(junk) == []
    assert time.monotonic() - start < 3
