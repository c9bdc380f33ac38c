"""Typed errors of the card-reader layer.

Two families:

* ``ProtocolError`` -- bytes that are not a valid frame / TLV / APDU.  Raised by the pure
  codecs (framing, tlv, apdu); the driver turns them into a ``CardReaderError``.
* ``CardReaderError(message, detail)`` -- what the counter sees.  ``message`` is plain
  Chinese for the counter worker, ``detail`` English for the log.  Neither ever holds an ID
  number, a name or a card number in clear.
"""
from __future__ import annotations


class ProtocolError(Exception):
    """Bytes that break the framing, TLV or APDU rules."""


class FrameTooLong(ProtocolError):
    pass


class BadEndMarker(ProtocolError):
    pass


class CrcMismatch(ProtocolError):
    def __init__(self, text: str, seq: int = 0):
        super().__init__(text)
        self.seq = seq  # the (possibly corrupted) SEQ of the bad frame, so a NAK can name it


class MalformedFrame(ProtocolError):
    """A one-shot decode (``decode_frame``) got something that is not exactly one frame."""


class BadInput(ProtocolError, TypeError):
    """``FrameDecoder.feed`` was given something other than bytes."""


class TlvError(ProtocolError):
    pass


class ApduFormatError(ProtocolError):
    pass


class CardReaderError(Exception):
    """Base of everything the counter may see.  Subclasses carry a default Chinese message."""

    default_message = "读卡失败，请重新插卡后再试"

    def __init__(self, message: str | None = None, detail: str = ""):
        self.message = message or self.default_message
        self.detail = detail
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} [{self.detail}]" if self.detail else self.message


class ReaderNotFound(CardReaderError):
    default_message = "找不到读卡器，请检查读卡器连接线是否插好，或在设置里选择正确的端口"


class ReaderNotResponding(CardReaderError):
    default_message = "读卡器没有响应，请检查读卡器连接线后重试"


class ReaderCommunicationError(CardReaderError):
    default_message = "读卡器通信受到干扰，读卡失败，请检查读卡器连接线后重试"


class NoCardError(CardReaderError):
    default_message = "未检测到医保卡，请将社保卡芯片朝上插入读卡器"


class CardMuteError(CardReaderError):
    default_message = "卡片没有应答，请确认社保卡芯片朝上并插到底后重试"


class CardRemovedError(CardReaderError):
    default_message = "读卡过程中卡片被拔出，请重新插入社保卡后再读"


class CardDataError(CardReaderError):
    default_message = "读卡失败：卡片数据校验错误，请重新插卡"


class CardExpiredError(CardReaderError):
    default_message = "这张社保卡已过有效期，请持卡人到社保卡服务网点换卡，或改用医保电子凭证"


class CardStatusError(CardReaderError):
    """The card answered an APDU with a status word other than 9000."""

    default_message = "读卡失败：卡片返回错误，请重新插卡"

    def __init__(self, message: str | None = None, detail: str = "", sw: int = 0):
        super().__init__(message, detail)
        self.sw = sw


class NotSocialSecurityCard(CardStatusError):
    default_message = "这张卡不是社保卡，请插入社会保障卡，或改用医保电子凭证、身份证"


class CardFileNotFound(CardStatusError):
    default_message = "读卡失败：卡内找不到所需的数据，请确认插入的是社保卡后重试"


class PinRequiredError(CardStatusError):
    default_message = "需要持卡人输入社保卡密码后才能读卡"


class WrongPinError(CardStatusError):
    def __init__(self, remaining: int, detail: str = "", sw: int = 0):
        super().__init__(f"社保卡密码错误，还可以再试{remaining}次", detail, sw)
        self.remaining = remaining


class CardLockedError(CardStatusError):
    default_message = "社保卡密码已锁定，请持卡人到社保卡服务网点解锁，或改用医保电子凭证"


class PinCancelledError(CardReaderError):
    default_message = "持卡人取消了密码输入，请重新读卡"


class PinFormatError(CardReaderError):
    default_message = "社保卡密码只能是数字（通常为6位），请重新输入"
