"""The clinic's audit signing key (Ed25519) and the town-wide pseudonym key.

The signing key is generated once per installation under `settings.keys_dir` (0600) and signs
audit checkpoints and export manifests; its public half is what the supervisor pins for the
clinic. The town pseudonym key (optional, issued by the town supervisor to every clinic of the
town) turns a patient or card number into the same pseudonym at every clinic, so the supervisor
can see one card used at two clinics without ever seeing the number.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .crypto import shred, write_private, write_private_once

SIGNING_KEY_FILE = "audit_signing.key"
PUBLIC_KEY_FILE = "audit_signing.pub"
TOWN_KEY_FILE = "town_pseudonym.key"
_KEY_ID_DOMAIN = b"clinic-audit-key-v1\x00"
CHECKPOINT_DOMAIN = b"clinic-audit-checkpoint-v1\x00"
MANIFEST_DOMAIN = b"clinic-audit-manifest-v1\x00"


class KeyFileError(ValueError):
    pass


def load_or_create_signing_key(keys_dir: Path) -> Ed25519PrivateKey:
    keys_dir.mkdir(parents=True, exist_ok=True)
    path = keys_dir / SIGNING_KEY_FILE
    if not path.exists():
        raw = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption())
        write_private_once(path, raw.hex().encode())
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))
    pub = keys_dir / PUBLIC_KEY_FILE
    if not pub.exists():
        pub.write_text(public_hex(key) + "\n")
    return key


def signing_key_if_present(keys_dir: Path) -> Ed25519PrivateKey | None:
    path = keys_dir / SIGNING_KEY_FILE
    if not path.exists():
        return None
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))


def public_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    return public_raw(key).hex()


def key_id(pub: bytes | str) -> str:
    raw = bytes.fromhex(pub) if isinstance(pub, str) else pub
    return hashlib.sha256(_KEY_ID_DOMAIN + raw).hexdigest()[:16]


def parse_public_key(text: str) -> bytes:
    """A public key as 64 hex characters or a PEM block -> its 32 raw bytes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError("not an Ed25519 public key")
        return public_raw(key)
    try:
        raw = bytes.fromhex(text.split()[0])
    except (ValueError, IndexError):
        raise KeyFileError("public key must be 64 hex characters or PEM") from None
    if len(raw) != 32:
        raise KeyFileError("public key must be 32 bytes")
    return raw


def load_public_key(path: Path) -> bytes:
    return parse_public_key(Path(path).read_text(encoding="utf-8"))


def public_pem(raw: bytes) -> str:
    return Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def checkpoint_payload(clinic: str, seq: int, head_hash: str, ts: str, reason: str) -> bytes:
    return CHECKPOINT_DOMAIN + json.dumps([clinic, seq, head_hash, ts, reason], ensure_ascii=False,
                                          separators=(",", ":")).encode("utf-8")


def sign(key: Ed25519PrivateKey, domain_payload: bytes) -> str:
    return key.sign(domain_payload).hex()


def signature_ok(pub: bytes, sig_hex: str, domain_payload: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(bytes.fromhex(sig_hex), domain_payload)
        return True
    except (InvalidSignature, ValueError):
        return False


# ---- the town pseudonym key -------------------------------------------------------------

TOWN_KEY_SEALED = "town_pseudonym.sealed"
_TOWN_AAD = b"keys/town_pseudonym.sealed"


def town_key(keys_dir: Path, cipher=None) -> bytes | None:
    """The town key, kept sealed under the data key: with it and a copied audit log, a thief
    could try every ID number of the district against the pseudonyms. A plain key file the
    supervisor handed over (`keys/town_pseudonym.key`) is sealed at first use and shredded."""
    sealed = keys_dir / TOWN_KEY_SEALED
    if sealed.exists() and cipher is not None:
        return cipher.open(sealed.read_bytes(), _TOWN_AAD)
    path = keys_dir / TOWN_KEY_FILE
    if not path.exists():
        return None
    raw = bytes.fromhex(path.read_text().strip())
    if len(raw) != 32:
        raise KeyFileError(f"{path}: town pseudonym key must be 32 bytes")
    if cipher is not None:
        install_town_key(keys_dir, raw, cipher)
        shred(path)
    return raw


def install_town_key(keys_dir: Path, key: bytes, cipher) -> Path:
    keys_dir.mkdir(parents=True, exist_ok=True)
    write_private(keys_dir / TOWN_KEY_SEALED, cipher.seal(key, _TOWN_AAD))
    return keys_dir / TOWN_KEY_SEALED


def write_town_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_once(path, os.urandom(32).hex().encode())


def town_ref(key: bytes, kind: str, value: str) -> str:
    """The same pseudonym for the same person or card at every clinic holding the town key."""
    return hmac.new(key, f"clinic town-pseudonym v1|{kind}|{value}".encode(),
                    hashlib.sha256).hexdigest()[:24]
