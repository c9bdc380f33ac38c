"""Money is integer fen inside; two-decimal yuan only on the wire and on paper."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

_CENT = Decimal("0.01")


class AmountError(ValueError):
    """An amount on the wire that is not a finite number with at most two decimals."""


def to_fen(value: object) -> int:
    """Parse a wire amount (number or string, per protocol.md) into integer fen."""
    if isinstance(value, bool) or value is None:
        raise AmountError(f"not an amount: {value!r}")
    if isinstance(value, float):
        # Floats never carry money here; the strict parser yields Decimal.
        raise AmountError("amount arrived as a float")
    try:
        d = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise AmountError(f"not an amount: {value!r}") from exc
    if not d.is_finite():
        raise AmountError(f"not a finite amount: {value!r}")
    try:
        exact = d == d.quantize(_CENT)
    except InvalidOperation as exc:  # too many digits to quantize: no amount of ours is that big
        raise AmountError(f"amount out of range: {value!r}") from exc
    if not exact:
        raise AmountError(f"more than two decimals: {value!r}")
    return int((d * 100).to_integral_value())


def to_wire(fen: int) -> Decimal:
    """Integer fen -> Decimal yuan with exactly two places, for the JSON encoder."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError(f"fen must be int, got {type(fen).__name__}")
    return (Decimal(fen) / 100).quantize(_CENT)


def yuan(fen: int) -> str:
    """Integer fen -> '12.34' for paper and screens."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"
