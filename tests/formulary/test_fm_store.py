"""The store of installed formulary versions: what it refuses, what it keeps, which version applies."""

import json
from datetime import date
from pathlib import Path

import pytest

from formulary import signing
from formulary.signing import SignatureError
from formulary.store import (
    FormularyExpiredError,
    FormularyStore,
    InstallRefused,
    UnknownVersion,
    packaged,
)

DATA = Path(__file__).resolve().parents[2] / "formulary" / "data"
V1_CSV = (DATA / "formulary_v1.csv").read_text(encoding="utf-8")
V2_CSV = (DATA / "formulary_v2.csv").read_text(encoding="utf-8")
TODAY = date(2026, 11, 30)


@pytest.fixture(scope="module")
def town_key():
    return signing.generate_key()


@pytest.fixture
def issue(tmp_path, town_key):
    """Write a signed file for (csv, version, effective[, expires]) and return its path."""
    def make(csv_text, version, effective, expires=None, key=None):
        path = tmp_path / f"issued-v{version}-{effective}-{len(csv_text)}.formulary.json"
        path.write_bytes(signing.sign(csv_text, version=version, effective_date=effective,
                                      expires=expires, key=key or town_key, issuer="枫泾镇社区卫生服务中心"))
        return path
    return make


@pytest.fixture
def store(tmp_path, town_key):
    return FormularyStore(tmp_path / "store", [town_key.public_key()])


def _cheaper(csv_text: str) -> str:
    return csv_text.replace(",3170,3650,", ",2990,3650,", 1)  # 硝苯地平控释片 31.70 -> 29.90


def test_an_empty_store_applies_the_packaged_signed_version_2(store):
    assert store.versions() == []
    info = store.in_force_info(TODAY)
    assert info.packaged and info.version == 2 and info.drug_count == 200
    assert store.in_force(TODAY) is packaged(2)[1]


def test_install_copies_the_file_verbatim_and_keeps_the_history(store, issue):
    p3 = issue(V2_CSV, 3, date(2026, 1, 1))
    p4 = issue(_cheaper(V2_CSV), 4, date(2026, 12, 1))
    i3, i4 = store.install(p3, today=TODAY), store.install(p4, today=TODAY)
    assert i3.path.read_bytes() == p3.read_bytes() and i4.path.read_bytes() == p4.read_bytes()
    assert [v.version for v in store.versions()] == [3, 4]
    assert all(v.installed_at is not None for v in store.versions())
    history = [json.loads(x) for x in (store.directory / "history.jsonl").read_text().splitlines()]
    assert [(h["version"], h["source"]) for h in history] == [(3, p3.name), (4, p4.name)]


def test_the_version_in_force_is_the_highest_already_effective_on_the_visit_date(store, issue):
    store.install(issue(V2_CSV, 3, date(2026, 1, 1)), today=TODAY)
    store.install(issue(_cheaper(V2_CSV), 4, date(2026, 12, 1)), today=TODAY)
    assert store.in_force_info(date(2025, 12, 31)).packaged  # before v3: the shipped v2
    assert store.in_force_info(date(2026, 1, 1)).version == 3  # the effective day itself
    assert store.in_force_info(date(2026, 11, 30)).version == 3
    assert store.in_force_info(date(2026, 12, 1)).version == 4
    assert store.in_force(date(2026, 11, 30)).by_code("XC08CAX066A011010100002").price_fen == 3170
    assert store.in_force(date(2026, 12, 1)).by_code("XC08CAX066A011010100002").price_fen == 2990


def test_a_file_signed_by_another_key_is_refused_and_nothing_is_stored(store, issue):
    with pytest.raises(SignatureError):
        store.install(issue(V2_CSV, 3, date(2026, 1, 1), key=signing.generate_key()), today=TODAY)
    assert store.versions() == [] and not list(store.directory.glob("*.json"))


def test_an_altered_file_is_refused(store, issue, tmp_path):
    p = issue(V2_CSV, 3, date(2026, 1, 1))
    altered = tmp_path / "altered.formulary.json"
    altered.write_bytes(p.read_bytes().replace(b",3170,", b",3171,", 1))
    with pytest.raises(SignatureError):
        store.install(altered, today=TODAY)
    assert store.versions() == []


def test_an_unsigned_csv_is_refused(store, tmp_path):
    csv_path = tmp_path / "formulary.csv"
    csv_path.write_text(V2_CSV, encoding="utf-8")
    with pytest.raises(SignatureError) as e:
        store.install(csv_path, today=TODAY)
    assert "未签名" in e.value.message


def test_installing_the_same_version_twice_is_refused(store, issue):
    p = issue(V2_CSV, 3, date(2026, 1, 1))
    store.install(p, today=TODAY)
    with pytest.raises(InstallRefused) as e:
        store.install(p, today=TODAY)
    assert "已经安装过" in e.value.message


def test_a_different_file_with_an_installed_version_number_is_refused(store, issue):
    store.install(issue(V2_CSV, 3, date(2026, 1, 1)), today=TODAY)
    with pytest.raises(InstallRefused) as e:
        store.install(issue(_cheaper(V2_CSV), 3, date(2026, 1, 1)), today=TODAY)
    assert "内容不同" in e.value.message
    assert store.in_force(TODAY).by_code("XC08CAX066A011010100002").price_fen == 3170


def test_a_superseded_version_is_refused(store, issue):
    store.install(issue(V2_CSV, 4, date(2026, 1, 1)), today=TODAY)
    with pytest.raises(InstallRefused) as e:
        store.install(issue(V1_CSV, 3, date(2025, 1, 1)), today=TODAY)
    assert "已被已安装的第 4 版取代" in e.value.message


def test_a_newer_version_taking_effect_before_the_installed_one_is_refused(store, issue):
    store.install(issue(V2_CSV, 3, date(2026, 6, 1)), today=TODAY)
    with pytest.raises(InstallRefused) as e:
        store.install(issue(_cheaper(V2_CSV), 4, date(2026, 5, 1)), today=TODAY)
    assert "早于已安装的第 3 版" in e.value.message


def test_an_expired_version_is_refused_at_install(store, issue):
    with pytest.raises(InstallRefused) as e:
        store.install(issue(V2_CSV, 3, date(2026, 1, 1), expires=date(2026, 6, 30)), today=TODAY)
    assert "失效" in e.value.message


def test_a_version_past_its_expiry_is_not_applied(store, issue):
    store.install(issue(V2_CSV, 3, date(2026, 1, 1), expires=date(2026, 12, 31)), today=TODAY)
    assert store.in_force_info(date(2026, 12, 31)).version == 3
    with pytest.raises(FormularyExpiredError) as e:
        store.in_force(date(2027, 1, 1))
    assert "已于 2026 年 12 月 31 日失效" in e.value.message


def test_a_file_altered_inside_the_store_is_refused_when_read(store, issue):
    info = store.install(issue(V2_CSV, 3, date(2026, 1, 1)), today=TODAY)
    info.path.write_bytes(info.path.read_bytes().replace(b",3170,", b",1170,", 1))
    with pytest.raises(SignatureError):
        store.in_force(TODAY)


def test_get_finds_installed_and_packaged_versions(store, issue):
    store.install(issue(_cheaper(V2_CSV), 3, date(2026, 1, 1)), today=TODAY)
    assert store.get(3).by_code("XC08CAX066A011010100002").price_fen == 2990
    assert len(store.get(1)) == 150 and len(store.get(2)) == 200
    with pytest.raises(UnknownVersion):
        store.get(9)


def test_a_store_without_trusted_keys_is_refused(tmp_path):
    with pytest.raises(ValueError):
        FormularyStore(tmp_path, [])
