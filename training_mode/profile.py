"""The training profile: its own data directory, numbering and a simulator on this machine only.

Like a wallet's testnet: a separate profile rather than a flag sprinkled through the code, so
nothing done in training can reach the real books or the real network.
"""
from __future__ import annotations

from dataclasses import replace

from clinic.config import Settings, load_settings

BANNER = "培训模式 — 不产生真实费用"


def training_settings() -> Settings:
    base = load_settings(training=True)
    # Own numbering: a 'T' institution code, so no training msgid or receipt can pass for a real one.
    return replace(base, fixmedins_code="T" + base.fixmedins_code[1:],
                   fixmedins_name=base.fixmedins_name + "（培训）")
