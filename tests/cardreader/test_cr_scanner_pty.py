"""QR scanners: the keyboard-wedge text check and the serial scanner on a real pty."""
from __future__ import annotations

import threading

import pytest

from cardreader.errors import ReaderNotFound
from cardreader.scanner import (
    MAX_LEN,
    QrScanner,
    ScanError,
    ScannedIdNumber,
    ScanTooLong,
    VirtualScanner,
    normalize_scanned,
)

CODE = "YBEC1000000000000000069B3C4D5A1B2C3D4E5F60718"


def test_wedge_text_with_enter_and_spaces_is_cleaned():
    assert normalize_scanned(f"  {CODE}\r\n") == CODE


def test_full_width_text_typed_through_a_chinese_ime_is_folded_to_ascii():
    full = "".join(chr(ord(c) + 0xFEE0) for c in CODE)   # ＹＢＥＣ１...
    assert normalize_scanned(full) == CODE


@pytest.mark.parametrize("text", ["", "   \r\n", "abc", "医保电子凭证二维码内容", "ABC\x07DEFGHIJ"])
def test_text_that_cannot_be_a_voucher_code_is_refused_in_chinese(text):
    with pytest.raises(ScanError) as e:
        normalize_scanned(text)
    assert "扫" in e.value.message


def test_a_scanned_id_number_is_refused_with_a_pointer_to_the_id_field():
    with pytest.raises(ScannedIdNumber) as e:
        normalize_scanned("11010519491231002X")
    assert "身份证号" in e.value.message


def test_overlong_text_is_refused():
    with pytest.raises(ScanTooLong):
        normalize_scanned("A" * (MAX_LEN + 1))


def test_serial_scanner_reads_lines_ending_in_cr_lf_or_crlf():
    with VirtualScanner() as vs, QrScanner(vs.path) as sc:
        vs.scan(CODE, terminator=b"\r")
        vs.scan(CODE.lower(), terminator=b"\n")
        vs.scan(CODE, terminator=b"\r\n")
        assert [sc.read_code(2) for _ in range(3)] == [CODE, CODE.lower(), CODE]
        assert sc.read_code(0.1) is None


def test_serial_scanner_reassembles_a_code_sent_in_small_pieces():
    with VirtualScanner() as vs, QrScanner(vs.path) as sc:
        vs.scan(CODE, chunk=3, delay=0.005)
        assert sc.read_code(2) == CODE


def test_serial_scanner_drops_an_overlong_line_and_reads_the_next():
    with VirtualScanner() as vs, QrScanner(vs.path) as sc:
        vs.scan("X" * (MAX_LEN * 3))
        vs.scan(CODE)
        with pytest.raises(ScanTooLong):
            sc.read_code(2)
        assert sc.read_code(2) == CODE


def test_serial_scanner_listen_delivers_codes_and_errors_by_callback():
    got, errors, done = [], [], threading.Event()

    def on_code(code):
        got.append(code)
        done.set()

    with VirtualScanner() as vs, QrScanner(vs.path) as sc:
        sc.listen(on_code, errors.append)
        vs.scan("short")
        vs.scan(CODE)
        assert done.wait(3)
    assert got == [CODE] and isinstance(errors[0], ScanError)


def test_missing_scanner_port_is_a_chinese_not_found_error(tmp_path):
    with pytest.raises(ReaderNotFound) as e:
        QrScanner(tmp_path / "no-scanner")
    assert "找不到扫码器" in e.value.message
