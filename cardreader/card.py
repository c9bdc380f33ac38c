"""What the counter gets from a social-security card (protocol.md §4)."""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class CardData:
    region_code: str       # 发卡地区行政区划代码, 6 digits
    certno: str            # 社会保障号码 = 18-digit ID number
    card_no: str           # 卡号
    card_sn: str           # 卡识别码, 32 hex chars
    name: str              # 姓名
    atr: str               # 卡复位信息 (hex)
    spec_version: str      # 规范版本, e.g. "3.00"
    issue_date: str        # 发卡日期 yyyyMMdd
    expiry_date: str       # 卡有效期 yyyyMMdd
    terminal_no: str = ""  # 终端机编号
    device_no: str = ""    # 终端设备号

    def to_record(self) -> str:
        """The platform reader interface's 11-field '|'-separated record."""
        return "|".join(getattr(self, f.name) for f in fields(self))

    @classmethod
    def from_record(cls, record: str) -> CardData:
        parts = record.split("|")
        if len(parts) != 11:
            raise ValueError(f"card record has {len(parts)} fields, expected 11")
        return cls(*parts)

    def __repr__(self) -> str:  # never let a repr leak the ID number or name into a log
        return f"CardData(card_no=***{self.card_no[-2:]}, region={self.region_code})"
