"""The clinic's installed formulary versions and the one in force on a given day.

A store is a directory holding the signed files exactly as issued (``v0002.formulary.json``) and
``history.jsonl``, one line per installation. Every read re-verifies the stored files against the
trusted keys, so a file altered inside the store is refused too.

Which version applies on a day: of the installed versions whose effective date is on or before
that day, the highest version number. If none has taken effect yet (or nothing is installed),
the packaged version 2 (``formulary/data/formulary_v2.formulary.json``, signed with the demo
key) applies: the list the software shipped with. A version past its ``expires`` date is never
applied: ``in_force`` raises ``FormularyExpiredError`` until a newer version is installed.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .catalog import Formulary
from .errors import FormularyError
from .signing import (
    PublicKeyLike,
    SignatureError,
    SignedFormulary,
    load_public_key,
    verify,
)

PACKAGED_VERSIONS = {1: "formulary_v1.formulary.json", 2: "formulary_v2.formulary.json"}
PACKAGED_DEFAULT = 2
DEMO_KEY_FILE = "town_demo_key.toml"
HISTORY = "history.jsonl"


class InstallRefused(FormularyError):
    """An install was refused: duplicate, superseded, out of order, expired or conflicting."""


class FormularyExpiredError(FormularyError):
    """The version that would apply on the day is past its expiry date."""


class UnknownVersion(FormularyError):
    """No installed (or packaged) formulary has that version number."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: int
    effective_date: date
    expires: date | None
    issuer: str
    key_id: str
    drug_count: int
    file_sha256: str
    path: Path | None  # the stored file; None for the packaged fallback
    installed_at: datetime | None  # from history.jsonl; None for the packaged fallback
    packaged: bool = False

    def in_effect_on(self, day: date) -> bool:
        return self.effective_date <= day and (self.expires is None or day <= self.expires)


def demo_public_key():
    """The shipped DEMO town public key (formulary/data/town_demo_key.toml)."""
    with resources.as_file(resources.files("formulary").joinpath("data", DEMO_KEY_FILE)) as p:
        return load_public_key(p)


def _read_packaged_bytes(name: str) -> bytes:
    return resources.files("formulary").joinpath("data", name).read_bytes()


@functools.cache
def packaged(version: int = PACKAGED_DEFAULT) -> tuple[SignedFormulary, Formulary]:
    """A signed version shipped in formulary/data, verified with the shipped demo key."""
    name = PACKAGED_VERSIONS.get(version)
    if name is None:
        raise UnknownVersion(f"没有第 {version} 版药品目录", f"no packaged version {version}")
    signed = verify(_read_packaged_bytes(name), [demo_public_key()], source=name)
    return signed, Formulary(signed.drugs(name))


def _info(signed: SignedFormulary, drug_count: int, path: Path | None,
          installed_at: datetime | None, packaged_: bool = False) -> VersionInfo:
    return VersionInfo(signed.version, signed.effective_date, signed.expires, signed.issuer,
                       signed.key_id, drug_count, signed.file_sha256, path, installed_at, packaged_)


# Parsed formularies by file digest: a Formulary is immutable and its search index costs ~50 ms.
_parsed: dict[str, Formulary] = {}


def _formulary_of(signed: SignedFormulary) -> Formulary:
    f = _parsed.get(signed.file_sha256)
    if f is None:
        f = _parsed[signed.file_sha256] = Formulary(signed.drugs(f"formulary v{signed.version}"))
    return f


def trusted_keys_from(paths: str | None) -> list[Ed25519PublicKey]:
    """The keys in the files named by ``paths`` (separated by ``os.pathsep``; the clinic passes
    the ``CLINIC_FORMULARY_KEYS`` variable), or the shipped DEMO key when none are named."""
    files = [p.strip() for p in (paths or "").split(os.pathsep) if p.strip()]
    return [load_public_key(p) for p in files] if files else [demo_public_key()]


class FormularyStore:
    """Installed, signed formulary versions in ``directory``, trusted only if signed by one of
    ``trusted_keys`` (Ed25519 public keys or their 32 raw bytes)."""

    @classmethod
    def open(cls, directory: Path, key_paths: str | None = None) -> FormularyStore:
        """The store in ``directory`` trusting the keys in ``key_paths`` (see trusted_keys_from)."""
        return cls(directory, trusted_keys_from(key_paths))

    def __init__(self, directory: Path, trusted_keys: Iterable[PublicKeyLike]) -> None:
        self.directory = Path(directory)
        self.trusted_keys = list(trusted_keys)
        if not self.trusted_keys:
            raise ValueError("a formulary store needs at least one trusted key")
        self._cache: dict[tuple[str, int, int], SignedFormulary] = {}

    # ---- reading -----------------------------------------------------------------------

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("v*.formulary.json"))

    def _load(self, path: Path) -> SignedFormulary:
        st = path.stat()
        key = (path.name, st.st_mtime_ns, st.st_size)
        signed = self._cache.get(key)
        if signed is None:
            signed = verify(path.read_bytes(), self.trusted_keys, source=path.name)
            self._cache[key] = signed
        return signed

    def _installed(self) -> list[tuple[SignedFormulary, Path]]:
        return sorted(((self._load(p), p) for p in self._files()), key=lambda sp: sp[0].version)

    def _history(self) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        try:
            lines = (self.directory / HISTORY).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            try:
                rec = json.loads(line)
                out.setdefault(rec["file_sha256"], datetime.fromisoformat(rec["installed_at"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line from a crash: the file itself is the record
        return out

    def versions(self) -> list[VersionInfo]:
        """Every installed version, oldest first (the packaged fallback is not listed)."""
        when = self._history()
        return [_info(s, len(_formulary_of(s)), p, when.get(s.file_sha256))
                for s, p in self._installed()]

    def signed(self, version: int) -> SignedFormulary:
        for s, _ in self._installed():
            if s.version == version:
                return s
        if version in PACKAGED_VERSIONS:
            return packaged(version)[0]
        raise UnknownVersion(f"没有安装第 {version} 版药品目录", f"version {version} not installed")

    def get(self, version: int) -> Formulary:
        """An installed version; versions 1 and 2 fall back to the packaged signed files."""
        return _formulary_of(self.signed(version))

    def in_force_info(self, day: date) -> VersionInfo:
        """The version applied on ``day`` (see the module doc)."""
        chosen = None
        for s, p in self._installed():
            if s.effective_date <= day:
                chosen = (s, p)  # sorted by version: the last one wins
        if chosen is None:
            s, f = packaged(PACKAGED_DEFAULT)
            return _info(s, len(f), None, None, packaged_=True)
        s, p = chosen
        if s.expires is not None and day > s.expires:
            raise FormularyExpiredError(
                f"药品目录第 {s.version} 版已于 {s.expires.year} 年 {s.expires.month} 月 {s.expires.day} 日失效，"
                f"请向镇卫生院索取并安装新版本",
                f"version {s.version} expired {s.expires}, day {day}")
        return _info(s, len(_formulary_of(s)), p, self._history().get(s.file_sha256))

    def in_force(self, day: date) -> Formulary:
        """The Formulary that applies to a visit on ``day``."""
        info = self.in_force_info(day)
        if info.packaged:
            return packaged(info.version)[1]
        return _formulary_of(self.signed(info.version))

    # ---- installing --------------------------------------------------------------------

    def check_installable(self, data: bytes, source: str = "formulary file",
                          today: date | None = None) -> SignedFormulary:
        """Verifies a file and the store's rules without installing it."""
        signed = verify(data, self.trusted_keys, source=source)
        _formulary_of(signed)  # the CSV must load: a bad row is refused here, naming the line
        today = today or date.today()
        v = signed.version
        if signed.expires is not None and signed.expires < today:
            raise InstallRefused(f"药品目录第 {v} 版已于 {signed.expires} 失效，不能安装",
                                 f"version {v} expired {signed.expires}")
        for s, _ in self._installed():
            if s.version == v:
                if s.file_sha256 == signed.file_sha256:
                    raise InstallRefused(f"药品目录第 {v} 版已经安装过", f"version {v} already installed")
                raise InstallRefused(f"已安装的第 {v} 版与此文件内容不同，拒绝安装（请向镇卫生院核实）",
                                     f"version {v} conflicts with the installed file")
            if s.version > v:
                raise InstallRefused(f"药品目录第 {v} 版已被已安装的第 {s.version} 版取代，不能再安装",
                                     f"version {v} superseded by {s.version}")
            if s.effective_date > signed.effective_date:
                raise InstallRefused(
                    f"第 {v} 版的生效日期 {signed.effective_date} 早于已安装的第 {s.version} 版"
                    f"（{s.effective_date}），拒绝安装",
                    f"version {v} effective {signed.effective_date} before v{s.version}")
        return signed

    def install(self, path: str | Path, today: date | None = None) -> VersionInfo:
        """Verifies a signed file and copies it into the store; raises SignatureError or
        InstallRefused (each with a Chinese message) and leaves the store unchanged."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InstallRefused(f"无法读取文件 {path.name}", f"{path}: {e}") from None
        signed = self.check_installable(data, source=path.name, today=today)
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"v{signed.version:04d}.formulary.json"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".install-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, target)  # atomic and refuses an existing name (a concurrent install)
            except FileExistsError:
                raise InstallRefused(f"药品目录第 {signed.version} 版已经安装过",
                                     f"{target} exists") from None
        finally:
            os.unlink(tmp)
        now = datetime.now().replace(microsecond=0)
        with (self.directory / HISTORY).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"installed_at": now.isoformat(), "version": signed.version,
                                 "effective_date": signed.effective_date.isoformat(),
                                 "file_sha256": signed.file_sha256, "key_id": signed.key_id,
                                 "source": path.name}, ensure_ascii=False) + "\n")
        return _info(signed, len(_formulary_of(signed)), target, now)


__all__ = ["FormularyExpiredError", "FormularyStore", "InstallRefused", "SignatureError",
           "UnknownVersion", "VersionInfo", "demo_public_key", "packaged", "trusted_keys_from"]
