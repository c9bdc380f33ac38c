"""The counter applies the signed formulary version in force on the visit's date."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from importlib import resources

from auth_helpers import admin_session

from clinic.config import load_settings
from clinic.counter import Counter
from formulary.signing import demo_private_key, sign
from formulary.store import FormularyStore


def _v3_without_nifedipine() -> str:
    csv = resources.files("formulary").joinpath("data/formulary_v2.csv").read_text(encoding="utf-8")
    lines = csv.splitlines(keepends=True)
    return "".join(ln for ln in lines if "XC08CAX066A011010100002" not in ln)


def test_a_version_applies_from_its_effective_date_and_not_before(tmp_path, monkeypatch):
    today = date(2026, 11, 30)
    clock = {"now": datetime(2026, 11, 30, 9, 0)}
    home = tmp_path / "clinic"
    settings = load_settings(home=home)
    counter = Counter(settings, admin_session(settings), clock=lambda: clock["now"])
    try:
        assert counter.formulary.by_code("XC08CAX066A011010100002") is not None  # packaged v2
        signed = sign(_v3_without_nifedipine(), version=3, effective_date=today + timedelta(days=1),
                      key=demo_private_key(), issuer="枫泾镇社区卫生服务中心")
        path = tmp_path / "v3.formulary.json"
        path.write_bytes(signed)
        FormularyStore.open(home / "formulary").install(path, today=today)
        assert counter.formulary.by_code("XC08CAX066A011010100002") is not None  # not yet
        clock["now"] = datetime(2026, 12, 1, 8, 0)
        assert counter.formulary.by_code("XC08CAX066A011010100002") is None     # in force now
        assert len(counter.formulary.drugs) == 199
    finally:
        counter.close()
