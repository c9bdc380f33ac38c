"""Password derivation and data-key wrapping: the primitives under clinic.auth.

One Argon2id derivation per password check yields 64 bytes: the first 32 are the verifier
stored in app_user (compared in constant time), the last 32 the key-encryption key (KEK) that
unwraps the user's key slot. The data key (DEK) itself is never stored in clear. docs/security.md.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

SLOT_VERSION = b"\x01"
DEK_PURPOSE = "dek"


@dataclass(frozen=True)
class KdfParams:
    memory_kib: int = 65536
    iterations: int = 3
    lanes: int = 1

    def at_least(self, other: KdfParams) -> bool:
        return (self.memory_kib >= other.memory_kib and self.iterations >= other.iterations
                and self.lanes >= other.lanes)


DEFAULT_KDF = KdfParams()
# OWASP Password Storage Cheat Sheet, Argon2id minimum: m=19 MiB, t=2, p=1.
OWASP_MIN_KDF = KdfParams(memory_kib=19456, iterations=2, lanes=1)


def new_salt() -> bytes:
    return os.urandom(16)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def derive(password: str, salt: bytes, params: KdfParams, login: str) -> tuple[bytes, bytes]:
    """(verifier, kek) from one Argon2id derivation; bound to the login via Argon2's `ad`."""
    out = Argon2id(salt=salt, length=64, iterations=params.iterations, lanes=params.lanes,
                   memory_cost=params.memory_kib,
                   ad=b"clinic-user-v1|" + login.encode("utf-8")).derive(password.encode("utf-8"))
    return out[:32], out[32:]


def verifier_matches(stored: bytes, computed: bytes) -> bool:
    return hmac.compare_digest(stored, computed)


def key_id(dek: bytes) -> str:
    """A public fingerprint of the data key: tells slots and backups apart, reveals nothing."""
    return hmac.new(dek, b"clinic data-key id v1", hashlib.sha256).hexdigest()[:16]


def _slot_aad(slot_id: str, login: str, role: str, purpose: str) -> bytes:
    return f"clinic key-slot v1|{slot_id}|{login}|{role}|{purpose}".encode()


class SlotInvalid(Exception):
    """A slot that does not open under this KEK for this slot id, login, role and purpose."""


def wrap(dek: bytes, kek: bytes, *, slot_id: str, login: str, role: str,
         purpose: str = DEK_PURPOSE) -> bytes:
    nonce = os.urandom(12)
    return SLOT_VERSION + nonce + AESGCM(kek).encrypt(
        nonce, dek, _slot_aad(slot_id, login, role, purpose))


def unwrap(wrapped: bytes, kek: bytes, *, slot_id: str, login: str, role: str,
           purpose: str = DEK_PURPOSE) -> bytes:
    if len(wrapped) != 1 + 12 + 32 + 16 or wrapped[:1] != SLOT_VERSION:
        raise SlotInvalid("unknown slot format")
    try:
        dek = AESGCM(kek).decrypt(wrapped[1:13], wrapped[13:],
                                  _slot_aad(slot_id, login, role, purpose))
    except InvalidTag:
        raise SlotInvalid("slot does not open (altered, moved or wrong key)") from None
    if len(dek) != 32:
        raise SlotInvalid("slot holds no 32-byte key")
    return dek
