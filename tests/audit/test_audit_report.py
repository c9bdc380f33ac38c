"""`clinic supervisor report`: a PDF with the charts and findings, a CSV beside it."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from datetime import date, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clinic.audit_synth import ChainWriter, simulate_clinic
from clinic.supervisor.store import Store

pytestmark = pytest.mark.usefixtures("cli_supervisor")  # `clinic` processes log in

CLINICS = ("H31011600001", "H31011600002", "H31011600003", "H31011600004")


@pytest.fixture
def town(tmp_path):
    """Four clinics, a week each, plus a late-night settlement and a card seen at two clinics."""
    url = f"sqlite:///{tmp_path / 'town.db'}"
    store = Store(url)
    for i, code in enumerate(CLINICS):
        w = ChainWriter(code, Ed25519PrivateKey.generate())
        simulate_clinic(w, date(2026, 11, 2), 7, 5, seed=i, town_key=b"k" * 32)
        t = datetime(2026, 11, 9, 21, 15)
        rx = [{"code": "XN02BEA001A001010101234", "qty": 1, "days": 3, "price_fen": 450,
               "atc": "N02BE", "class": "03", "max_daily": 8, "pack": 20}]
        w.append(t, "settle", f"late-{i}", "ok", setl_id="S1", medfee=450, fund=300, rx=rx,
                 psn_ref=f"{i:024x}", card_town="CARD-SHARED-0001", cert_type="03")
        w.checkpoint(t, "app_stop")
        store.import_bundle(w.write_bundle(tmp_path / f"{code}.zip"))
    store.close()
    return url


def test_report_pdf_has_charts_findings_and_a_csv_beside_it(town, tmp_path):
    out = tmp_path / "report" / "november.pdf"
    proc = subprocess.run([sys.executable, "-m", "clinic", "supervisor", "report", "--db", town,
                           "--from", "2026-11-02", "--to", "2026-11-09", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and out.read_bytes().startswith(b"%PDF")
    with open(out.with_suffix(".csv"), encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    findings = [r for r in rows if r["section"] == "finding"]
    assert {"A07", "A10", "A11"} <= {r["rule"] for r in findings}
    assert any(r["rule"] == "A10" and r["clinic"].count(",") == 3 for r in findings)
    assert {r["clinic"] for r in rows if r["section"] == "settlements"} == set(CLINICS)
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext not installed")
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=False).stdout
    for phrase in ("村卫生室医保审计报告", "各卫生室每日结算笔数", "统筹基金支付", "各异常规则的条数",
                   "非工作时间结算", "一卡多处就医", "异常明细", *CLINICS):
        assert phrase in text, phrase
    assert "完整（签名检查点覆盖）" in text
