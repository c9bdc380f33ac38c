"""Patient data at rest: AES-GCM field sealing and keyed hashes under a per-installation data key.

The data key itself is never stored in clear: clinic.auth unwraps it at login (docs/security.md).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class FieldCipher:
    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ValueError("data key must be 32 bytes")
        self._aead = AESGCM(key)
        self._mac_key = hmac.new(key, b"clinic keyed-hash v1", hashlib.sha256).digest()

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if not sealed or sealed[:1] != _VERSION:
            raise ValueError("unknown sealed-field version")
        return self._aead.decrypt(sealed[1:13], sealed[13:], aad)

    def seal_text(self, text: str, aad: str) -> bytes:
        return self.seal(text.encode("utf-8"), aad.encode())

    def open_text(self, sealed: bytes, aad: str) -> str:
        return self.open(sealed, aad.encode()).decode("utf-8")

    def keyed_hash(self, value: str) -> str:
        """A stable pseudonym for logs, audit details and lookups; not reversible without the key."""
        return hmac.new(self._mac_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def write_new_private(path: Path, data: bytes) -> None:
    """Create `path` (it must not exist) readable by its owner only, its bytes on disk on return."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_once(path: Path, data: bytes) -> None:
    """Write a key file readable by its owner only, unless one already exists: two processes
    starting at once must end up with the same key, never overwrite each other's."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a process of the same pid that died
    write_new_private(tmp, data)
    try:
        os.link(tmp, path)  # atomic, and fails if the key appeared meanwhile
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with an owner-only file holding `data`."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    write_new_private(tmp, data)
    os.replace(tmp, path)


def shred(path: Path) -> None:
    """Overwrite a file that held a secret in clear, then delete it (best effort on journaling
    filesystems; the point is that no copy stays readable in the data directory)."""
    with open(path, "r+b") as fh:
        fh.write(os.urandom(max(1, path.stat().st_size)))
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()


def mask_id(certno: str) -> str:
    """Receipts and screens show 310116********1234-style masked ID numbers."""
    if len(certno) < 8:
        return "*" * len(certno)
    return certno[:6] + "*" * (len(certno) - 10) + certno[-4:]


def mask_name(name: str) -> str:
    """Receipts on disk carry 王*英-style names: enough for the patient to know the slip is
    theirs, not enough for a copied disk to name them (the counter screen shows it whole)."""
    if len(name) <= 1:
        return name and "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


_ID_LIKE = re.compile(r"\d{17}[\dXx]|\d{15}|\d{16,20}")  # ID numbers, psn_no, card numbers


def redact(text: str, name: str = "", *identifiers: str) -> str:
    """A worker's free text (a revocation or override reason) as it may be kept in clear, in the
    audit log the supervisor reads: the patient's name and any ID-like number masked."""
    if name and len(name) >= 2:
        text = text.replace(name, mask_name(name))
    for ident in identifiers:
        if ident:
            text = text.replace(ident, mask_id(ident))
    return _ID_LIKE.sub(lambda m: mask_id(m.group()), text)
