"""Anomaly rules over imported audit events. Ids, titles, thresholds: rules.toml (data).

Each rule kind is one function from the settlements and events of a period to findings. The
inputs are what the clinic's audit events carry (docs/audit.md): `settle` events with the
visit's keyed-hash patient reference, prescription lines (code, qty, days, ATC group, class,
label maximum), split of the money; `revoke`/`reverse`/`formulary_override` events with the
operator. Patient references are pseudonyms; findings show at most their first 8 characters.
"""
from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

RULES_PATH = Path(__file__).with_name("rules.toml")


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    description: str
    kind: str
    params: dict


@dataclass(frozen=True)
class Finding:
    rule: str
    clinic: str
    day: str
    operator: str
    subject: str         # a visit id, an operator, or a patient pseudonym prefix
    value: str
    threshold: str
    detail: str


@dataclass(frozen=True)
class SettlementView:
    clinic: str
    visit: str
    ts: str
    day: str
    operator: str
    patient: str         # town pseudonym if the clinic has the town key, else clinic:psn_ref
    card: str            # town pseudonym of the credential, or ""
    cert_type: str
    diagnosis: str
    items: tuple[dict, ...]
    fund: int
    medfee: int
    revoked: bool


def load_rules(path: Path | None = None) -> list[Rule]:
    with open(path or RULES_PATH, "rb") as fh:
        data = tomllib.load(fh)
    out = []
    for rid, spec in data.items():
        spec = dict(spec)
        out.append(Rule(rid, spec.pop("title"), spec.pop("description"), spec.pop("kind"), spec))
    unknown = [r.kind for r in out if r.kind not in KINDS]
    if unknown:
        raise ValueError(f"unknown rule kinds in {path or RULES_PATH}: {unknown}")
    return out


def settlements(events: Iterable[dict]) -> list[SettlementView]:
    events = list(events)
    revoked = {(e["clinic"], e["object"]) for e in events
               if e["action"] == "revoke" and e["outcome"] == "ok"}
    out = []
    for e in events:
        if e["action"] != "settle" or e["outcome"] != "ok":
            continue
        d = e["details"]
        patient = d.get("psn_town") or (f"{e['clinic']}:{d['psn_ref']}" if d.get("psn_ref") else "")
        out.append(SettlementView(
            e["clinic"], e["object"], e["ts"], e["ts"][:10], e["operator"], patient,
            d.get("card_town", ""), d.get("cert_type", ""), d.get("diagnosis", ""),
            tuple(d.get("rx", ())), int(d.get("fund", 0)), int(d.get("medfee", 0)),
            (e["clinic"], e["object"]) in revoked))
    return out


def _short(p: str) -> str:
    return p.split(":")[-1][:8]


def ingredient(code: str) -> str:
    return code[0] + code[6:10] if len(code) >= 10 else code


# ---- the rule kinds ---------------------------------------------------------------------

def over_supply(rule: Rule, setl, events):
    p = rule.params
    for s in setl:
        chronic = any(s.diagnosis.startswith(dx) for dx in p["chronic_dx"])
        limit = p["max_days_long"] if chronic else p["max_days"]
        for it in s.items:
            if it["days"] > limit:
                yield Finding(rule.id, s.clinic, s.day, s.operator, s.visit, f"{it['days']} 天",
                              f"> {limit} 天", f"{it['code']} 诊断 {s.diagnosis or '-'}")


def repeat_prescribing(rule: Rule, setl, events):
    tol = rule.params["early_refill_days"]
    last: dict[tuple[str, str], tuple[date, int, SettlementView]] = {}
    for s in sorted(setl, key=lambda s: s.ts):
        if s.revoked or not s.patient:
            continue
        day = date.fromisoformat(s.day)
        for it in s.items:
            k = (s.patient, ingredient(it["code"]))
            prev = last.get(k)
            if prev is not None:
                pday, pdays, ps = prev
                due = pday + timedelta(days=pdays - tol)
                if day < due:
                    yield Finding(rule.id, s.clinic, s.day, s.operator, f"患者 {_short(s.patient)}",
                                  f"提前 {(pday + timedelta(days=pdays) - day).days} 天",
                                  f"> {tol} 天", f"{it['code']} 上次 {ps.clinic} {ps.day} {pdays} 天")
            last[k] = (day, it["days"], s)


def too_many_drugs(rule: Rule, setl, events):
    mx = rule.params["max_drugs"]
    for s in setl:
        n = len({it["code"] for it in s.items})
        if n > mx:
            yield Finding(rule.id, s.clinic, s.day, s.operator, s.visit, f"{n} 种", f"> {mx} 种", "")


def dose_above_max(rule: Rule, setl, events):
    for s in setl:
        for it in s.items:
            mx, pack, days, qty = it.get("max_daily"), it.get("pack"), it["days"], it["qty"]
            if not mx or not pack or days <= 0:
                continue
            if qty * pack > days * mx and (qty - 1) * pack >= days * mx:
                yield Finding(rule.id, s.clinic, s.day, s.operator, s.visit,
                              f"{qty * pack / days:.1f}/日", f"> {mx}/日", it["code"])


def duplicate_item(rule: Rule, setl, events):
    k = rule.params["min_times"]
    for s in setl:
        counts: dict[str, int] = defaultdict(int)
        for it in s.items:
            counts[it["code"]] += 1
        for code, n in counts.items():
            if n >= k:
                yield Finding(rule.id, s.clinic, s.day, s.operator, s.visit, f"{n} 次",
                              f">= {k} 次", code)


def split_visits(rule: Rule, setl, events):
    k = rule.params["min_settlements"]
    groups: dict[tuple, list[SettlementView]] = defaultdict(list)
    for s in setl:
        if s.patient and not s.revoked:
            groups[(s.clinic, s.day, s.patient)].append(s)
    for (clinic, day, patient), ss in groups.items():
        if len(ss) >= k:
            yield Finding(rule.id, clinic, day, ",".join(sorted({s.operator for s in ss})),
                          f"患者 {_short(patient)}", f"{len(ss)} 次", f">= {k} 次",
                          " ".join(s.ts[11:16] for s in sorted(ss, key=lambda s: s.ts)))


def after_hours(rule: Rule, setl, events):
    lo, hi = rule.params["open"], rule.params["close"]
    for s in setl:
        hm = s.ts[11:16]
        if hm < lo or hm >= hi:
            yield Finding(rule.id, s.clinic, s.day, s.operator, s.visit, s.ts[11:19],
                          f"{lo}–{hi}", "")


def _per_operator_day(rule: Rule, events, pick: Callable[[dict], bool], what: str):
    k = rule.params["min_count"]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in events:
        if pick(e):
            groups[(e["clinic"], e["day"], e["operator"])].append(e)
    for (clinic, day, op), es in sorted(groups.items()):
        if len(es) >= k:
            yield Finding(rule.id, clinic, day, op, op, f"{len(es)} {what}", f">= {k}",
                          " ".join(sorted({e["details"].get("rule_id", e["action"]) for e in es})))


def many_revocations(rule: Rule, setl, events):
    yield from _per_operator_day(rule, events, lambda e: e["action"] in ("revoke", "reverse")
                                 and e["outcome"] == "ok", "笔")


def overrides(rule: Rule, setl, events):
    yield from _per_operator_day(rule, events, lambda e: e["action"] == "formulary_override", "次")


def card_two_clinics(rule: Rule, setl, events):
    k = rule.params["min_clinics"]
    groups: dict[tuple, set[str]] = defaultdict(set)
    for s in setl:
        who = s.card or (s.patient if ":" not in s.patient else "")
        if who:
            groups[(s.day, who)].add(s.clinic)
    for (day, who), clinics in sorted(groups.items()):
        if len(clinics) >= k:
            yield Finding(rule.id, ",".join(sorted(clinics)), day, "", f"卡 {who[:8]}",
                          f"{len(clinics)} 个卫生室", f">= {k}", "")


def out_of_scope(rule: Rule, setl, events):
    classes = set(rule.params["classes"])
    for s in setl:
        for it in s.items:
            if it.get("class") in classes:
                yield Finding(rule.id, s.clinic, s.day, s.operator, s.visit, it.get("class"),
                              "/".join(sorted(classes)), it["code"])


def restricted_without_diagnosis(rule: Rule, setl, events):
    """A drug whose payment is restricted to some diagnoses, settled under another one."""
    for s in setl:
        for it in s.items:
            allowed = it.get("restrict_dx") or ()
            if allowed and not any(s.diagnosis.startswith(p) for p in allowed):
                yield Finding(rule.id, s.clinic, s.day, s.operator, s.visit, s.diagnosis or "无诊断",
                              "/".join(allowed), it["code"])


def manual_identity(rule: Rule, setl, events):
    k, types = rule.params["min_count"], set(rule.params["cert_types"])
    groups: dict[tuple, int] = defaultdict(int)
    for s in setl:
        if s.cert_type in types:
            groups[(s.clinic, s.day, s.operator)] += 1
    for (clinic, day, op), n in sorted(groups.items()):
        if n >= k:
            yield Finding(rule.id, clinic, day, op, op, f"{n} 笔", f">= {k}", "")


KINDS: dict[str, Callable] = {f.__name__: f for f in (
    over_supply, repeat_prescribing, too_many_drugs, dose_above_max, duplicate_item, split_visits,
    after_hours, many_revocations, overrides, card_two_clinics, out_of_scope, manual_identity,
    restricted_without_diagnosis)}


def evaluate(events: list[dict], rules: list[Rule] | None = None, first_day: str | None = None,
             last_day: str | None = None) -> list[Finding]:
    """Findings whose day lies in [first_day, last_day]; earlier events serve as history."""
    rules = rules if rules is not None else load_rules()
    for e in events:
        e.setdefault("day", e["ts"][:10])
    setl = settlements(events)
    out = []
    for rule in rules:
        for f in KINDS[rule.kind](rule, setl, events):
            if (first_day is None or f.day >= first_day) and (last_day is None or f.day <= last_day):
                out.append(f)
    return out
