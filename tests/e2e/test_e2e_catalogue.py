"""The national catalogue end to end: `clinic formulary catalogue sync` against the real simulator
process (1301 + 9102, and 1312 page by page), then `check` and `search --catalogue` offline."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from clinic.cli import main
from clinic.db import open_database
from clinic.models import AuditEvent
from clinic.services import start_simulator
from settlement.mock_network import national_catalogue as nc


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    sim = start_simulator(tmp_path_factory.mktemp("catalogue-sim") / "insurer.db")
    yield sim.address
    sim.stop()


_clinics = iter(range(71, 99))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh clinic. Each test is another clinic (its own code): two fresh databases of one
    clinic would both start their msgids at serial 0001 and could collide within one second."""
    monkeypatch.setenv("CLINIC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLINIC_FIXMEDINS_CODE", f"H310116000{next(_clinics):02d}")
    monkeypatch.delenv("CLINIC_FORMULARY_KEYS", raising=False)
    from auth_helpers import ensure_admin
    ensure_admin(tmp_path / "home")  # the commands log in as its administrator
    return tmp_path / "home"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["formulary", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_catalogue_sync_by_download_and_by_query_store_the_same_catalogue(network, home, capsys):
    code, out, err = run(capsys, "catalogue", "sync", "--network", network)
    assert code == 0, err
    assert f"版本 {nc.VERSION}，{len(nc.entries())} 条（经 1301，2 次通讯）" in out
    by_download = (home / "catalogue" / "national.tsv").read_bytes()
    meta = json.loads((home / "catalogue" / "national.json").read_text())
    assert meta["records"] >= 100_000 and meta["via"] == "1301"

    code, out, err = run(capsys, "catalogue", "sync", "--via", "1312", "--network", network)
    assert code == 0, err
    assert "经 1312，100 次通讯" in out
    assert (home / "catalogue" / "national.tsv").read_bytes() == by_download

    with open_database(home / "clinic.db").connect() as conn:
        synced = conn.execute(select(AuditEvent.object, AuditEvent.details)
                              .where(AuditEvent.action == "catalogue_sync")).all()
    assert [json.loads(d)["via"] for _, d in synced] == ["1301", "1312"]
    assert {o for o, _ in synced} == {nc.VERSION}


def test_catalogue_check_warns_of_ended_and_missing_entries_and_search_works_offline(network, home, capsys):
    assert run(capsys, "catalogue", "sync", "--network", network)[0] == 0
    code, out, _ = run(capsys, "catalogue", "check", "--date", "2026-11-30", "--json")
    report = json.loads(out)
    assert code == 1  # warnings: the worker must see them
    assert report["drugs"] == 200 and report["mapped"] == 200 - len(nc.MISSING_FORMULARY)
    kinds = sorted(w["kind"] for w in report["warnings"])
    assert kinds == ["ended"] * len(nc.EXPIRED_FORMULARY) + ["missing"] * len(nc.MISSING_FORMULARY)

    code, out, _ = run(capsys, "catalogue", "check", "--date", "2026-11-30")
    assert out.startswith("2026-11-30 药品目录 200 种，在国家医保目录") and "已于 2025-06-30 失效" in out

    code, out, _ = run(capsys, "search", "cljd", "--catalogue", "--json")  # 重 read chong
    assert code == 0 and json.loads(out)[0]["name"].startswith("重楼解毒")
