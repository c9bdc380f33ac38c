"""Made-up audit chains with the shape of a clinic's real ones, for tests and benchmarks.

Events are built exactly as AuditLog.append builds them (same fields, same canonical bytes,
same hashes) and checkpoints are signed as AuditLog.checkpoint signs them, so a synthetic
bundle goes through the same verifier and importer as an exported one. Patient references are
random keyed-hash-shaped strings: no real identifier exists to leak.
"""
from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

from . import audit_keys
from .audit import GENESIS, canonical, hash_canonical

DRUGS = (  # (code, price_fen, atc, class, max_daily, pack, std_days)
    ("XC08CAF023A010010101234", 3170, "C08CA", "01", 2, 7, 7),
    ("XB01ACA026A012010101234", 1550, "B01AC", "01", 1, 30, 30),
    ("XA10BAD089A001010101234", 980, "A10BA", "01", 3, 20, 7),
    ("XJ01CAA045E001010101234", 1280, "J01CA", "02", 4, 24, 6),
    ("ZA01AAB012N001010101234", 2400, "ZA01A", "02", 3, 9, 3),
    ("XC09AAA031A001010101234", 2210, "C09AA", "01", 2, 14, 7),
    ("XN02BEA001A001010101234", 450, "N02BE", "03", 8, 20, 3),
)


class ChainWriter:
    """Appends events to an in-memory chain: canonical lines, hashes, signed checkpoints."""

    def __init__(self, clinic: str, key=None, start_seq: int = 1, start_prev: str = GENESIS):
        self.clinic = clinic
        self.key = key
        self.lines: list[bytes] = []
        self.hashes: list[str] = []
        self.checkpoints: list[dict] = []
        self.start_seq = start_seq
        self.start_prev = start_prev
        self.seq = start_seq - 1
        self.head = start_prev

    def append(self, ts: datetime, action: str, obj: str = "", outcome: str = "ok", *,
               terminal: str = "counter-1", operator: str = "D0001", role: str = "worker",
               **details) -> bytes:
        self.seq += 1
        row = {"seq": self.seq, "ts": ts.isoformat(timespec="milliseconds"),
               "clinic": self.clinic, "terminal": terminal, "operator": operator, "role": role,
               "action": action, "object": obj, "outcome": outcome,
               "details": json.dumps(details, ensure_ascii=False, sort_keys=True,
                                     separators=(",", ":")),
               "prev_hash": self.head}
        line = canonical(row)
        self.head = hash_canonical(line)
        self.lines.append(line)
        self.hashes.append(self.head)
        return line

    def checkpoint(self, ts: datetime, reason: str = "day_close", key=None,
                   seq: int | None = None) -> dict:
        key = key or self.key
        seq = seq or self.seq
        head = self.hashes[seq - self.start_seq]
        t = ts.isoformat(timespec="milliseconds")
        pub = audit_keys.public_raw(key)
        cp = {"clinic": self.clinic, "seq": seq, "head_hash": head, "ts": t, "reason": reason,
              "key_id": audit_keys.key_id(pub),
              "signature": audit_keys.sign(key, audit_keys.checkpoint_payload(
                  self.clinic, seq, head, t, reason))}
        self.checkpoints.append(cp)
        return cp

    def manifest(self, first_day: str | None = None, last_day: str | None = None,
                 clinic_name: str = "") -> dict:
        from .audit_export import FORMAT
        return {"format": FORMAT, "clinic": self.clinic, "clinic_name": clinic_name,
                "from": first_day, "to": last_day, "first_seq": self.start_seq,
                "first_prev_hash": self.start_prev, "last_seq": self.seq,
                "last_hash": self.head, "count": len(self.lines),
                "created": datetime.now().isoformat(timespec="seconds"),
                "export_checkpoint_seq": self.seq}

    def write_bundle(self, out: Path, first_day: str | None = None,
                     last_day: str | None = None, first_seq: int | None = None,
                     last_seq: int | None = None) -> Path:
        """The whole chain, or [first_seq, last_seq] of it as an export of that range would be
        (its checkpoints inside the range plus one signed over last_seq)."""
        from .audit_export import write_bundle
        a = first_seq or self.start_seq
        b = last_seq or self.seq
        lines = self.lines[a - self.start_seq:b - self.start_seq + 1]
        cps = [c for c in self.checkpoints if a <= c["seq"] <= b]
        if not cps or cps[-1]["seq"] != b:
            ts = json.loads(lines[-1])[1]
            cps.append(self.checkpoint(datetime.fromisoformat(ts), "export", seq=b))
        m = self.manifest(first_day, last_day)
        m.update(first_seq=a, last_seq=b, count=len(lines), last_hash=self.hashes[b - self.start_seq],
                 first_prev_hash=self.start_prev if a == self.start_seq
                 else self.hashes[a - self.start_seq - 1], export_checkpoint_seq=b)
        write_bundle(out, m, lines, cps, self.key)
        return out

    def seq_at_end_of(self, day: date) -> int:
        """The last seq stamped on or before `day`."""
        last = self.start_seq - 1
        for i, line in enumerate(self.lines):
            if json.loads(line)[1][:10] <= day.isoformat():
                last = self.start_seq + i
        return last


def simulate_clinic(w: ChainWriter, first: date, days: int, visits_per_day: int, *,
                    seed: int = 0, patients: int = 400, town_key: bytes | None = None,
                    operators: tuple[str, ...] = ("D0001", "D0002")) -> None:
    """A clinic's working days: start, sign-in, visits (card, lookup, prescription, register,
    fees, pre-settle, settle, receipt), the odd override and revocation, day close, stop."""
    rnd = random.Random(seed)
    psn = [f"{rnd.getrandbits(96):024x}" for _ in range(patients)]
    town = [f"{rnd.getrandbits(96):024x}" for _ in range(patients)]
    for d in range(days):
        day = first + timedelta(days=d)
        t = datetime(day.year, day.month, day.day, 7, 55)
        op = operators[d % len(operators)]
        w.append(t, "app_start", "counter-1", operator=op, training=False, formulary_version="2",
                 town_key=town_key is not None)
        t += timedelta(minutes=5)
        w.append(t, "sign_in", f"SN{day:%Y%m%d}01", operator=op)
        for v in range(visits_per_day):
            t += timedelta(minutes=rnd.randint(2, 9))
            p = rnd.randrange(patients)
            vid = f"{rnd.getrandbits(128):032x}"
            k = rnd.choice((1, 1, 1, 2, 2, 3))
            diagnosis = rnd.choice(("I10", "E11", "J06.9", "K29.7"))
            limit = 28 if diagnosis in ("I10", "E11") else 7
            items = []
            for code, price, atc, cls, mx, pack, std in rnd.sample(DRUGS, k):
                qty = rnd.choice((1, 1, 2))
                items.append({"code": code, "qty": qty, "days": min(std * qty, limit),
                              "price_fen": price, "atc": atc, "class": cls, "max_daily": mx,
                              "pack": pack})
            medfee = sum(i["qty"] * i["price_fen"] for i in items)
            fund = medfee * 7 // 10
            ctx = {"psn_ref": psn[p], "cert_type": "03", "insutype": "390",
                   "diagnosis": diagnosis,
                   "business_date": day.isoformat()}
            if town_key is not None:
                ctx["psn_town"] = town[p]
                ctx["card_town"] = town[p]
            w.append(t, "card_read", "", "ok", operator=op, card_ref=psn[p][::-1])
            w.append(t, "person_lookup", "", "ok", operator=op, psn_ref=psn[p], cert_type="03",
                     insutype="390")
            if rnd.random() < 0.03:
                w.append(t, "formulary_override", vid, "ok", operator=op, rule_id="R006",
                         reason="患者外出", **ctx)
            w.append(t, "prescription", vid, "ok", operator=op, items=[i["code"] for i in items],
                     verdicts=["R001:pass"], rx=items, **ctx)
            w.append(t, "visit_register", vid, "ok", operator=op, mdtrt_id=f"MD{vid[:12]}", **ctx)
            w.append(t, "fees_upload", vid, "ok", operator=op, lines=len(items), **ctx)
            w.append(t, "presettle", vid, "ok", operator=op, medfee=medfee, fund=fund, acct=0,
                     cash=medfee - fund, **ctx)
            t += timedelta(seconds=40)
            w.append(t, "settle", vid, "ok", operator=op, setl_id=f"S{vid[:14]}",
                     msgid=f"M{vid[:20]}", medfee=medfee, fund=fund, acct=0, cash=medfee - fund,
                     rx=items, **ctx)
            w.append(t, "receipt_print", vid, "ok", operator=op, setl_id=f"S{vid[:14]}", **ctx)
            if rnd.random() < 0.01:
                w.append(t, "revoke", vid, "ok", operator=op, msgid=f"R{vid[:20]}",
                         setl_id=f"R{vid[:14]}", medfee=-medfee, fund=-fund, rx=items, **ctx)
        t += timedelta(minutes=30)
        w.append(t, "day_close_start", day.isoformat(), operator=op)
        w.append(t, "day_close", day.isoformat(), "balanced", operator=op, differences=0,
                 cash_expected=0)
        if w.key is not None:
            w.checkpoint(t, "day_close")
        w.append(t, "sign_out", f"SN{day:%Y%m%d}01", operator=op)
        w.append(t, "app_stop", "counter-1", operator=op)
        if w.key is not None:
            w.checkpoint(t, "app_stop")
