"""Encrypted backups of the clinic database, and restoring one.

A backup is taken through SQLite's online backup API (never a file copy, which can tear a WAL
database) into an in-memory database, serialized and encrypted under a key derived from the
installation's data key: no plaintext copy of the database is ever written for a backup. The
written file is read back, decrypted, integrity-checked and its row counts compared with the
source snapshot before it gets its final name. Format (docs/security.md):

    header   b"CLINICBK" | version u8 | key_id 16 ascii | salt 32 | chunk_size u32 | meta_len u32
             | meta (JSON: created, tables' row counts, schema revision, size)
    chunks   AES-256-GCM under HKDF-SHA256(data key, salt, "clinic backup v1"), nonce = u32 index
             || 8 zero bytes, associated data = SHA-256(header) || index u32 || last u8

Every byte is authenticated: the header through each chunk's associated data, the order by the
index, the end by the `last` flag (a truncated file is refused, not half restored).
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .crypto import write_new_private
from .errors import CounterError
from .keyslots import key_id as data_key_id

MAGIC = b"CLINICBK"
VERSION = 1
CHUNK = 1 << 20
SUFFIX = ".cbk"
_FIXED = struct.Struct(">8sB16s32sII")


class BackupError(CounterError):
    exit_code = 1
    status = "backup"


class OtherKey(BackupError):
    """The backup was made under another installation's data key."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    key_id: str
    created: str
    counts: dict[str, int]
    schema: str
    size: int


def _counts(con: sqlite3.Connection) -> dict[str, int]:
    tables = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def _schema(con: sqlite3.Connection) -> str:
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return ""
    return row[0] if row else ""


def _file_key(data_key: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                       info=b"clinic backup v1").derive(data_key))


def _nonce(index: int) -> bytes:
    return struct.pack(">I", index) + b"\0" * 8  # the key is fresh per file (random salt)


def encrypt_bytes(plain: bytes, data_key: bytes, meta: dict) -> bytes:
    salt = os.urandom(32)
    meta_raw = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    header = _FIXED.pack(MAGIC, VERSION, data_key_id(data_key).encode(), salt, CHUNK,
                         len(meta_raw)) + meta_raw
    bound = hashlib.sha256(header).digest()
    aead = _file_key(data_key, salt)
    out = [header]
    n = max(1, -(-len(plain) // CHUNK))
    for i in range(n):
        part = plain[i * CHUNK:(i + 1) * CHUNK]
        out.append(aead.encrypt(_nonce(i), part, bound + struct.pack(">IB", i, i == n - 1)))
    return b"".join(out)


def read_header(blob: bytes) -> tuple[str, dict, int, bytes, bytes, int]:
    """(key_id, meta, chunk_size, salt, header bytes, header length); refuses foreign files."""
    if len(blob) < _FIXED.size or blob[:8] != MAGIC:
        raise BackupError("这不是本系统的备份文件", "bad magic")
    _, version, kid, salt, chunk, meta_len = _FIXED.unpack_from(blob)
    if version != VERSION:
        raise BackupError("备份文件版本不受支持，请升级软件", f"backup version {version}")
    end = _FIXED.size + meta_len
    if chunk <= 0 or chunk > 64 << 20 or end > len(blob):
        raise BackupError("备份文件已损坏（文件头不完整）", "bad header lengths")
    try:
        meta = json.loads(blob[_FIXED.size:end])
    except ValueError:
        raise BackupError("备份文件已损坏（文件头无法读取）", "bad meta") from None
    return kid.decode("ascii", "replace"), meta, chunk, salt, blob[:end], end


def decrypt_bytes(blob: bytes, data_key: bytes) -> tuple[bytes, dict]:
    kid, meta, chunk, salt, header, pos = read_header(blob)
    if kid != data_key_id(data_key):
        raise OtherKey("这个备份是用另一套数据密钥做的（不是本机的数据），不能在这里打开或恢复",
                       f"backup key {kid}, ours {data_key_id(data_key)}")
    bound = hashlib.sha256(header).digest()
    aead = _file_key(data_key, salt)
    parts, i, step = [], 0, chunk + 16
    while True:
        piece = blob[pos:pos + step]
        if not piece:
            raise BackupError("备份文件不完整（被截断），不能使用", f"truncated at chunk {i}")
        pos += len(piece)
        last = pos >= len(blob)
        try:
            parts.append(aead.decrypt(_nonce(i), piece, bound + struct.pack(">IB", i, last)))
        except InvalidTag:
            raise BackupError("备份文件已损坏或被改动，不能使用",
                              f"chunk {i} fails authentication") from None
        if last:
            return b"".join(parts), meta
        i += 1


def _check_db(con: sqlite3.Connection, expect: dict[str, int]) -> None:
    check = con.execute("PRAGMA integrity_check").fetchone()[0]
    if check != "ok":
        raise BackupError("备份校验失败：数据库不完整", f"integrity_check: {check}")
    got = _counts(con)
    if got != expect:
        raise BackupError("备份校验失败：记录数不一致", f"{expect} != {got}")


def _rollback_mode(image: bytes) -> bytes:
    """The file-format bytes of the header (offsets 18, 19) say WAL in a copy of a WAL database;
    a backup is one self-contained file in rollback-journal mode (as journal_mode=DELETE sets)."""
    if len(image) >= 20 and image[18:20] == b"\x02\x02":
        return image[:18] + b"\x01\x01" + image[20:]
    return image


def _open_plain(plain: bytes) -> sqlite3.Connection:
    mem = sqlite3.connect(":memory:")
    try:
        mem.deserialize(_rollback_mode(plain))
    except sqlite3.DatabaseError:
        mem.close()
        raise BackupError("备份内容不是有效的数据库", "deserialize failed") from None
    return mem


def snapshot(db_path: Path) -> tuple[bytes, dict[str, int], str]:
    """The database as bytes, from one read snapshot, through memory only."""
    src = sqlite3.connect(db_path, isolation_level=None)
    try:
        # One read snapshot for both the counts and the copy, while the counter keeps writing.
        src.execute("BEGIN")
        try:
            return _snapshot_of(src)
        finally:
            src.execute("COMMIT")
    finally:
        src.close()


def _snapshot_of(src: sqlite3.Connection) -> tuple[bytes, dict[str, int], str]:
    mem = sqlite3.connect(":memory:")
    try:
        counts = _counts(src)
        schema = _schema(src)
        src.backup(mem)
        _check_db(mem, counts)
        return _rollback_mode(mem.serialize()), counts, schema
    finally:
        mem.close()


def _snapshot_locked(con: sqlite3.Connection) -> tuple[bytes, dict[str, int], str]:
    """The database as bytes from a connection holding it exclusively (the backup API cannot
    read through a connection in a write transaction; serialize can)."""
    counts, schema = _counts(con), _schema(con)
    plain = _rollback_mode(con.serialize())
    mem = _open_plain(plain)
    try:
        _check_db(mem, counts)
    finally:
        mem.close()
    return plain, counts, schema


def create_backup(db_path: Path, out_dir: Path, data_key: bytes, now: datetime | None = None,
                  *, label: str = "clinic") -> Path:
    if not Path(db_path).is_file():  # sqlite3.connect would quietly make an empty one
        raise BackupError("找不到要备份的数据库", f"no database at {db_path}")
    return _write_backup(snapshot(db_path), out_dir, data_key, now, label)


def _write_backup(snap: tuple[bytes, dict[str, int], str], out_dir: Path, data_key: bytes,
                  now: datetime | None, label: str) -> Path:
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = now or datetime.now()
    plain, counts, schema = snap
    meta = {"created": now.isoformat(timespec="seconds"), "counts": counts, "schema": schema,
            "size": len(plain)}
    blob = encrypt_bytes(plain, data_key, meta)
    del plain, snap
    stamp = now.strftime("%Y%m%d-%H%M%S")
    final = out_dir / f"{label}-{stamp}{SUFFIX}"
    n = 1
    while final.exists():
        final = out_dir / f"{label}-{stamp}-{n}{SUFFIX}"
        n += 1
    tmp = final.with_name(final.name + f".{os.getpid()}.part")
    try:
        write_new_private(tmp, blob)
        verify_backup(tmp, data_key)  # what is on disk, read back, before it gets its name
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(out_dir)
    return final


def verify_backup(path: Path, data_key: bytes) -> BackupInfo:
    blob = Path(path).read_bytes()
    plain, meta = decrypt_bytes(blob, data_key)
    if meta.get("size") not in (None, len(plain)):
        raise BackupError("备份文件已损坏（长度不符）", f"size {len(plain)} != {meta.get('size')}")
    mem = _open_plain(plain)
    try:
        _check_db(mem, meta.get("counts") or {})
    finally:
        mem.close()
    return BackupInfo(Path(path), data_key_id(data_key), meta.get("created", ""),
                      meta.get("counts") or {}, meta.get("schema", ""), len(plain))


class CounterRunning(BackupError):
    pass


def restore_backup(path: Path, db_path: Path, data_key: bytes, backups_dir: Path,
                   now: datetime | None = None) -> tuple[BackupInfo, Path | None]:
    """Replace the database with a verified backup. The current database is first saved as an
    encrypted backup (`before-restore-<stamp>.cbk`), which is returned beside the info.

    Refused while another process (a running counter) has the database open."""
    info = verify_backup(path, data_key)
    plain, meta = decrypt_bytes(Path(path).read_bytes(), data_key)
    kept = None
    holder = None
    if db_path.exists():
        holder = sqlite3.connect(db_path, timeout=1, isolation_level=None)
        try:
            # Leaving WAL needs the only connection; it also folds the WAL in and removes it,
            # so no old -wal file can be replayed onto the restored database.
            mode = holder.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            if mode != "delete":
                raise sqlite3.OperationalError(f"journal_mode stays {mode}")
            holder.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            holder.close()
            raise CounterRunning("数据库正被其他程序使用（柜台是否还开着？），请先关闭后再恢复",
                                 f"cannot take the database: {exc}") from None
        try:  # the current database, kept as an encrypted backup, under the same lock
            kept = _write_backup(_snapshot_locked(holder), backups_dir, data_key, now,
                                 "before-restore")
        except BaseException:
            holder.close()
            raise
    tmp = db_path.with_name(f"{db_path.name}.restore-{os.getpid()}.tmp")
    try:
        mem = _open_plain(plain)
        out = sqlite3.connect(tmp)
        try:
            mem.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")
            _check_db(out, meta.get("counts") or {})
        finally:
            out.close()
            mem.close()
        os.chmod(tmp, 0o600)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        for extra in ("-wal", "-shm"):  # gone with journal_mode=DELETE; never replay old ones
            side = db_path.with_name(db_path.name + extra)
            if side.exists():
                side.unlink()
        os.replace(tmp, db_path)
        _fsync_dir(db_path.parent)
    finally:
        if holder is not None:
            holder.close()
        if tmp.exists():
            tmp.unlink()
    return info, kept


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
