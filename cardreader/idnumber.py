"""The 18-digit resident ID number (GB 11643-1999): mod-11 check digit, 'X' = 10."""
from __future__ import annotations

import re
from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")


class IdNumberError(ValueError):
    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail


def check_digit(first17: str) -> str:
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need the first 17 digits")
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS)) % 11]


def normalize(raw: str) -> str:
    """Validate a typed ID number and return it upper-cased; raise IdNumberError (Chinese) if not valid."""
    s = raw.strip().upper().replace(" ", "")
    if not _SHAPE.match(s):
        raise IdNumberError("身份证号应为18位（最后一位可为X），请核对后重新输入", f"length={len(s)}")
    try:
        date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise IdNumberError("身份证号中的出生日期不存在，请核对", "bad birth date") from None
    if check_digit(s[:17]) != s[17]:
        raise IdNumberError("身份证号校验位不对，可能输错了一位，请核对", "check digit mismatch")
    return s


def birth_date(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def sex_code(id_number: str) -> str:
    """Platform gend: '1' male, '2' female (17th digit odd = male)."""
    return "1" if int(id_number[16]) % 2 else "2"
