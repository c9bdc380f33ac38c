"""The data key in the operating system's keyring (optional extra `keyring`).

Where an OS keyring exists (Windows Credential Manager, macOS Keychain, Secret Service), an
administrator may also keep the data key there (`clinic user keyring enable`), so a kiosk user
whose password has been verified can open the data even without a key slot of their own. The
entry belongs to the OS account and this data directory; it holds the key with its fingerprint,
checked on every read. Without the `keyring` package, or with only its "fail" backend, every
function here reports "not available" and nothing else changes.
"""
from __future__ import annotations

import base64
import json
import logging

from .keyslots import key_id

log = logging.getLogger(__name__)

SERVICE = "village-clinic-data-key"


def _keyring():
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        kr = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken or misconfigured backend is no backend
        return None
    if isinstance(kr, fail.Keyring) or getattr(kr, "priority", 0) <= 0:
        return None
    return kr


def available() -> bool:
    return _keyring() is not None


def _entry(settings) -> str:
    return str(settings.home.resolve())


def store_key(settings, dek: bytes) -> bool:
    kr = _keyring()
    if kr is None:
        return False
    kr.set_password(SERVICE, _entry(settings), json.dumps(
        {"v": 1, "key_id": key_id(dek), "key": base64.b64encode(dek).decode()}))
    return True


def load_key(settings) -> bytes | None:
    kr = _keyring()
    if kr is None:
        return None
    try:
        raw = kr.get_password(SERVICE, _entry(settings))
    except Exception as exc:  # noqa: BLE001 - backends raise their own types
        log.warning("keyring read failed: %s", type(exc).__name__)
        return None
    if not raw:
        return None
    try:
        data = json.loads(raw)
        dek = base64.b64decode(data["key"], validate=True)
    except (ValueError, KeyError, TypeError):
        log.warning("keyring entry for the data key is malformed; ignored")
        return None
    if len(dek) != 32 or key_id(dek) != data.get("key_id"):
        log.warning("keyring entry for the data key fails its fingerprint; ignored")
        return None
    return dek


def remove_key(settings) -> bool:
    kr = _keyring()
    if kr is None:
        return False
    try:
        kr.delete_password(SERVICE, _entry(settings))
    except Exception:  # noqa: BLE001 - PasswordDeleteError, or a backend's own
        return False
    return True
