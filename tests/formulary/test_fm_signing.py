"""Signed formulary files: every byte is covered, only trusted keys count, the shipped files verify."""

import base64
import json
from datetime import date
from pathlib import Path

import pytest

from formulary import signing
from formulary.signing import SignatureError, sign, verify

DATA = Path(__file__).resolve().parents[2] / "formulary" / "data"
V2_CSV = (DATA / "formulary_v2.csv").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def town_key():
    return signing.generate_key()


@pytest.fixture(scope="module")
def signed_v3(town_key) -> bytes:
    return sign(V2_CSV, version=3, effective_date=date(2026, 1, 1), key=town_key, issuer="枫泾镇社区卫生服务中心")


def test_a_signed_file_verifies_with_the_issuing_key_and_keeps_its_fields(town_key, signed_v3):
    s = verify(signed_v3, [town_key.public_key()])
    assert (s.version, s.effective_date, s.expires) == (3, date(2026, 1, 1), None)
    assert s.issuer == "枫泾镇社区卫生服务中心" and s.key_id == signing.key_id(town_key.public_key())
    assert s.csv_text == V2_CSV and len(s.formulary()) == 200


def test_raw_public_key_bytes_are_accepted_as_trusted_keys(town_key, signed_v3):
    raw = signing.raw_public(town_key.public_key())
    assert verify(signed_v3, [raw]).version == 3


def _env(data: bytes) -> dict:
    return json.loads(data.decode("utf-8"))


@pytest.mark.parametrize("where", ["price in the csv", "effective date", "version", "a space", "signature"])
def test_an_altered_byte_is_refused(town_key, signed_v3, where):
    data = bytearray(signed_v3)
    if where == "price in the csv":
        i = data.index(b",3170,")  # 硝苯地平控释片 31.70 yuan
        data[i + 1:i + 2] = b"2"
    elif where == "effective date":
        i = data.index(b"2026-01-01")
        data[i + 3] = ord("5")
    elif where == "version":
        i = data.index(b'"version": 3')
        data[i + len(b'"version": ')] = ord("4")
    elif where == "a space":
        i = data.index(b'"format"')
        data[i - 1:i] = b"  "  # indentation only: content unchanged, the file is not as issued
    else:
        env = _env(signed_v3)
        sig = bytearray(base64.b64decode(env["signature"]))
        sig[10] ^= 1
        data = bytearray(signed_v3.replace(env["signature"].encode(), base64.b64encode(bytes(sig))))
    with pytest.raises(SignatureError) as e:
        verify(bytes(data), [town_key.public_key()])
    assert "拒绝安装" in e.value.message or "改动" in e.value.message


def test_a_file_signed_with_another_key_is_refused(signed_v3):
    other = signing.generate_key()
    with pytest.raises(SignatureError) as e:
        verify(signed_v3, [other.public_key()])
    assert "不是由受信任的镇卫生院密钥签发" in e.value.message


def test_a_forged_file_claiming_the_trusted_key_id_is_refused(town_key):
    forger = signing.generate_key()
    forged = _env(sign(V2_CSV, version=3, effective_date=date(2026, 1, 1), key=forger, issuer="x"))
    forged["key_id"] = signing.key_id(town_key.public_key())  # claims the town key
    with pytest.raises(SignatureError) as e:
        verify(signing.canonical_file_bytes(forged), [town_key.public_key()])
    assert "签名无效" in e.value.message


def test_an_unsigned_csv_is_refused(town_key):
    with pytest.raises(SignatureError) as e:
        verify(V2_CSV.encode("utf-8"), [town_key.public_key()])
    assert "未签名" in e.value.message


def test_an_envelope_without_a_signature_is_refused(town_key, signed_v3):
    env = _env(signed_v3)
    env["signature"] = ""
    with pytest.raises(SignatureError) as e:
        verify(signing.canonical_file_bytes(env), [town_key.public_key()])
    assert "没有签名" in e.value.message


def test_signing_refuses_a_csv_the_clinics_would_refuse(town_key):
    bad = V2_CSV.replace(",3170,3650,", ",31.70,3650,", 1)
    with pytest.raises(Exception) as e:
        sign(bad, version=3, effective_date=date(2026, 1, 1), key=town_key, issuer="x")
    assert "price_fen" in str(e.value)


def test_the_shipped_files_verify_with_the_shipped_demo_key_and_match_the_csvs():
    demo = signing.load_public_key(DATA / "town_demo_key.toml")
    for version, effective in ((1, date(2024, 1, 1)), (2, date(2025, 7, 1))):
        shipped = (DATA / f"formulary_v{version}.formulary.json").read_bytes()
        s = verify(shipped, [demo])
        assert (s.version, s.effective_date) == (version, effective)
        assert s.csv_text == (DATA / f"formulary_v{version}.csv").read_text(encoding="utf-8")
        # Ed25519 is deterministic: re-signing the CSV with the demo key gives the same bytes
        again = sign(s.csv_text, version=version, effective_date=effective,
                     key=signing.demo_private_key(), issuer=signing.DEMO_ISSUER)
        assert again == shipped


def test_key_files_round_trip_and_the_private_key_is_not_in_the_public_file(tmp_path, town_key):
    (tmp_path / "pub.key").write_text(signing.public_key_text(town_key.public_key()))
    (tmp_path / "priv.key").write_text(signing.private_key_text(town_key))
    assert signing.key_id(signing.load_public_key(tmp_path / "pub.key")) == signing.key_id(town_key.public_key())
    assert signing.key_id(signing.load_private_key(tmp_path / "priv.key").public_key()) == \
        signing.key_id(town_key.public_key())
    priv_hex = (tmp_path / "priv.key").read_text().splitlines()[-1]
    assert priv_hex not in (tmp_path / "pub.key").read_text()
    (tmp_path / "bad.key").write_text("not a key\n")
    with pytest.raises(SignatureError):
        signing.load_public_key(tmp_path / "bad.key")
