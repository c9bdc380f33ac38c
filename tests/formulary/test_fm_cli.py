"""`clinic formulary ...`: search, diff between versions, and the signed-file workflow from keygen to
install, audited, through the real command line entry point and a real data directory."""

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from clinic.cli import main
from clinic.db import open_database
from clinic.models import AuditEvent

DATA = Path(__file__).resolve().parents[2] / "formulary" / "data"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLINIC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLINIC_FORMULARY_KEYS", raising=False)
    from auth_helpers import ensure_admin
    ensure_admin(tmp_path / "home")  # the commands log in as its administrator
    return tmp_path / "home"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["formulary", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_formulary_search_finds_by_pinyin_initials(home, capsys):
    code, out, _ = run(capsys, "search", "xbdp", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "硝苯地平控释片"


def test_formulary_diff_of_two_versions_lists_added_removed_and_field_changes(home, capsys):
    code, out, _ = run(capsys, "diff", "1", "2")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "第 1 版（2024-01-01 起生效） → 第 2 版（2025-07-01 起生效）：新增 50 种，删除 0 种，变更 6 种"
    assert "新增：" in lines and "变更：" in lines and "删除：" not in lines
    assert "  + XC08CAF615A010010151394  非洛地平缓释片 5mg /盒  10.80元  甲类" in lines
    assert sum(1 for x in lines if x.startswith("  + ")) == 50
    assert any(x.startswith("  * 苯磺酸氨氯地平片（XC08CAB557A001010156701）：价格 ") for x in lines)


def test_formulary_diff_backwards_lists_removed_drugs(home, capsys):
    code, out, _ = run(capsys, "diff", "2", "1")
    assert code == 0 and "删除：" in out and out.count("\n  - ") == 50


def test_formulary_diff_as_json_gives_field_level_changes(home, capsys):
    code, out, _ = run(capsys, "diff", "1", "2", "--json")
    d = json.loads(out)
    assert code == 0 and len(d["added"]) == 50 and d["removed"] == []
    change = next(c for c in d["changed"] if c["code"] == "XC08CAB557A001010156701")
    price = next(f for f in change["changes"] if f["field"] == "price_fen")
    assert price["label"] == "价格" and price["old"] > price["new"] and price["text"].startswith("价格 ")


def test_formulary_diff_accepts_a_signed_file_and_a_csv(home, capsys):
    code, out, _ = run(capsys, "diff", str(DATA / "formulary_v1.formulary.json"), str(DATA / "formulary_v2.csv"))
    assert code == 0
    assert out.splitlines()[0] == ("formulary_v1.formulary.json（第 1 版） → formulary_v2.csv：新增 50 种，"
                                   "删除 0 种，变更 6 种")


def test_keygen_sign_install_versions_with_the_town_key_audited(home, tmp_path, capsys, monkeypatch):
    keys = tmp_path / "town"
    assert run(capsys, "keygen", "--out", str(keys))[0] == 0
    assert (keys / "town_private.key").stat().st_mode & 0o077 == 0  # private key: owner only
    issued = tmp_path / "v3.formulary.json"
    code, out, _ = run(capsys, "sign", str(DATA / "formulary_v2.csv"), "--version", "3", "--effective",
                       "2026-01-01", "--key", str(keys / "town_private.key"), "--out", str(issued))
    assert code == 0 and issued.exists()

    code, _, err = run(capsys, "install", str(issued))  # the demo key is trusted by default
    assert code == 2 and "不是由受信任的镇卫生院密钥签发" in err

    monkeypatch.setenv("CLINIC_FORMULARY_KEYS", str(keys / "town_public.key"))
    code, out, _ = run(capsys, "install", str(issued))
    assert code == 0 and "已安装药品目录第 3 版：200 种药，2026-01-01 起生效" in out
    code, _, err = run(capsys, "install", str(issued))
    assert code == 2 and "已经安装过" in err

    code, out, _ = run(capsys, "versions", "--date", "2026-11-30")
    assert code == 0 and out.startswith("第 3 版：2026-01-01 起生效，200 种药") and "今日适用" in out
    code, out, _ = run(capsys, "versions", "--date", "2025-12-31", "--json")
    assert json.loads(out)["in_force"]["packaged"] is True

    with open_database(home / "clinic.db").connect() as conn:
        events = conn.execute(select(AuditEvent.action, AuditEvent.object, AuditEvent.outcome)
                              .where(AuditEvent.action == "formulary_install")
                              .order_by(AuditEvent.seq)).all()
    assert [(o, r) for _, o, r in events] == [("v3.formulary.json", "refused"), ("v3", "ok"),
                                              ("v3.formulary.json", "refused")]


def test_catalogue_search_before_any_sync_says_to_sync(home, capsys):
    code, _, err = run(capsys, "search", "xbdp", "--catalogue")
    assert code == 1 and "clinic formulary catalogue sync" in err
