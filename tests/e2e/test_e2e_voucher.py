"""End to end, electronic voucher: QR text -> voucher hub -> ecToken -> 1101 type 01 -> settle,
against the simulator as a real process, `clinic settle --qr` as a real process."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from datetime import datetime, timedelta

import pytest
from auth_helpers import admin_session
from e2e_helpers import clinic

from clinic.config import Settings
from clinic.counter import Counter
from clinic.errors import CardProblem, RefusedByInsurer
from clinic.services import start_simulator
from clinic.voucher import credential_from_voucher
from settlement.mock_network import registry
from settlement.mock_network.voucher_hub import qr_payload


def _settle_qr(home, network, qr, *extra):
    return clinic(home, "settle", "--qr", qr, "--rx", "xbdp:1:7", "--diagnosis", "I10",
                  "--network", network, "--json", *extra)


def test_a_voucher_qr_settles_end_to_end_with_token_type_01(services, tmp_path):
    network, _, insurer_db = services
    villager = registry.default_villager()
    qr = qr_payload(villager)
    home = tmp_path / "clinic"
    proc = _settle_qr(home, network, qr)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = json.loads(proc.stdout)
    assert out["status"] == "settled" and out["psn_name"] == villager.psn_name and out["setl_id"]

    con = sqlite3.connect(home / "clinic.db")
    events = con.execute("SELECT action, outcome, details FROM audit_event ORDER BY seq").fetchall()
    voucher = [e for e in events if e[0] == "voucher_read"]
    assert len(voucher) == 1 and voucher[0][1] == "ok"
    assert "id_ref" in json.loads(voucher[0][2])
    lookup = next(json.loads(e[2]) for e in events if e[0] == "person_lookup")
    assert lookup["cert_type"] == "01"
    assert "card_read" not in [e[0] for e in events]     # no card was touched

    # The insurer's settlement belongs to the villager the QR code named.
    ins = sqlite3.connect(insurer_db)
    tables = {r[0] for r in ins.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    setl_table = next(t for t in tables if "settle" in t.lower() or "setl" in t.lower())
    cols = [c[1] for c in ins.execute(f"PRAGMA table_info({setl_table})")]
    assert ins.execute(f"SELECT psn_no FROM {setl_table} WHERE medins_setl_id=?",
                       (out["msgid"],)).fetchone()[0] == villager.psn_no if "psn_no" in cols else True

    # Neither the QR text, nor the ID number, nor the name lies in clear in the db or the log.
    for path in (home / "clinic.db", home / "logs" / "clinic.log"):
        blob = path.read_bytes()
        for secret in (qr, villager.certno, villager.psn_name):
            assert secret.encode() not in blob, (path.name, "identifier in clear")


def test_an_expired_qr_code_is_refused_before_any_insurer_call(services, tmp_path):
    network, _, _ = services
    stale = qr_payload(registry.default_villager(), datetime.now() - timedelta(days=2))
    home = tmp_path / "clinic"
    proc = _settle_qr(home, network, stale)
    assert proc.returncode == 4, proc.stderr + proc.stdout
    out = json.loads(proc.stdout)
    assert out["status"] == "card_error" and "二维码已过期" in out["message"]
    con = sqlite3.connect(home / "clinic.db")
    assert con.execute("SELECT count(*) FROM journal_message WHERE infno='1101'").fetchone()[0] == 0
    assert con.execute("SELECT outcome FROM audit_event WHERE action='voucher_read'"
                       ).fetchall() == [("error",)]


def test_a_forged_qr_code_is_refused_in_chinese(services, tmp_path):
    network, _, _ = services
    qr = qr_payload(registry.default_villager())
    forged = qr[:-1] + ("0" if qr[-1] != "0" else "1")
    proc = _settle_qr(tmp_path / "clinic", network, forged)
    assert proc.returncode == 4
    assert "无法识别该二维码" in json.loads(proc.stdout)["message"]


def test_a_scanned_id_number_is_refused_with_a_hint_to_use_the_id_field(services, tmp_path):
    network, _, _ = services
    proc = _settle_qr(tmp_path / "clinic", network, registry.default_villager().certno)
    assert proc.returncode == 4
    assert "身份证号" in json.loads(proc.stdout)["message"]


@pytest.fixture(scope="module")
def short_lived_tokens(tmp_path_factory):
    """A second simulator process whose ecTokens live one second."""
    work = tmp_path_factory.mktemp("short-tokens")
    old = os.environ.get("SIM_VOUCHER_LIFETIME")
    os.environ["SIM_VOUCHER_LIFETIME"] = "1"
    try:
        sim = start_simulator(work / "insurer.db")
    finally:
        if old is None:
            os.environ.pop("SIM_VOUCHER_LIFETIME", None)
        else:
            os.environ["SIM_VOUCHER_LIFETIME"] = old
    yield sim.address
    sim.stop()


@pytest.fixture(scope="module")
def clinic_home(tmp_path_factory):
    """One clinic for the in-process tests: its msgid serials never repeat (two clinic
    homes with the same institution code could send the same msgid in the same second)."""
    return tmp_path_factory.mktemp("clinic")


def _counter(home, network) -> Counter:
    settings = Settings(home=home, network_url=network)
    return Counter(settings, admin_session(settings))


def test_an_expired_ec_token_is_refused_by_1101_with_a_chinese_message(short_lived_tokens,
                                                                       clinic_home):
    counter = _counter(clinic_home, short_lived_tokens)
    try:
        villager = registry.default_villager()
        cred = credential_from_voucher(counter, qr_payload(villager))
        assert cred.mdtrt_cert_type == "01" and len(cred.mdtrt_cert_no) == 40
        assert cred.certno == villager.certno and cred.psn_name == villager.psn_name
        time.sleep(1.2)
        with pytest.raises(RefusedByInsurer) as e:
            counter.lookup(cred)
        assert "医保电子凭证已过期" in e.value.message
        fresh = credential_from_voucher(counter, qr_payload(villager))
        assert counter.lookup(fresh).psn_no == villager.psn_no   # a new scan works at once
    finally:
        counter.close()


def test_a_made_up_ec_token_is_refused_by_1101(short_lived_tokens, clinic_home):
    from settlement.values import Credential
    counter = _counter(clinic_home, short_lived_tokens)
    try:
        villager = registry.default_villager()
        real = credential_from_voucher(counter, qr_payload(villager)).mdtrt_cert_no
        # The simulator's former stand-in (a day token anyone could compute) and a real
        # token with one character changed: neither is accepted.
        day_token = hashlib.sha1(f"sim-ecToken|{villager.psn_no}|{datetime.now():%Y%m%d}"
                                 .encode()).hexdigest().upper()
        altered = real[:-1] + ("0" if real[-1] != "0" else "1")
        for token in (day_token, altered):
            with pytest.raises(RefusedByInsurer) as e:
                counter.lookup(Credential("01", token))
            assert "医保电子凭证无效" in e.value.message
    finally:
        counter.close()


def test_hub_unreachable_is_a_network_problem_not_a_card_problem(tmp_path):
    from clinic.errors import NetworkProblem
    counter = _counter(tmp_path / "clinic", "http://127.0.0.1:9")
    try:
        with pytest.raises(NetworkProblem) as e:
            credential_from_voucher(counter, qr_payload(registry.default_villager()))
        assert not isinstance(e.value, CardProblem) and "电子凭证服务" in e.value.message
    finally:
        counter.close()
