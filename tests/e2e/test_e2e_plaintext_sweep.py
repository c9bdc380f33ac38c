"""Issue 8's proof: a copied disk reveals no patient.

Patients are settled by card, voucher QR and typed ID number; one settlement is revoked with a
reason that names the patient; one process is killed in the middle of a settlement and recovered;
then the day is closed, a receipt reprinted, a backup made and the audit log exported. Every file
under the data directory (the logs are in it) is then searched for each patient's name, ID
number, insurance number and card number in UTF-8, UTF-16 (both byte orders) and GBK, inside
zip archives and in the text of every PDF too. None may appear.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import zipfile
from pathlib import Path

from e2e_helpers import clinic

from clinic.crypto import mask_name
from settlement.mock_network import registry
from settlement.mock_network.voucher_hub import qr_payload

ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "gbk")


def _patients(n: int):
    """Distinct insured villagers with three-character names (a two-character name is too short
    a marker: four bytes turn up by chance in ciphertext)."""
    default = registry.default_villager()
    rest = [v for v in registry.build_registry()
            if v.insu_state == "1" and v.card_expiry_date.year > 2026 and v.insutype == "390"
            and len(v.psn_name) == 3 and v.psn_no != default.psn_no]
    names = {default.psn_name}
    out = [default]
    for v in rest:
        if v.psn_name not in names:
            names.add(v.psn_name)
            out.append(v)
        if len(out) == n:
            return out
    raise AssertionError("registry has too few distinct villagers")


def _markers(villagers) -> dict[bytes, str]:
    out = {}
    for v in villagers:
        for label, value in (("name", v.psn_name), ("certno", v.certno), ("psn_no", v.psn_no),
                             ("card_no", v.card_no)):
            for enc in ENCODINGS:
                out[value.encode(enc)] = f"{label} {value} ({enc})"
    return out


def _contents(path: Path):
    """The file's bytes, each zip member's bytes, and a PDF's extracted text."""
    data = path.read_bytes()
    yield str(path), data
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                yield f"{path}!{name}", z.read(name)
    if data.startswith(b"%PDF"):
        text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                              check=True).stdout
        yield f"{path} (text)", text


def _sweep(root: Path, markers: dict[bytes, str]) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        for where, data in _contents(path):
            found += [f"{where}: {what}" for m, what in markers.items() if m in data]
    return found


def test_no_patient_identifier_lies_in_clear_anywhere_under_the_data_directory(services, tmp_path):
    assert shutil.which("pdftotext"), "pdftotext (poppler-utils) is part of the CI install"
    network, reader, insurer_db = services
    home = tmp_path / "clinic"
    env = {"CLINIC_NETWORK": network}
    by_card, by_qr, by_id, revoked, crashed = _patients(5)

    def settle(*how, extra_env=None):
        return clinic(home, "--verbose", "settle", *how, "--rx", "xbdp:1:7", "--diagnosis", "I10",
                      "--network", network, "--json", env={**env, **(extra_env or {})})

    assert settle("--reader", reader).returncode == 0          # the reader holds the default card
    assert settle("--qr", qr_payload(by_qr)).returncode == 0
    kept = json.loads(settle("--id-number", by_id.certno).stdout)
    assert kept["status"] == "settled"
    out = json.loads(settle("--id-number", revoked.certno).stdout)
    assert out["status"] == "settled"

    con = sqlite3.connect(home / "clinic.db")
    visit_id = con.execute("SELECT id FROM visit WHERE setl_id = ?", (out["setl_id"],)).fetchone()[0]
    reason = f"患者{revoked.psn_name}（身份证 {revoked.certno}）要求撤销"
    rv = clinic(home, "visit", "revoke", visit_id, "--reason", reason, env=env)
    assert rv.returncode == 0, rv.stderr

    killed = settle("--id-number", crashed.certno, extra_env={"CLINIC_CRASH_AT": "2207:after_answer"})
    assert killed.returncode == -9                              # SIGKILL mid-settlement
    assert clinic(home, "recover", env=env).returncode == 0

    kept_id = con.execute("SELECT id FROM visit WHERE setl_id = ?", (kept["setl_id"],)).fetchone()[0]
    assert clinic(home, "visit", "reprint", kept_id, env=env).returncode == 0
    assert clinic(home, "day", "close", "--cash-counted", "0", env=env).returncode in (0, 1)
    backup = clinic(home, "backup", "create", env=env)
    assert backup.returncode == 0, backup.stderr
    export = clinic(home, "audit", "export", "--out", str(home / "exports" / "audit.zip"))
    assert export.returncode == 0, export.stderr

    # Search by ID number still works: through the keyed hash, not the number.
    found = json.loads(clinic(home, "visit", "list", "--id-number", by_id.certno, "--json").stdout)
    assert [v["setl_id"] for v in found] == [kept["setl_id"]]

    files = [p for p in home.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in files}
    # The sweep covers what the steps wrote: database and WAL, log, receipts, backup, export.
    assert {".db", ".log", ".pdf", ".zip"} <= kinds, kinds
    assert any("backups" in p.parts for p in files)
    markers = _markers([by_card, by_qr, by_id, revoked, crashed])
    assert _sweep(home, markers) == []

    # The sweep does find what is there: the insurer's own database holds its registry in clear,
    # and a receipt's text holds the masked name.
    assert _sweep(insurer_db.parent, markers)
    receipt = next(p for p in home.rglob("*.pdf"))
    masked = {mask_name(v.psn_name).encode(): v.psn_name for v in (by_card, by_qr, by_id)}
    assert any(m in data for _, data in _contents(receipt) for m in masked)
