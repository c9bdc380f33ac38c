"""Signed formulary files: the town health centre issues each version signed with its Ed25519 key.

The file (``*.formulary.json``) is a JSON envelope written in one canonical form::

    {
     "csv": "code,name,...\\n...",          the formulary CSV text, exactly
     "csv_sha256": "9f2c...",              SHA-256 of the CSV's UTF-8 bytes (for people and logs)
     "effective_date": "2025-07-01",        the day the version takes effect
     "expires": null,                       or "YYYY-MM-DD": the last day it may be applied
     "format": "village-clinic-formulary/1",
     "issuer": "枫泾镇社区卫生服务中心",
     "key_id": "5d0c3a9e61f2b7a4",          first 16 hex digits of SHA-256(raw public key)
     "signature": "base64...",              Ed25519 over the signed bytes (below)
     "version": 2
    }

The signed bytes are ``b"village-clinic-formulary-v1\\x00"`` followed by the UTF-8 JSON of every
field except ``signature``, keys sorted, no spaces (``separators=(",", ":")``,
``ensure_ascii=False``). The file itself must be exactly ``canonical_file_bytes`` of its content
(sorted keys, ``indent=1``, trailing newline): so *every* byte of the file is covered, and a file
re-saved by an editor is refused rather than silently accepted.

Nothing here trusts a key by itself: ``verify`` is given the trusted public keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .catalog import Formulary
from .drugs import Drug, parse_csv
from .errors import FormularyError

FORMAT = "village-clinic-formulary/1"
_DOMAIN = b"village-clinic-formulary-v1\x00"
_FIELDS = ("csv", "csv_sha256", "effective_date", "expires", "format", "issuer", "key_id",
           "signature", "version")
MAX_FILE = 8 * 1024 * 1024
DEMO_ISSUER = "枫泾镇社区卫生服务中心（演示密钥）"
# The DEMO town key is derived from this published seed, so anyone can rebuild (and forge)
# demo-signed files. It exists so the demo and tests run out of the box; a clinic in service
# trusts only the real town key (CLINIC_FORMULARY_KEYS), never this one.
DEMO_SEED_TEXT = b"village-clinic DEMO town formulary key - public, not a secret, never trust in service"

PublicKeyLike = Ed25519PublicKey | bytes


class SignatureError(FormularyError):
    """A formulary file is unsigned, altered, signed by an untrusted key, or malformed."""


@dataclass(frozen=True, slots=True)
class SignedFormulary:
    """A verified formulary file: its header fields, the CSV text, the exact file bytes."""

    version: int
    effective_date: date
    expires: date | None
    issuer: str
    key_id: str
    csv_text: str
    csv_sha256: str
    file_bytes: bytes

    @property
    def file_sha256(self) -> str:
        return hashlib.sha256(self.file_bytes).hexdigest()

    def drugs(self, source: str | None = None) -> list[Drug]:
        return parse_csv(self.csv_text, source=source or f"formulary v{self.version}")

    def formulary(self) -> Formulary:
        return Formulary(self.drugs())


# ---- keys ------------------------------------------------------------------------------

def raw_public(key: PublicKeyLike) -> bytes:
    if isinstance(key, Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        return bytes(key)
    raise TypeError("an Ed25519 public key or its 32 raw bytes")


def key_id(key: PublicKeyLike) -> str:
    """First 16 hex digits of SHA-256 of the raw public key: names the key in files and logs."""
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def _as_public(key: PublicKeyLike) -> Ed25519PublicKey:
    return key if isinstance(key, Ed25519PublicKey) else Ed25519PublicKey.from_public_bytes(raw_public(key))


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def demo_private_key() -> Ed25519PrivateKey:
    """The DEMO town key (derived from the published DEMO_SEED_TEXT): demo and tests only."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(DEMO_SEED_TEXT).digest())


def public_key_text(key: PublicKeyLike) -> str:
    """A public key file's text: a comment line naming the key id, then 64 hex digits."""
    return f"# village-clinic formulary Ed25519 public key, id {key_id(key)}\n{raw_public(key).hex()}\n"


def private_key_text(key: Ed25519PrivateKey) -> str:
    """A private key file's text (keep it off the clinics' machines and out of git)."""
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    return (f"# village-clinic formulary Ed25519 PRIVATE key, id {key_id(key.public_key())}"
            f" - keep secret\n{raw.hex()}\n")


def _read_hex_key(path: Path, field: str) -> bytes:
    """64 hex digits, either bare (``#`` comment lines allowed) or as ``field = "..."`` in TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SignatureError(f"无法读取密钥文件 {path.name}", f"{path}: {e}") from None
    body = ""
    if f"{field}" in text and "=" in text:
        try:
            body = str(tomllib.loads(text).get(field, ""))
        except tomllib.TOMLDecodeError:
            body = ""
    else:
        body = "".join(ln.strip() for ln in text.splitlines()
                       if ln.strip() and not ln.lstrip().startswith("#"))
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise SignatureError(f"密钥文件 {path.name} 格式不对（应为 64 位十六进制）", f"{path}: bad key text")
    return raw


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A public key file: bare hex (``keygen``'s ``town_public.key``) or TOML ``public_key = "hex"``."""
    return Ed25519PublicKey.from_public_bytes(_read_hex_key(Path(path), "public_key"))


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_read_hex_key(Path(path), "private_key"))


# ---- the file --------------------------------------------------------------------------

def _signed_bytes(header: dict) -> bytes:
    body = {k: v for k, v in header.items() if k != "signature"}
    return _DOMAIN + json.dumps(body, sort_keys=True, ensure_ascii=False,
                                separators=(",", ":")).encode("utf-8")


def canonical_file_bytes(envelope: dict) -> bytes:
    """The one byte form a signed file may have."""
    return (json.dumps(envelope, sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def sign(csv_text: str, *, version: int, effective_date: date, key: Ed25519PrivateKey,
         issuer: str, expires: date | None = None) -> bytes:
    """The signed file's bytes for a formulary CSV. The CSV is validated first: the town centre
    must not issue a file the clinics would refuse."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SignatureError("版本号应为正整数", f"bad version {version!r}")
    if expires is not None and expires < effective_date:
        raise SignatureError("失效日期早于生效日期", f"expires {expires} < effective {effective_date}")
    csv_text = csv_text.removeprefix("\ufeff")
    parse_csv(csv_text, source=f"formulary v{version}")
    env = {
        "csv": csv_text,
        "csv_sha256": hashlib.sha256(csv_text.encode("utf-8")).hexdigest(),
        "effective_date": effective_date.isoformat(),
        "expires": expires.isoformat() if expires else None,
        "format": FORMAT,
        "issuer": issuer,
        "key_id": key_id(key.public_key()),
        "version": version,
    }
    env["signature"] = base64.b64encode(key.sign(_signed_bytes(env))).decode("ascii")
    return canonical_file_bytes(env)


def _date(env: dict, field: str, *, optional: bool = False) -> date | None:
    v = env.get(field)
    if v is None and optional:
        return None
    try:
        return date.fromisoformat(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SignatureError(f"药品目录文件的 {field} 不是日期", f"bad {field} {v!r}") from None


def verify(data: bytes, trusted: Iterable[PublicKeyLike], source: str = "formulary file") -> SignedFormulary:
    """Checks a signed formulary file against the trusted keys; raises SignatureError (Chinese
    message) for an unsigned, altered, malformed or untrusted file. The CSV is not parsed here."""
    if len(data) > MAX_FILE:
        raise SignatureError(f"{source} 过大，不是药品目录文件", f"{source}: {len(data)} bytes")
    try:
        env = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SignatureError(f"{source} 不是签名的药品目录文件（未签名的 CSV 不能安装）",
                             f"{source}: not a JSON envelope") from None
    if not isinstance(env, dict) or env.get("format") != FORMAT:
        raise SignatureError(f"{source} 不是签名的药品目录文件", f"{source}: format {env.get('format') if isinstance(env, dict) else None!r}")
    if not env.get("signature"):
        raise SignatureError(f"{source} 没有签名，拒绝安装", f"{source}: unsigned")
    if set(env) != set(_FIELDS):
        raise SignatureError(f"{source} 的字段不对，可能被改动", f"{source}: fields {sorted(env)}")
    if canonical_file_bytes(env) != data:
        raise SignatureError(f"{source} 已被改动（格式与签发时不同），拒绝安装", f"{source}: not canonical")
    keys = {key_id(k): _as_public(k) for k in trusted}
    kid = env["key_id"]
    if kid not in keys:
        raise SignatureError(f"{source} 不是由受信任的镇卫生院密钥签发（密钥 {kid}），拒绝安装",
                             f"{source}: untrusted key {kid!r}, trusted {sorted(keys)}")
    try:
        sig = base64.b64decode(env["signature"], validate=True)
        keys[kid].verify(sig, _signed_bytes(env))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        raise SignatureError(f"{source} 签名无效：文件已被改动或签名不符，拒绝安装",
                             f"{source}: bad signature") from None
    version = env["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SignatureError(f"{source} 的版本号不对", f"{source}: version {version!r}")
    csv_text = env["csv"]
    if not isinstance(csv_text, str) or hashlib.sha256(csv_text.encode("utf-8")).hexdigest() != env["csv_sha256"]:
        raise SignatureError(f"{source} 内容与摘要不符", f"{source}: csv_sha256 mismatch")
    return SignedFormulary(
        version=version,
        effective_date=_date(env, "effective_date"),  # type: ignore[arg-type]
        expires=_date(env, "expires", optional=True),
        issuer=str(env["issuer"]),
        key_id=kid,
        csv_text=csv_text,
        csv_sha256=env["csv_sha256"],
        file_bytes=data,
    )
