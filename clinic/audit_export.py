"""The export bundle: a date range of the audit chain, signed for the supervisor.

A zip holding
  manifest.json      clinic code and name, range, first/last seq, hash anchors, file digests,
                     the clinic's public key and its id
  manifest.sig       Ed25519 signature (hex) over "clinic-audit-manifest-v1\\0" + manifest.json
  events.jsonl       one event per line, exactly the canonical bytes its hash covers
  checkpoints.jsonl  the signed checkpoints inside the range, the export's own one last
  public_key.pem     the clinic's public key (the supervisor pins it; never trust it alone)
docs/audit.md describes the format and how to check one by hand.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from . import audit_keys
from .audit import AuditLog, canonical, checkpoints, make_checkpoint
from .audit_verify import DAMAGED, VerifyReport, _damaged, verify_lines
from .models import AuditEvent

FORMAT = "clinic-audit-bundle/1"
FILES = ("events.jsonl", "checkpoints.jsonl", "public_key.pem")


class BundleError(Exception):
    """The bundle cannot be read at all (not a zip, a file missing, unparseable manifest)."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class Bundle:
    manifest: dict
    manifest_bytes: bytes
    signature: str
    lines: list[bytes]
    checkpoints: list[dict]
    public_key: bytes
    digests_ok: dict[str, bool]
    sha256: str                      # of the whole zip file, for the import ledger

    @property
    def clinic(self) -> str:
        return self.manifest["clinic"]


def _seq_range(engine: Engine, first_day: date | None, last_day: date | None) -> tuple[int, int]:
    t = AuditEvent.__table__
    day = func.substr(t.c.ts, 1, 10)
    with engine.connect() as conn:
        lo = conn.execute(select(func.min(t.c.seq)).where(
            day >= first_day.isoformat()) if first_day else select(func.min(t.c.seq))).scalar()
        hi = conn.execute(select(func.max(t.c.seq)).where(
            day <= last_day.isoformat()) if last_day else select(func.max(t.c.seq))).scalar()
    return lo or 0, hi or 0


def export_bundle(engine: Engine, audit: AuditLog, keys_dir: Path, out: Path, *,
                  clinic_name: str = "", first_day: date | None = None,
                  last_day: date | None = None, now: datetime | None = None) -> dict:
    """Write the bundle for [first_day, last_day] (inclusive, event dates); return its manifest."""
    now = now or datetime.now()
    audit.append("audit_export", out.name, "ok", **{"from": first_day.isoformat() if first_day
                                                     else "", "to": last_day.isoformat()
                                                     if last_day else ""})
    lo, hi = _seq_range(engine, first_day, last_day)
    if not lo or not hi or hi < lo:
        raise BundleError("所选日期范围内没有审计记录", f"no events in {first_day}..{last_day}")
    t = AuditEvent.__table__
    from .audit import _FIELDS
    with engine.connect() as conn:
        rows = conn.execute(select(*[t.c[f] for f in _FIELDS], t.c.hash)
                            .where(t.c.seq.between(lo, hi)).order_by(t.c.seq)).all()
    lines = [canonical(dict(zip(_FIELDS, r[:-1]))) for r in rows]
    first_prev = rows[0].prev_hash
    last_hash = rows[-1].hash
    clinic = audit.actor.clinic
    cp = make_checkpoint(engine, clinic, keys_dir, "export", hi, now=now)
    cps = [c for c in checkpoints(engine, lo, hi)]
    key = audit_keys.load_or_create_signing_key(keys_dir)
    pub = audit_keys.public_raw(key)
    events_bytes = b"".join(x + b"\n" for x in lines)
    cps_bytes = "".join(json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n"
                        for c in cps).encode("utf-8")
    pem = audit_keys.public_pem(pub).encode()
    manifest = {
        "format": FORMAT, "clinic": clinic, "clinic_name": clinic_name,
        "from": first_day.isoformat() if first_day else None,
        "to": last_day.isoformat() if last_day else None,
        "first_seq": lo, "first_prev_hash": first_prev, "last_seq": hi, "last_hash": last_hash,
        "count": len(lines), "created": now.isoformat(timespec="seconds"),
        "export_checkpoint_seq": cp["seq"] if cp else None,
        "public_key": pub.hex(), "key_id": audit_keys.key_id(pub),
        "files": {"events.jsonl": hashlib.sha256(events_bytes).hexdigest(),
                  "checkpoints.jsonl": hashlib.sha256(cps_bytes).hexdigest(),
                  "public_key.pem": hashlib.sha256(pem).hexdigest()},
    }
    mbytes = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
    sig = audit_keys.sign(key, audit_keys.MANIFEST_DOMAIN + mbytes)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", mbytes)
        z.writestr("manifest.sig", sig + "\n")
        z.writestr("events.jsonl", events_bytes)
        z.writestr("checkpoints.jsonl", cps_bytes)
        z.writestr("public_key.pem", pem)
    os.replace(tmp, out)
    return manifest


def write_bundle(out: Path, manifest: dict, lines: list[bytes], cps: list[dict],
                 key) -> None:
    """Re-pack (used by tests and the benchmark to build bundles from made-up chains)."""
    pub = audit_keys.public_raw(key)
    events_bytes = b"".join(x + b"\n" for x in lines)
    cps_bytes = "".join(json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n"
                        for c in cps).encode("utf-8")
    pem = audit_keys.public_pem(pub).encode()
    manifest = {**manifest, "public_key": pub.hex(), "key_id": audit_keys.key_id(pub),
                "files": {"events.jsonl": hashlib.sha256(events_bytes).hexdigest(),
                          "checkpoints.jsonl": hashlib.sha256(cps_bytes).hexdigest(),
                          "public_key.pem": hashlib.sha256(pem).hexdigest()}}
    mbytes = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", mbytes)
        z.writestr("manifest.sig", audit_keys.sign(key, audit_keys.MANIFEST_DOMAIN + mbytes) + "\n")
        z.writestr("events.jsonl", events_bytes)
        z.writestr("checkpoints.jsonl", cps_bytes)
        z.writestr("public_key.pem", pem)


def read_bundle(path: Path) -> Bundle:
    try:
        raw = Path(path).read_bytes()
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            names = set(z.namelist())
            missing = {"manifest.json", "manifest.sig", *FILES} - names
            if missing:
                raise BundleError("审计包不完整", f"missing {sorted(missing)}")
            mbytes = z.read("manifest.json")
            files = {n: z.read(n) for n in FILES}
            sig = z.read("manifest.sig").decode().strip()
        manifest = json.loads(mbytes)
        if manifest.get("format") != FORMAT:
            raise BundleError("不认识的审计包格式", f"format {manifest.get('format')!r}")
        cps = [json.loads(x) for x in files["checkpoints.jsonl"].splitlines() if x.strip()]
        pub = audit_keys.parse_public_key(manifest["public_key"])
    except (OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise BundleError("无法读取审计包", f"{type(exc).__name__}: {exc}") from exc
    lines = files["events.jsonl"].split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    digests = {n: hashlib.sha256(files[n]).hexdigest() == manifest.get("files", {}).get(n)
               for n in FILES}
    return Bundle(manifest, mbytes, sig, lines, cps, pub, digests,
                  hashlib.sha256(raw).hexdigest())


def verify_bundle(bundle: Bundle, public_key: bytes | None = None, *,
                  thorough: bool = False) -> VerifyReport:
    """The chain walk first (it names the damage), then the manifest's signature and digests.

    `public_key`: the clinic's pinned key. Without it the bundle's own key is used and the
    report notes that a forger could have re-signed everything with a key of their own."""
    m = bundle.manifest
    notes: tuple[str, ...] = ()
    trusted = public_key
    if trusted is None:
        trusted = bundle.public_key
        notes = ("key not pinned: verified against the key inside the bundle",)
    mpayload = audit_keys.MANIFEST_DOMAIN + bundle.manifest_bytes
    problem = None
    if audit_keys.key_id(bundle.public_key) != audit_keys.key_id(trusted) or \
            m.get("key_id") != audit_keys.key_id(trusted):
        problem = "wrong_key"
    elif not audit_keys.signature_ok(trusted, bundle.signature, mpayload):
        problem = "bad_signature"
    anchors = []
    if problem is None:
        anchors.append({"seq": int(m["last_seq"]), "head_hash": m["last_hash"]})
    try:
        start_seq, start_prev = int(m["first_seq"]), str(m["first_prev_hash"])
    except (KeyError, ValueError):
        start_seq, start_prev = 1, "0" * 64
    report = verify_lines(bundle.lines, start_seq=start_seq, start_prev=start_prev,
                          checkpoints=bundle.checkpoints, public_key=trusted, anchors=anchors,
                          notes=notes, thorough=thorough)
    n, last = len(bundle.lines), start_seq + len(bundle.lines) - 1
    if report.status == DAMAGED:
        return report
    if problem is not None:
        return _damaged(n, None, problem, f"manifest: {problem}", start_seq, last,
                        extra="（审计包清单的签名）")
    bad_files = [f for f, ok in bundle.digests_ok.items() if not ok]
    if bad_files:
        return _damaged(n, None, "modified", f"files changed after signing: {bad_files}",
                        start_seq, last, extra=f"（审计包文件 {', '.join(bad_files)} 在签名后被改动）")
    return report
