"""Prescription rules with explained verdicts.

Each rule is one function registered under its id with the parameters it reads from
rules.toml; ``check`` runs every rule and returns one verdict per rule evaluated (per line for
line rules), passes included, so the counter can show why a prescription is fine as well as
why it is not. Severity and version come from rules.toml, never from code.

To add a rule: write ``@_rule("R00n", "param", ...) def _r00n(rx, spec)`` yielding verdicts,
and add its ``[R00n]`` table to rules.toml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from .catalog import Formulary
from .drugs import Drug
from .rulebook import RuleBook, RuleSpec, default_rulebook

PASS, WARN, BLOCK = "pass", "warn", "block"


@dataclass(frozen=True, slots=True)
class RxLine:
    """One prescription line: a drug by national code, how many sale units, for how many days."""

    code: str
    qty: int  # sale units (boxes, bottles...)
    days: int  # days' supply prescribed

    def __post_init__(self) -> None:
        # Zero or negative quantities are input errors for the form to catch, not rule verdicts.
        if not self.code.strip():
            raise ValueError("RxLine.code is empty")
        if self.qty < 1:
            raise ValueError(f"RxLine.qty must be >= 1, got {self.qty}")
        if self.days < 1:
            raise ValueError(f"RxLine.days must be >= 1, got {self.days}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one rule on one line (``line`` = 0-based index) or the whole prescription."""

    rule_id: str
    rule_version: int
    outcome: str  # "pass" | "warn" | "block"
    message: str  # Chinese, names the numbers
    line: int | None  # None for whole-prescription rules


@dataclass(frozen=True, slots=True)
class _Rx:
    """What the rules see: the lines, their drugs (None if off the formulary) and the visit."""

    lines: tuple[RxLine, ...]
    drugs: tuple[Drug | None, ...]
    emergency: bool
    diagnoses: tuple[str, ...]

    def known(self) -> Iterator[tuple[int, RxLine, Drug]]:
        """Lines whose drug is on the formulary (the others only get R001's verdict)."""
        for i, (line, drug) in enumerate(zip(self.lines, self.drugs)):
            if drug is not None:
                yield i, line, drug

    def diagnosis_matching(self, prefixes: Iterable[str]) -> str | None:
        """The first recorded diagnosis that starts with one of ``prefixes``, if any."""
        prefixes = tuple(p.strip().upper() for p in prefixes)
        for dx in self.diagnoses:
            if dx.upper().startswith(prefixes):
                return dx
        return None


RuleFn = Callable[[_Rx, RuleSpec], Iterable[Verdict]]
# rule id -> (function, parameters it needs from rules.toml); run in id order.
_RULES: dict[str, tuple[RuleFn, tuple[str, ...]]] = {}


def _rule(rule_id: str, *params: str) -> Callable[[RuleFn], RuleFn]:
    def register(fn: RuleFn) -> RuleFn:
        _RULES[rule_id] = (fn, params)
        return fn

    return register


def _verdict(spec: RuleSpec, failed: bool, message: str, line: int | None) -> Verdict:
    return Verdict(spec.rule_id, spec.version, spec.severity if failed else PASS, message, line)


@_rule("R001")
def _r001_on_formulary(rx: _Rx, spec: RuleSpec) -> Iterator[Verdict]:
    for i, (line, drug) in enumerate(zip(rx.lines, rx.drugs)):
        if drug is None:
            msg = f"药品 {line.code} 不在本卫生室医保目录内，不能用医保结算"
        else:
            msg = f"{drug.name} 在本卫生室医保目录内"
        yield _verdict(spec, drug is None, msg, i)


@_rule("R002", "max_drugs")
def _r002_drug_count(rx: _Rx, spec: RuleSpec) -> Iterator[Verdict]:
    # Every formulary item is a Western or patent medicine; a code listed twice is one drug.
    count = len({line.code.strip().upper() for line in rx.lines})
    limit = spec["max_drugs"]
    if count > limit:
        msg = f"一张处方最多 {limit} 种药，本处方 {count} 种"
    else:
        msg = f"本处方 {count} 种药，未超过 {limit} 种"
    yield _verdict(spec, count > limit, msg, None)


@_rule("R003", "max_days", "max_days_emergency", "max_days_long", "chronic_dx")
def _r003_days_supply(rx: _Rx, spec: RuleSpec) -> Iterator[Verdict]:
    chronic_dx = rx.diagnosis_matching(spec["chronic_dx"])
    for i, line, drug in rx.known():
        hint = ""
        if rx.emergency:
            # An emergency prescription is never a long prescription.
            limit, kind = spec["max_days_emergency"], "急诊处方"
        elif drug.chronic and chronic_dx:
            limit, kind = spec["max_days_long"], f"长期处方（慢性病诊断 {chronic_dx}）"
        else:
            limit, kind = spec["max_days"], "普通处方"
            if drug.chronic and line.days <= spec["max_days_long"]:
                hint = "；慢性病长期处方须先录入慢性病诊断（如 I10 高血压、E11 2型糖尿病）"
            elif chronic_dx and not drug.chronic:
                hint = "；该药不能开长期处方"
        failed = line.days > limit
        if failed:
            msg = f"{drug.name}：{kind}最多 {limit} 天，本处方 {line.days} 天{hint}"
        else:
            msg = f"{drug.name}：{line.days} 天，未超过{kind}的 {limit} 天"
        yield _verdict(spec, failed, msg, i)


def rule_ids() -> tuple[str, ...]:
    """Ids of the rules ``check`` runs, in order."""
    return tuple(sorted(_RULES))


def check(
    lines: Sequence[RxLine],
    formulary: Formulary,
    *,
    emergency: bool = False,
    diagnoses: Iterable[str] = (),
    rulebook: RuleBook | None = None,
) -> list[Verdict]:
    """Runs every rule on a prescription; one verdict per rule (per line for line rules).

    ``diagnoses`` are the visit's ICD-10 codes (e.g. "I10.x00"); ``rulebook`` defaults to the
    packaged rules.toml. Verdicts come in rule order, then line order.
    """
    book = rulebook or default_rulebook()
    rx = _Rx(
        lines=tuple(lines),
        drugs=tuple(formulary.by_code(line.code) for line in lines),
        emergency=emergency,
        diagnoses=tuple(d.strip() for d in diagnoses if d.strip()),
    )
    verdicts: list[Verdict] = []
    for rule_id in rule_ids():
        fn, params = _RULES[rule_id]
        book.require(rule_id, params)
        verdicts.extend(fn(rx, book[rule_id]))
    return verdicts


def blocking(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """Verdicts that stop insured settlement."""
    return [v for v in verdicts if v.outcome == BLOCK]


def warnings(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """Verdicts the worker may override with a reason (the override is audited)."""
    return [v for v in verdicts if v.outcome == WARN]
