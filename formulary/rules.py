"""Prescription rules with explained verdicts.

Each rule is one function registered under its id with the parameters it reads from
rules.toml; ``check`` runs every rule and returns one verdict per rule evaluated (per line for
line rules), passes included, so the counter can show why a prescription is fine as well as
why it is not. Severity and version come from rules.toml, never from code.

To add a rule: write ``@_rule("R00n", "param", ...) def _r00n(rx, spec)`` yielding verdicts,
and add its ``[R00n]`` table to rules.toml.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Callable, Iterable, Iterator, Sequence

from .catalog import Formulary
from .drugs import SEX_NAMES, Drug, ingredient_key, yuan
from .rulebook import RuleBook, RuleSpec, default_rulebook

PASS, WARN, BLOCK = "pass", "warn", "block"
_SEX_CODES = {"1": "1", "2": "2", "男": "1", "女": "2"}


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
class PriorSupply:
    """A drug the patient was given before (from this clinic's records), for repeat checks."""

    code: str
    dispensed_on: date
    days: int

    @property
    def lasts_until(self) -> date:
        """The first day the supply is used up."""
        return self.dispensed_on + timedelta(days=self.days)


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
    age: int | None = None
    sex: str | None = None  # "1" male, "2" female, None unknown
    history: tuple[PriorSupply, ...] = ()
    today: date | None = None

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


def _amount(value: Fraction) -> str:
    """A dose for a message: 1, 4.3, 0.5 (one decimal at most)."""
    text = f"{float(value):.1f}"
    return text[:-2] if text.endswith(".0") else text


@_rule("R004", "whole_unit_rounding")
def _r004_daily_dose(rx: _Rx, spec: RuleSpec) -> Iterator[Verdict]:
    for i, line, drug in rx.known():
        units = line.qty * drug.pack
        allowed = drug.max_daily * line.days
        dose = Fraction(units, line.days)
        head = f"{drug.name}：{line.qty} {drug.unit}×{drug.pack}{drug.pack_unit} 用 {line.days} 天"
        if units <= allowed:
            yield _verdict(
                spec, False,
                f"{head}，合每日 {_amount(dose)}{drug.pack_unit}，未超过每日最多 {drug.max_daily}{drug.pack_unit}",
                i,
            )
        elif spec["whole_unit_rounding"] and (line.qty - 1) * drug.pack < allowed:
            yield _verdict(
                spec, False,
                f"{head}，按整{drug.unit}发药，未超过每日最多 {drug.max_daily}{drug.pack_unit}",
                i,
            )
        else:
            yield _verdict(
                spec, True,
                f"{drug.name}：每日最多 {drug.max_daily}{drug.pack_unit}，"
                f"本处方 {line.qty} {drug.unit}×{drug.pack}{drug.pack_unit} 用 {line.days} 天，"
                f"合每日 {_amount(dose)}{drug.pack_unit}",
                i,
            )


@_rule("R005")
def _r005_duplicate_therapy(rx: _Rx, spec: RuleSpec) -> Iterator[Verdict]:
    groups: dict[str, list[tuple[int, Drug]]] = defaultdict(list)
    for i, _, drug in rx.known():
        groups[drug.atc].append((i, drug))
    duplicates = [g for g in groups.values() if len(g) > 1]
    for group in duplicates:
        # Reported on the second line of the group: the first one is the drug "already there".
        names = "、".join(d.name for _, d in group)
        yield _verdict(
            spec, True, f"{names} 同属一类药（{group[0][1].atc}），重复用药", group[1][0]
        )
    if not duplicates:
        yield _verdict(spec, False, "没有同类药重复", None)


@_rule("R006", "early_refill_days")
def _r006_repeat_prescribing(rx: _Rx, spec: RuleSpec) -> Iterator[Verdict]:
    today = rx.today or date.today()
    tolerance = spec["early_refill_days"]
    for i, line, drug in rx.known():
        key = ingredient_key(drug.code)
        before = [p for p in rx.history if ingredient_key(p.code) == key and p.dispensed_on <= today]
        if not before:
            yield _verdict(spec, False, f"{drug.name}：近期没有同成分用药记录", i)
            continue
        # Of supplies running out the same day, the later dispensed one: no tie left to order.
        last = max(before, key=lambda p: (p.lasts_until, p.dispensed_on))
        left = (last.lasts_until - today).days
        when = f"{last.dispensed_on.month} 月 {last.dispensed_on.day} 日"
        if left > tolerance:
            until = last.lasts_until - timedelta(days=1)
            yield _verdict(
                spec, True,
                f"{drug.name}：{when}已开 {last.days} 天，可用到 {until.month} 月 {until.day} 日，"
                f"还剩 {left} 天，提前取药最多 {tolerance} 天",
                i,
            )
        else:
            rest = f"还剩 {left} 天，在提前 {tolerance} 天以内" if left > 0 else "已用完"
            yield _verdict(spec, False, f"{drug.name}：{when}所开 {last.days} 天{rest}", i)


@_rule("R007", "unknown_patient")
def _r007_restrictions(rx: _Rx, spec: RuleSpec) -> Iterator[Verdict]:
    for i, _, drug in rx.known():
        limits: list[str] = []  # what the restriction is, for a passing message
        problems: list[str] = []  # restrictions the patient does not meet
        unknown: list[str] = []  # restrictions that cannot be checked
        if drug.restrict_dx:
            codes = "、".join(drug.restrict_dx)
            limits.append(f"限 {codes} 诊断")
            if not rx.diagnosis_matching(drug.restrict_dx):
                recorded = "、".join(rx.diagnoses) if rx.diagnoses else "未录入"
                problems.append(f"限 {codes} 诊断使用，本次诊断 {recorded}")
        if drug.min_age is not None or drug.max_age is not None:
            if drug.min_age is not None and drug.max_age is not None:
                span = f"{drug.min_age}–{drug.max_age} 岁"
            elif drug.min_age is not None:
                span = f"{drug.min_age} 岁及以上"
            else:
                span = f"{drug.max_age} 岁及以下"
            limits.append(f"限 {span}")
            if rx.age is None:
                unknown.append(f"限 {span}使用，未提供患者年龄")
            elif (drug.min_age is not None and rx.age < drug.min_age) or (
                drug.max_age is not None and rx.age > drug.max_age
            ):
                problems.append(f"限 {span}使用，患者 {rx.age} 岁")
        if drug.sex is not None:
            who = f"{SEX_NAMES[drug.sex]}性"
            limits.append(f"限{who}")
            if rx.sex is None:
                unknown.append(f"限{who}使用，未提供患者性别")
            elif rx.sex != drug.sex:
                problems.append(f"限{who}使用，患者为{SEX_NAMES[rx.sex]}性")
        if problems:
            yield _verdict(spec, True, f"{drug.name}：{'；'.join(problems + unknown)}", i)
        elif unknown:
            yield Verdict(
                spec.rule_id, spec.version, spec["unknown_patient"],
                f"{drug.name}：{'；'.join(unknown)}，请核对", i,
            )
        elif limits:
            yield _verdict(spec, False, f"{drug.name}：{'，'.join(limits)}，本次符合", i)
        else:
            yield _verdict(spec, False, f"{drug.name}：无限定支付范围", i)


@_rule("R008")
def _r008_price_ceiling(rx: _Rx, spec: RuleSpec) -> Iterator[Verdict]:
    for i, line, drug in rx.known():
        if drug.chrgitm_lv == "03":
            yield _verdict(spec, False, f"{drug.name}：丙类药品，全部自付，不设限价", i)
        elif drug.price_fen > drug.ceiling_fen:
            excess = drug.price_fen - drug.ceiling_fen
            yield _verdict(
                spec, True,
                f"{drug.name}：单价 {yuan(drug.price_fen)} 元高于医保限价 {yuan(drug.ceiling_fen)} 元，"
                f"超出部分 {yuan(excess)} 元×{line.qty} {drug.unit} = {yuan(excess * line.qty)} 元由患者自付",
                i,
            )
        else:
            yield _verdict(
                spec, False,
                f"{drug.name}：单价 {yuan(drug.price_fen)} 元，未超过医保限价 {yuan(drug.ceiling_fen)} 元",
                i,
            )


@_rule("R009")
def _r009_over_supply(rx: _Rx, spec: RuleSpec) -> Iterator[Verdict]:
    for i, line, drug in rx.known():
        lasts = line.qty * drug.std_days
        if (line.qty - 1) * drug.std_days >= line.days:
            needed = -(-line.days // drug.std_days)  # ceiling division
            yield _verdict(
                spec, True,
                f"{drug.name}：{line.qty} {drug.unit}按常用量约可用 {lasts} 天，处方只写 {line.days} 天，"
                f"{needed} {drug.unit}即够",
                i,
            )
        else:
            yield _verdict(
                spec, False, f"{drug.name}：{line.qty} {drug.unit}约可用 {lasts} 天，与处方 {line.days} 天相符", i
            )


def rule_ids() -> tuple[str, ...]:
    """Ids of the rules ``check`` runs, in order."""
    return tuple(sorted(_RULES))


def check(
    lines: Sequence[RxLine],
    formulary: Formulary,
    *,
    emergency: bool = False,
    diagnoses: Iterable[str] = (),
    age: int | None = None,
    sex: str | None = None,
    history: Iterable[PriorSupply] = (),
    today: date | None = None,
    rulebook: RuleBook | None = None,
) -> list[Verdict]:
    """Runs every rule on a prescription; one verdict per rule (per line for line rules).

    ``diagnoses`` are the visit's ICD-10 codes (e.g. "I10.x00"); ``age`` in years and ``sex``
    ("1"/"2" as the platform's ``gend``, or 男/女) are the patient's, None when unknown;
    ``history`` is what the patient was dispensed before and ``today`` the visit date (default:
    the system date); ``rulebook`` defaults to the packaged rules.toml. Verdicts come in rule
    order, then line order.
    """
    book = rulebook or default_rulebook()
    rx = _Rx(
        lines=tuple(lines),
        drugs=tuple(formulary.by_code(line.code) for line in lines),
        emergency=emergency,
        diagnoses=tuple(d.strip() for d in diagnoses if d.strip()),
        age=age,
        sex=_SEX_CODES.get((sex or "").strip()),
        history=tuple(history),
        today=today,
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
