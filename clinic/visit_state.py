"""A visit's states and the only transitions allowed between them."""
from __future__ import annotations

NEW = "new"
REGISTERED = "registered"
FEES_UPLOADED = "fees_uploaded"
PRESETTLED = "presettled"
SETTLING = "settling"
SETTLED = "settled"
REVOKING = "revoking"
REVOKED = "revoked"
REVERSING = "reversing"
REVERSED = "reversed"
FAILED = "failed"
UNKNOWN = "unknown"

ALLOWED: dict[str, frozenset[str]] = {
    NEW: frozenset({REGISTERED, FAILED}),
    REGISTERED: frozenset({FEES_UPLOADED, FAILED}),
    FEES_UPLOADED: frozenset({PRESETTLED, FAILED}),
    PRESETTLED: frozenset({SETTLING, FAILED}),
    # A settle with no answer is unknown, never failed, until the insurer is asked again.
    SETTLING: frozenset({SETTLED, UNKNOWN, FAILED}),
    UNKNOWN: frozenset({SETTLED, FAILED, REVERSING}),
    SETTLED: frozenset({REVOKING}),
    REVOKING: frozenset({REVOKED, SETTLED}),
    REVERSING: frozenset({REVERSED, UNKNOWN}),
    REVOKED: frozenset(),
    REVERSED: frozenset(),
    FAILED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


def check(from_state: str, to_state: str) -> None:
    if to_state not in ALLOWED.get(from_state, frozenset()):
        raise IllegalTransition(f"visit cannot go from {from_state} to {to_state}")
