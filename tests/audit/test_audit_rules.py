"""Each anomaly rule, table-driven: the boundary value itself and one step past it."""
from __future__ import annotations

import pytest

from clinic.supervisor.rules import evaluate, load_rules

RULES = {r.id: r for r in load_rules()}
NIFE = "XC08CAF023A010010101234"     # C08CA, chronic, 7 tablets a box, at most 2 a day


def item(code=NIFE, qty=1, days=7, atc="C08CA", cls="01", max_daily=2, pack=7, price=100):
    return {"code": code, "qty": qty, "days": days, "price_fen": price, "atc": atc,
            "class": cls, "max_daily": max_daily, "pack": pack}


def drug(n: int):
    return item(code=f"XA0{n}AAA{n:03d}0A001010101234"[:23], atc=f"A0{n}AA")


_seq = iter(range(1, 10**6))


def ev(action, obj="v1", *, clinic="H31011600001", ts="2026-11-02T10:00:00.000", op="D0001",
       outcome="ok", **details):
    return {"clinic": clinic, "seq": next(_seq), "ts": ts, "day": ts[:10], "operator": op,
            "role": "worker", "action": action, "object": obj, "outcome": outcome,
            "details": details}


def settle(visit="v1", *, patient="p1", rx=None, day="2026-11-02", time="10:00:00", dx="J06.9",
           cert="03", card="", clinic="H31011600001", op="D0001", town=None):
    d = {"psn_ref": patient, "rx": rx if rx is not None else [item()], "diagnosis": dx,
         "cert_type": cert, "fund": 70, "medfee": 100}
    if card:
        d["card_town"] = card
    if town:
        d["psn_town"] = town
    return ev("settle", visit, clinic=clinic, ts=f"{day}T{time}.000", op=op, **d)


CASES = [
    # rule, case, events, findings
    ("A01", "7 days on an ordinary prescription", [settle(rx=[item(days=7)])], 0),
    ("A01", "8 days on an ordinary prescription", [settle(rx=[item(days=8)])], 1),
    ("A01", "28 days with a chronic diagnosis", [settle(rx=[item(days=28)], dx="I10")], 0),
    ("A01", "29 days with a chronic diagnosis", [settle(rx=[item(days=29)], dx="I10")], 1),
    ("A02", "refill exactly early_refill_days early",
     [settle("a", rx=[item(days=14)]), settle("b", day="2026-11-13")], 0),
    ("A02", "refill one day earlier still",
     [settle("a", rx=[item(days=14)]), settle("b", day="2026-11-12")], 1),
    ("A02", "same person at another clinic (town pseudonym)",
     [settle("a", rx=[item(days=14)], town="T1"),
      settle("b", day="2026-11-05", town="T1", clinic="H31011600002", patient="other")], 1),
    ("A02", "a revoked earlier supply does not count",
     [settle("a", rx=[item(days=14)]), ev("revoke", "a"), settle("b", day="2026-11-05")], 0),
    ("A03", "5 drugs", [settle(rx=[drug(n) for n in range(1, 6)])], 0),
    ("A03", "6 drugs", [settle(rx=[drug(n) for n in range(1, 7)])], 1),
    ("A04", "exactly the label maximum", [settle(rx=[item(qty=2, days=7)])], 0),
    ("A04", "one box more than the maximum needs", [settle(rx=[item(qty=3, days=7)])], 1),
    ("A04", "over only because boxes are whole",
     [settle(rx=[item(qty=1, days=3, max_daily=3, pack=10)])], 0),
    ("A05", "each code once", [settle(rx=[item(), drug(1)])], 0),
    ("A05", "one code twice in a visit", [settle(rx=[item(), item()])], 1),
    ("A06", "one settlement a day", [settle("a"), settle("b", day="2026-11-03")], 0),
    ("A06", "two settlements one day", [settle("a"), settle("b", time="10:20:00")], 1),
    ("A06", "two, one of them revoked", [settle("a"), settle("b"), ev("revoke", "a")], 0),
    ("A07", "08:00 opening", [settle(time="08:00:00")], 0),
    ("A07", "07:59 before opening", [settle(time="07:59:59")], 1),
    ("A07", "17:29 before closing", [settle(time="17:29:59")], 0),
    ("A07", "17:30 closing time", [settle(time="17:30:00")], 1),
    ("A08", "2 revocations", [ev("revoke", "a"), ev("revoke", "b")], 0),
    ("A08", "2 revocations and a reversal",
     [ev("revoke", "a"), ev("revoke", "b"), ev("reverse", "c")], 1),
    ("A08", "refused revocations do not count",
     [ev("revoke", "a"), ev("revoke", "b"), ev("revoke", "c", outcome="refused")], 0),
    ("A08", "3 by three operators", [ev("revoke", "a"), ev("revoke", "b", op="D2"),
                                     ev("reverse", "c", op="D3")], 0),
    ("A09", "no override", [settle()], 0),
    ("A09", "one override", [ev("formulary_override", "v1", rule_id="R006", reason="外出")], 1),
    ("A10", "one card, two clinics, one day",
     [settle("a", card="C1"), settle("b", card="C1", clinic="H31011600002", time="15:00:00")], 1),
    ("A10", "one card, two clinics, two days",
     [settle("a", card="C1"), settle("b", card="C1", clinic="H31011600002", day="2026-11-03")], 0),
    ("A10", "one card twice at one clinic", [settle("a", card="C1"), settle("b", card="C1")], 0),
    ("A11", "乙类 item", [settle(rx=[item(cls="02")])], 0),
    ("A11", "丙类 item sent with the settlement", [settle(rx=[item(cls="03")])], 1),
    ("A12", "2 ID-number settlements", [settle("a", cert="02"), settle("b", cert="02")], 0),
    ("A12", "3 ID-number settlements",
     [settle("a", cert="02"), settle("b", cert="02"), settle("c", cert="02")], 1),
    ("A13", "restricted drug with a matching diagnosis",
     [settle(rx=[{**item(), "restrict_dx": ["E11"]}], dx="E11.9")], 0),
    ("A13", "restricted drug under another diagnosis",
     [settle(rx=[{**item(), "restrict_dx": ["E11"]}], dx="J06.9")], 1),
    ("A13", "unrestricted drug", [settle(rx=[item()], dx="J06.9")], 0),
]


@pytest.mark.parametrize("rule_id,case,events,expected", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_anomaly_rule_boundary(rule_id, case, events, expected):
    findings = evaluate([dict(e) for e in events], [RULES[rule_id]])
    assert len(findings) == expected, findings
    assert all(f.rule == rule_id for f in findings)


def test_every_rule_in_the_file_has_a_boundary_case_here():
    assert {c[0] for c in CASES} == set(RULES)


def test_rules_are_data_thresholds_come_from_the_toml(tmp_path):
    text = (RULES_FILE := __import__("clinic.supervisor.rules", fromlist=["x"]).RULES_PATH) \
        .read_text(encoding="utf-8").replace("max_drugs = 5", "max_drugs = 6")
    (tmp_path / "rules.toml").write_text(text, encoding="utf-8")
    assert RULES_FILE.exists()
    changed = {r.id: r for r in load_rules(tmp_path / "rules.toml")}
    six = [settle(rx=[drug(n) for n in range(1, 7)])]
    assert evaluate(six, [changed["A03"]]) == []
    assert len(evaluate([dict(e) for e in six], [RULES["A03"]])) == 1


def test_findings_outside_the_period_are_left_out_but_earlier_events_serve_as_history():
    events = [settle("a", rx=[item(days=14)], day="2026-10-30"), settle("b", day="2026-11-02")]
    assert len(evaluate(events, [RULES["A02"]], "2026-11-01", "2026-11-30")) == 1
    assert evaluate(events, [RULES["A02"]], "2026-11-03", "2026-11-30") == []
