"""Host side of the reader protocol: ``CardReader`` talks to a reader over any pyserial URL.

Link rules (docs/reader-protocol.md): each request gets a new SEQ; the reader ACKs it, then
answers with a response frame carrying the same SEQ.  On NAK, on a corrupted answer or when
nothing valid arrives within ``timeout``, the same frame (same SEQ) is sent again, at most
``retries`` times; the reader answers a repeated SEQ from its cache, so nothing runs twice.

All device I/O of one reader must happen on one thread (the GUI uses a dedicated worker);
a lock makes accidental concurrent use safe rather than interleaved.
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import date

import serial

from . import apdu as A
from .card import CardData
from .cardfile import (
    SFI_CARD_ID,
    SFI_HOLDER,
    SSC_AID,
    card_data_from_files,
    redact_file,
)
from .errors import (
    ApduFormatError,
    CardExpiredError,
    CardFileNotFound,
    CardMuteError,
    CardReaderError,
    CardRemovedError,
    NoCardError,
    NotSocialSecurityCard,
    PinCancelledError,
    PinFormatError,
    PinRequiredError,
    ReaderCommunicationError,
    ReaderNotFound,
    ReaderNotResponding,
)
from .framing import MAX_PAYLOAD, Frame, FrameDecoder, Kind
from .protocol import CARD_PRESENT, Cmd, Led, Status, cmd_name, status_name

log = logging.getLogger(__name__)

ExchangeHook = Callable[[str, str], None]
_POLL = 0.02        # serial read slice; the real deadline is ``timeout``
_MAX_FILE = 4096    # a file bigger than this is not a social-security card file


class CardReader:
    """A card reader on a serial line.

    ``url``: a device path (/dev/ttyUSB0, /dev/pts/3, COM3) or any pyserial URL (loop://,
    socket://host:port, rfc2217://...).  ``timeout``: seconds to wait for each answer.
    ``on_exchange(cmd, response)``: called after every exchange with trace strings in which
    ID number, name, card number and birth date are masked.
    """

    def __init__(self, url: str | os.PathLike, *, baudrate: int = 115200, timeout: float = 2.0,
                 retries: int = 3, on_exchange: ExchangeHook | None = None,
                 terminal_no: str = "", device_no: str = ""):
        self.url = url = os.fspath(url)
        self.timeout = timeout
        self.retries = retries
        self.on_exchange = on_exchange
        self.terminal_no = terminal_no
        self.device_no = device_no
        self._lock = threading.RLock()
        self._decoder = FrameDecoder(MAX_PAYLOAD)
        # Random start: a fresh session must not reuse the SEQ the reader has cached.
        self._seq = random.randrange(256)
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=_POLL,
                                               write_timeout=timeout)
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError, ValueError) as e:
            raise ReaderNotFound(detail=f"cannot open {url}: {e}") from None

    # -- public API -------------------------------------------------------------------

    def version(self) -> str:
        data = self._command(Cmd.GET_VERSION)
        self._trace("GET_VERSION", data.decode("ascii", "replace"))
        return data.decode("ascii", "replace")

    def card_present(self) -> bool:
        data = self._command(Cmd.CARD_STATUS)
        if len(data) != 1:
            raise ReaderCommunicationError(detail=f"CARD_STATUS answer of {len(data)} bytes")
        self._trace("CARD_STATUS", f"{data[0]:02X}")
        return bool(data[0] & CARD_PRESENT)

    def beep(self, ms: int = 100, led: Led = Led.GREEN) -> None:
        """Sound the buzzer and light the LED, e.g. green for "card read", red for an error."""
        self._command(Cmd.BEEP, max(0, min(ms, 0xFFFF)).to_bytes(2, "big") + bytes((led,)))
        self._trace(f"BEEP {ms}ms {Led(led).name}", "OK")

    def read_card(self, *, pin: str | None = None, pin_pad: bool = False,
                  check_expiry: bool = True, today: date | None = None) -> CardData:
        """Power on, select the social-security application, read EF05 and EF06, power off.

        Returns a complete, checked CardData or raises a CardReaderError -- never partial
        data.  If the card asks for its PIN (6982): a locked card raises CardLockedError at
        once; else ``pin`` is presented, or with ``pin_pad`` the patient types it on the
        reader; else PinRequiredError.  A wrong PIN raises WrongPinError(remaining): ask
        again and call read_card once more.
        """
        if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 12):
            raise PinFormatError(detail="PIN not 4-12 digits")
        with self._lock:
            atr = self._power_on()
            link_ok = True
            try:
                self._select()
                ef05 = self._read_file(SFI_CARD_ID)
                ef06 = self._read_holder(pin, pin_pad)
            except (ReaderNotResponding, ReaderCommunicationError):
                link_ok = False  # a POWER_OFF would only wait out the same dead line again
                raise
            finally:
                if link_ok:
                    self._power_off_quietly()
            card = card_data_from_files(atr, ef05, ef06, terminal_no=self.terminal_no,
                                        device_no=self.device_no)
        if check_expiry:
            _check_expiry(card, today or date.today())
        return card

    def transmit(self, command: A.Command) -> A.Response:
        """Send one APDU to the powered card; SWs are left to the caller (use check_sw)."""
        with self._lock:
            resp = self._apdu(command)
            for _ in range(_MAX_FILE // 256):  # bounded: a broken card cannot keep us here
                if resp.sw >> 8 != 0x61:
                    return resp
                # T=0: the data waits behind 61xx; fetch it with GET RESPONSE.
                more = self._apdu(A.get_response(resp.sw & 0xFF))
                resp = A.Response(resp.data + more.data, more.sw)
            raise ReaderCommunicationError(detail="endless 61xx chain")

    def _apdu(self, command: A.Command) -> A.Response:
        raw = self._command(Cmd.APDU, command.encode())
        try:
            resp = A.Response.parse(raw)
        except ApduFormatError as e:
            raise ReaderCommunicationError(detail=f"APDU answer: {e}") from None
        self._trace(_trace_apdu(command), _trace_response(resp))
        return resp

    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass

    def __enter__(self) -> CardReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- card steps ---------------------------------------------------------------------

    def _power_on(self) -> bytes:
        atr = self._command(Cmd.POWER_ON)
        self._trace("POWER_ON", atr.hex().upper())
        if not atr:
            raise CardMuteError(detail="empty ATR")
        return atr

    def _power_off_quietly(self) -> None:
        try:
            self._command(Cmd.POWER_OFF)
            self._trace("POWER_OFF", "OK")
        except CardReaderError as e:  # the card's data is what matters; log and go on
            log.info("power off failed: %s", e.detail)

    def _select(self) -> None:
        resp = self.transmit(A.select_aid(SSC_AID))
        try:
            A.check_sw(resp.sw, "SELECT social-security application")
        except CardFileNotFound as e:
            raise NotSocialSecurityCard(detail=e.detail, sw=e.sw) from None

    def _read_holder(self, pin: str | None, pin_pad: bool) -> bytes:
        try:
            return self._read_file(SFI_HOLDER)
        except PinRequiredError:
            pass
        # Ask the retry counter first (costs no try): a locked card is reported as locked,
        # not as "enter your PIN".
        sw = self.transmit(A.verify_status()).sw
        if sw in (A.SW_BLOCKED, 0x63C0):
            A.check_sw(sw, "VERIFY status")
        if pin is None and pin_pad:
            pin = self._pin_from_pad()
        if pin is None:
            raise PinRequiredError(detail=f"cardholder file needs PIN (status {sw:04X})",
                                   sw=A.SW_SECURITY)
        A.check_sw(self.transmit(A.verify(pin)).sw, "VERIFY")
        return self._read_file(SFI_HOLDER)

    def _pin_from_pad(self, seconds: int = 30) -> str:
        with self._lock:
            status, digits = self._exchange(Cmd.PIN_ENTRY, bytes((seconds,)),
                                            wait=self.timeout + seconds)
        self._trace(f"PIN_ENTRY {seconds}s", f"{status_name(status)} ****")
        if status == Status.PIN_CANCELLED:
            raise PinCancelledError(detail="PIN entry cancelled or timed out on the reader")
        if status != Status.OK:
            raise ReaderCommunicationError(detail=f"PIN_ENTRY -> {status_name(status)}")
        pin = digits.decode("ascii", "replace")
        if not (pin.isdigit() and 4 <= len(pin) <= 12):
            raise PinFormatError(detail="PIN from pad not 4-12 digits")
        return pin

    def _read_file(self, sfi: int) -> bytes:
        what = f"READ BINARY SFI {sfi:02X}"
        resp = self.transmit(A.read_binary_sfi(sfi))
        A.check_sw(resp.sw, what)
        content = resp.data
        # Le=00 returns at most 256 bytes; keep reading at the offset while chunks are full.
        while len(resp.data) == 256 and len(content) < _MAX_FILE:
            resp = self.transmit(A.read_binary(len(content)))
            if resp.sw == A.SW_WRONG_OFFSET:
                break
            A.check_sw(resp.sw, what)
            content += resp.data
        return content

    # -- link layer ---------------------------------------------------------------------

    def _command(self, cmd: Cmd, data: bytes = b"") -> bytes:
        """One request/answer; maps the reader's status byte to errors; returns DATA."""
        with self._lock:
            status, payload = self._exchange(cmd, data)
        if status == Status.OK:
            return payload
        name = f"{cmd_name(cmd)} -> {status_name(status)}"
        if status == Status.NO_CARD:
            raise (NoCardError if cmd in (Cmd.POWER_ON, Cmd.CARD_STATUS) else CardRemovedError)(
                detail=name)
        if status in (Status.CARD_REMOVED, Status.NOT_POWERED):
            raise CardRemovedError(detail=name)
        if status == Status.CARD_MUTE:
            raise CardMuteError(detail=name)
        raise ReaderCommunicationError(detail=name)

    def _exchange(self, cmd: int, data: bytes, wait: float | None = None) -> tuple[int, bytes]:
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        raw = Frame(seq, cmd, data).encode()
        seen = {"nak": 0, "corrupt": 0, "timeout": 0}
        for _ in range(self.retries + 1):
            self._write(raw)
            outcome, frame = self._await(seq, wait or self.timeout)
            if frame is not None:
                return frame.code, frame.data
            seen[outcome] += 1
        detail = (f"{cmd_name(cmd)} seq {seq}: no valid answer in {self.retries + 1} tries "
                  f"(nak {seen['nak']}, corrupt {seen['corrupt']}, timeout {seen['timeout']})")
        if seen["nak"] or seen["corrupt"]:
            raise ReaderCommunicationError(detail=detail)
        raise ReaderNotResponding(detail=detail)

    def _await(self, seq: int, wait: float) -> tuple[str, Frame | None]:
        """Wait ``timeout`` for the ACK or answer; once ACKed, ``wait`` for the answer (longer
        for PIN entry, where the patient is typing)."""
        deadline, acked = time.monotonic() + self.timeout, False
        while True:
            if time.monotonic() >= deadline:
                # A corrupted LEN can leave the decoder waiting for bytes that never come.
                frames: list[Frame] = []
                while self._decoder.pending and not frames:
                    frames = self._decoder.resync()
                hit = self._match(frames, seq)
                return hit if hit[0] in ("ok", "nak") else ("timeout", None)
            chunk = self._read()
            hit = self._match(self._decoder.feed(chunk) if chunk else [], seq)
            if hit[0] == "ack":
                if not acked:  # only the first ACK: a babbling line cannot keep us here
                    acked, deadline = True, time.monotonic() + wait
            elif hit[0] != "none":
                return hit
            if any(getattr(e, "seq", None) == seq for e in self._decoder.pop_errors()):
                return "corrupt", None  # our answer arrived damaged: ask again now

    @staticmethod
    def _match(frames: list[Frame], seq: int) -> tuple[str, Frame | None]:
        result: tuple[str, Frame | None] = ("none", None)
        for f in frames:
            if f.seq != seq:
                continue  # a late answer to an earlier request, or noise
            if f.kind is Kind.DATA:
                return "ok", f
            if f.kind is Kind.NAK:
                return "nak", None
            result = ("ack", None)
        return result

    def _write(self, raw: bytes) -> None:
        try:
            self._port.write(raw)
        except (serial.SerialException, OSError) as e:
            raise ReaderNotResponding(detail=f"write failed: {e}") from None

    def _read(self) -> bytes:
        try:
            return self._port.read(self._port.in_waiting or 1)
        except (serial.SerialException, OSError) as e:
            raise ReaderNotResponding(detail=f"read failed: {e}") from None

    def _trace(self, cmd: str, response: str) -> None:
        if self.on_exchange is None:
            return
        try:
            self.on_exchange(cmd, response)
        except Exception:  # a tracing hook must never break a card read
            log.exception("on_exchange hook failed")


def _check_expiry(card: CardData, today: date) -> None:
    if card.expiry_date < today.strftime("%Y%m%d"):
        d = card.expiry_date
        raise CardExpiredError(
            f"这张社保卡已过有效期（有效期至{d[:4]}年{d[4:6]}月{d[6:]}日），"
            "请持卡人到社保卡服务网点换卡，或改用医保电子凭证",
            detail="card expired")


def _trace_apdu(cmd: A.Command) -> str:
    if cmd.ins == A.INS_VERIFY and cmd.data:
        return f"APDU {cmd.cla:02X}{cmd.ins:02X}{cmd.p1:02X}{cmd.p2:02X} PIN ****"
    return f"APDU {cmd.encode().hex().upper()}"


def _trace_response(resp: A.Response) -> str:
    body = redact_file(resp.data) + " " if resp.data else ""
    return f"{body}SW {resp.sw:04X}"


__all__ = ["CardReader", "CardReaderError", "ExchangeHook"]
