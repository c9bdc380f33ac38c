"""Faults the virtual reader can be told to produce, so the driver's error paths can be
exercised through a real pty.  Set by ``VirtualReader`` methods; consumed as answers go out.

A counter (``corrupt_answers=2``) applies to that many answer frames, then the fault is gone.
"""
from __future__ import annotations

from dataclasses import dataclass

# A stray STX with a plausible LEN: the decoder must wait, fail the CRC, and resync.
DEFAULT_NOISE = bytes.fromhex("55 AA 02 00 10 99 FF 00")


@dataclass
class FaultPlan:
    noise_answers: int = 0          # write ``noise`` before this many answer frames
    noise: bytes = DEFAULT_NOISE
    corrupt_answers: int = 0        # flip the CRC of this many answer frames ...
    corrupt_after: int = 0          # ... once this many answers have gone out intact
    split_answers: int = 0          # send this many answers in pieces ...
    split_pieces: int = 3
    split_delay: float = 0.05       # ... with this pause between pieces
    answer_delay: float = 0.0       # slow reader: ACK at once, answer after this
    nak_requests: int = 0           # NAK this many valid requests instead of handling them
    pull_card_after_apdus: int | None = None  # card pulled out after this many more APDUs
    silent: bool = False            # reader unplugged: read everything, answer nothing
    silent_after: int | None = None  # ... from when this many more answers have gone out
    card_mute: bool = False         # card in the slot but dead: no ATR, no APDU answers

    def take(self, name: str) -> bool:
        """Use one unit of a counted fault; True if it applies now."""
        left = getattr(self, name)
        if left > 0:
            setattr(self, name, left - 1)
            return True
        return False

    def shape(self, answer: bytes) -> list[tuple[float, bytes]]:
        """The answer frame as (delay before, bytes) pieces to write."""
        if self.silent_after is not None:
            self.silent_after -= 1
            if self.silent_after <= 0:
                self.silent, self.silent_after = True, None
        pieces: list[tuple[float, bytes]] = []
        if self.take("noise_answers"):
            pieces.append((0.0, self.noise))
        if self.corrupt_answers and not self.take("corrupt_after") and self.take("corrupt_answers"):
            answer = answer[:-2] + bytes((answer[-2] ^ 0xFF,)) + answer[-1:]
        first_delay = self.answer_delay
        if self.take("split_answers") and len(answer) > 1:
            n = max(2, min(self.split_pieces, len(answer)))
            step = -(-len(answer) // n)
            for i in range(0, len(answer), step):
                pieces.append((first_delay if i == 0 else self.split_delay, answer[i:i + step]))
        else:
            pieces.append((first_delay, answer))
        return pieces
