"""A visit as data: small immutable values passed along the counter workflow (design.md)."""
from __future__ import annotations

from dataclasses import dataclass

from settlement.values import INSUTYPE_NAMES, Credential, Person, Split  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class Operator:
    opter: str
    opter_name: str
    role: str = "worker"


@dataclass(frozen=True)
class RxItem:
    """One prescription line as the worker entered it, resolved to a formulary drug."""
    code: str
    name: str
    qty: int
    days: int
    price_fen: int
    unit: str = ""

    @property
    def amount_fen(self) -> int:
        return self.qty * self.price_fen


@dataclass(frozen=True)
class Settlement:
    visit_id: str
    msgid: str
    setl_id: str
    mdtrt_id: str
    setl_time: str
    split: Split
    receipt_path: str = ""
    training: bool = False


@dataclass(frozen=True)
class VisitResult:
    """What one counter visit produced, for the CLI, the GUI and tests alike."""
    status: str                      # settled | blocked | refused | unknown | card_error | unreachable
    person: Person | None = None
    items: tuple[RxItem, ...] = ()
    verdicts: tuple = ()
    presettlement: Split | None = None
    settlement: Settlement | None = None
    message: str = ""                # Chinese, for the counter
