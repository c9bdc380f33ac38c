"""The supervisor's store on a real SQLite file and a real PostgreSQL: verify on the way in,
refuse disagreeing overlaps, idempotent re-imports, truncation against kept checkpoints."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clinic import audit_keys
from clinic.audit_synth import ChainWriter, simulate_clinic
from clinic.supervisor.store import ImportRefused, Store

pytestmark = pytest.mark.usefixtures("cli_supervisor")  # `clinic` processes log in

CLINICS = ("H31011600001", "H31011600002")
D1 = date(2026, 11, 2)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'town.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    s = Store(url)
    yield s
    s.close()


def clinic_chain(code: str, days: int = 3, seed: int = 1, key=None) -> ChainWriter:
    w = ChainWriter(code, key or Ed25519PrivateKey.generate())
    simulate_clinic(w, D1, days, 6, seed=seed)
    return w


def count(store: Store, clinic: str) -> int:
    return len([e for e in store.events() if e["clinic"] == clinic])


def test_bundles_of_two_clinics_are_verified_and_kept_and_a_reimport_changes_nothing(store,
                                                                                     tmp_path):
    ws = [clinic_chain(c, seed=i) for i, c in enumerate(CLINICS)]
    paths = [w.write_bundle(tmp_path / f"{w.clinic}.zip") for w in ws]
    results = [store.import_bundle(p) for p in paths]
    assert [r.status for r in results] == ["imported", "imported"]
    assert [count(store, w.clinic) for w in ws] == [len(w.lines) for w in ws]
    again = store.import_bundle(paths[0])
    assert (again.status, again.new_events) == ("already_imported", 0)
    assert count(store, CLINICS[0]) == len(ws[0].lines)
    assert {c["clinic"] for c in store.clinics()} == set(CLINICS)
    assert all(store.verify_clinic(c).status == "ok" for c in CLINICS)


def test_consecutive_exports_link_up_and_an_overlap_that_agrees_is_accepted(store, tmp_path):
    w = clinic_chain(CLINICS[0], days=4)
    mid = w.seq_at_end_of(date(2026, 11, 3))
    first = w.write_bundle(tmp_path / "a.zip", first_seq=1, last_seq=mid)
    second = w.write_bundle(tmp_path / "b.zip", first_seq=mid - 5, last_seq=w.seq)
    assert store.import_bundle(first).new_events == mid
    r = store.import_bundle(second)
    assert (r.status, r.new_events) == ("imported", w.seq - mid)
    assert store.verify_clinic(CLINICS[0]).status == "ok"


def test_an_overlap_that_disagrees_is_refused_and_nothing_of_it_is_stored(store, tmp_path):
    key = Ed25519PrivateKey.generate()
    store.import_bundle(clinic_chain(CLINICS[0], seed=1, key=key).write_bundle(tmp_path / "a.zip"))
    before = count(store, CLINICS[0])
    other = clinic_chain(CLINICS[0], days=4, seed=2, key=key)   # another history, same key
    with pytest.raises(ImportRefused) as exc:
        store.import_bundle(other.write_bundle(tmp_path / "b.zip"))
    assert exc.value.kind == "overlap_disagrees" and exc.value.seq is not None
    assert count(store, CLINICS[0]) == before


def test_a_tampered_bundle_is_refused_with_its_damage_and_seq(store, tmp_path):
    w = clinic_chain(CLINICS[0])
    w.lines[9] = w.lines[9].replace(b'"ok"', b'"no"', 1)
    with pytest.raises(ImportRefused) as exc:
        store.import_bundle(w.write_bundle(tmp_path / "bad.zip"))
    assert (exc.value.kind, exc.value.seq) == ("modified", 10)


def test_a_bundle_signed_with_another_key_than_the_pinned_one_is_refused(store, tmp_path):
    store.import_bundle(clinic_chain(CLINICS[0], days=1).write_bundle(tmp_path / "a.zip"))
    stranger = clinic_chain(CLINICS[0], days=2)                  # new key, same clinic code
    with pytest.raises(ImportRefused) as exc:
        store.import_bundle(stranger.write_bundle(tmp_path / "b.zip"))
    assert exc.value.kind == "wrong_key"


def test_a_bundle_ending_before_a_kept_day_close_checkpoint_is_refused_as_truncated(store,
                                                                                    tmp_path):
    w = clinic_chain(CLINICS[0], days=3)
    end1 = w.seq_at_end_of(D1)
    store.import_bundle(w.write_bundle(tmp_path / "d1.zip", first_seq=1, last_seq=end1))
    # Day 3's close checkpoint reached the supervisor with that day's reconciliation report.
    day3 = [c for c in w.checkpoints if c["reason"] == "day_close"][2]
    report = tmp_path / "day_close_2026-11-04.json"
    report.write_text(json.dumps({"business_date": "2026-11-04", "audit_checkpoint": day3}))
    assert store.import_checkpoint(json.loads(report.read_text())["audit_checkpoint"]) == "stored"
    # Later the clinic sends days 2-3, but the PC's chain was cut back before the close.
    short = w.write_bundle(tmp_path / "d23.zip", "2026-11-03", "2026-11-04",
                           first_seq=end1 + 1, last_seq=day3["seq"] - 4)
    with pytest.raises(ImportRefused) as exc:
        store.import_bundle(short)
    assert (exc.value.kind, exc.value.seq) == ("truncated", day3["seq"] - 3)
    full = w.write_bundle(tmp_path / "d23full.zip", "2026-11-03", "2026-11-04",
                          first_seq=end1 + 1, last_seq=w.seq)
    assert store.import_bundle(full).status == "imported"


def test_cli_import_of_several_bundles_then_again_is_idempotent(tmp_path):
    ws = [clinic_chain(c, days=2, seed=i) for i, c in enumerate(CLINICS)]
    paths = [str(w.write_bundle(tmp_path / f"{w.clinic}.zip")) for w in ws]
    pub = tmp_path / "c1.pub"
    pub.write_text(audit_keys.public_hex(ws[0].key))
    db = f"sqlite:///{tmp_path / 'town.db'}"
    run = [sys.executable, "-m", "clinic", "supervisor", "import", *paths, "--db", db,
           "--key", f"{CLINICS[0]}={pub}"]
    first = subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("新增") == 2
    second = subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 0 and second.stdout.count("已导入过") == 2
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK junk")
    third = subprocess.run([*run[:5], str(bad), "--db", db], capture_output=True, text=True,
                           timeout=60, check=False)
    assert third.returncode == 1 and "拒绝导入" in third.stdout


def test_stored_events_keep_no_patient_identifier_only_pseudonyms(store, tmp_path):
    w = clinic_chain(CLINICS[0], days=1)
    store.import_bundle(w.write_bundle(tmp_path / "a.zip"))
    settle = next(e for e in store.events() if e["action"] == "settle")
    assert len(settle["details"]["psn_ref"]) == 24
    assert not {"psn_no", "certno", "psn_name", "name"} & set(settle["details"])
    assert datetime.fromisoformat(settle["ts"]).date() == D1


def test_a_range_not_yet_imported_is_a_gap_not_damage_until_it_arrives(store, tmp_path):
    w = clinic_chain(CLINICS[0], days=3)
    e1, e2 = w.seq_at_end_of(D1), w.seq_at_end_of(date(2026, 11, 3))
    store.import_bundle(w.write_bundle(tmp_path / "d1.zip", first_seq=1, last_seq=e1))
    store.import_bundle(w.write_bundle(tmp_path / "d3.zip", first_seq=e2 + 1, last_seq=w.seq))
    r = store.verify_clinic(CLINICS[0])
    assert r.status == "unproven" and f"第 {e1 + 1}–{e2} 条尚未导入" in r.message
    store.import_bundle(w.write_bundle(tmp_path / "d2.zip", first_seq=e1 + 1, last_seq=e2))
    assert store.verify_clinic(CLINICS[0]).status == "ok"
