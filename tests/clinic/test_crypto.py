import os

import pytest
from cryptography.exceptions import InvalidTag

from clinic.crypto import FieldCipher, mask_id


def test_sealed_field_opens_only_in_its_own_row():
    c = FieldCipher(os.urandom(32))
    sealed = c.seal_text("王秀英", "visit.person_sealed|row-1")
    assert "王秀英".encode() not in sealed
    assert c.open_text(sealed, "visit.person_sealed|row-1") == "王秀英"
    with pytest.raises(InvalidTag):
        c.open_text(sealed, "visit.person_sealed|row-2")


def test_flipped_bit_is_detected():
    c = FieldCipher(os.urandom(32))
    sealed = bytearray(c.seal(b"310116194303120026", b"aad"))
    sealed[-1] ^= 1
    with pytest.raises(InvalidTag):
        c.open(bytes(sealed), b"aad")


def test_keyed_hash_is_stable_per_key_and_not_the_value():
    k = os.urandom(32)
    assert FieldCipher(k).keyed_hash("310116194303120026") == FieldCipher(k).keyed_hash("310116194303120026")
    assert FieldCipher(os.urandom(32)).keyed_hash("x") != FieldCipher(k).keyed_hash("x")


def test_mask_name_keeps_first_and_last_character_only():
    from clinic.crypto import mask_name
    assert mask_name("王秀英") == "王*英"
    assert mask_name("欧阳秀英") == "欧**英"
    assert mask_name("王英") == "王*"
    assert mask_name("") == ""


def test_mask_id_keeps_region_and_last_four():
    assert mask_id("310116194303120026") == "310116********0026"


def test_a_key_written_meanwhile_by_another_process_is_kept_not_overwritten(tmp_path):
    from clinic.crypto import write_private_once
    path = tmp_path / "audit_signing.key"
    write_private_once(path, b"first")
    write_private_once(path, b"second")  # the slower of two starting processes
    assert path.read_bytes() == b"first"
    assert path.stat().st_mode & 0o077 == 0
    assert not list(tmp_path.glob("*.tmp"))
