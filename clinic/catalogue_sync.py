"""Fetching the insurer's national drug catalogue and keeping it on this machine.

1301 answers with a file reference; the file (a zip with one tab-separated text member) is
fetched with 9102. 1312 pages through the same list. Both go through the counter's journaled
client (`counter.call`), like the day close's 9101/3202/9102, so each message has its msgid
committed before it is sent and is audited.

The local copy lives in ``settings.home / "catalogue"``: ``national.tsv`` (the text exactly as
the insurer sent it) and ``national.json`` (version, when, how, how many, SHA-256), each replaced
atomically, so a sync cut short leaves the previous catalogue in place.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from formulary.national import COLUMNS, NationalCatalogue, parse_rows, rows_text
from settlement import messages

from .errors import CounterError

CATALOGUE_DIR = "catalogue"
DATA_FILE = "national.tsv"
META_FILE = "national.json"
PAGE_SIZE = 1000
MAX_PAGES = 1000


class CatalogueMissing(CounterError):
    """No catalogue has been synced on this machine yet."""


@dataclass(frozen=True)
class SyncReport:
    version: str
    records: int
    via: str  # "1301" or "1312"
    synced_at: str
    sha256: str
    path: str
    calls: int  # insurer messages sent


def catalogue_dir(settings) -> Path:
    return Path(settings.home) / CATALOGUE_DIR


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _store(counter, text: str, version: str, via: str, calls: int) -> SyncReport:
    rows = parse_rows(text, "national catalogue")  # refuse a malformed download before replacing
    if not rows:
        raise CounterError("医保中心返回的目录为空，保留原有目录", "empty catalogue")
    data = text.encode("utf-8")
    folder = catalogue_dir(counter.settings)
    report = SyncReport(version=version, records=len(rows), via=via,
                        synced_at=counter.clock().isoformat(timespec="seconds"),
                        sha256=hashlib.sha256(data).hexdigest(), path=str(folder / DATA_FILE),
                        calls=calls)
    _write_atomic(folder / DATA_FILE, data)
    _write_atomic(folder / META_FILE, json.dumps(asdict(report), ensure_ascii=False, indent=1).encode())
    counter.audit.append("catalogue_sync", version, "ok", via=via, records=len(rows),
                         sha256=report.sha256)
    return report


def _zip_text(raw: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            members = [i for i in z.infolist() if not i.is_dir()]
            if len(members) != 1:
                raise CounterError("医保目录文件格式不对（应只含一个文本文件）", f"{len(members)} members")
            return z.read(members[0]).decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise CounterError("医保目录文件无法读取，保留原有目录", f"bad catalogue zip: {exc}") from None


def sync_by_download(counter, have_version: str = "") -> SyncReport:
    """1301 (file reference) then 9102 (the zip)."""
    _, ans = counter.call("1301", None, {"data": {"ver": have_version or "0"}})
    out: Any = ans.output if isinstance(ans.output, dict) else {}
    qury = messages.parse_file_upload(out)
    filename = str(out.get("filename") or "")
    version = str(out.get("ver") or "")
    _, dl = counter.call("9102", None, messages.file_download(
        qury, filename, counter.settings.fixmedins_code))
    return _store(counter, _zip_text(dl.raw), version, "1301", 2)


def query_page(counter, *, page_num: int = 1, page_size: int = PAGE_SIZE, query_date: date | None = None,
               hilist_code: str = "", med_chrgitm_type: str = "", chrgitm_lv: str = "") -> dict:
    """One 1312 page: the output dict (``data[]`` + paging fields)."""
    data = {"query_date": query_date.isoformat() if query_date else "", "hilist_code": hilist_code,
            "med_chrgitm_type": med_chrgitm_type, "chrgitm_lv": chrgitm_lv,
            "page_num": page_num, "page_size": page_size}
    _, ans = counter.call("1312", None, {"data": data})
    if not isinstance(ans.output, dict) or not isinstance(ans.output.get("data"), list):
        raise CounterError("医保目录查询的返回格式不对", f"1312 output {str(ans.output)[:200]}")
    return ans.output


def sync_by_query(counter, page_size: int = PAGE_SIZE) -> SyncReport:
    """Every page of 1312 (no filters: ended and withdrawn items included)."""
    lines: list[str] = []
    page, pages, calls, version = 1, 1, 0, ""
    while page <= pages:
        out = query_page(counter, page_num=page, page_size=page_size)
        calls += 1
        pages = min(int(out.get("pages") or 0), MAX_PAGES)
        version = str(out.get("ver") or version)
        for item in out["data"]:
            lines.append("\t".join(str(item.get(c) or "") for c in COLUMNS) + "\n")
        page += 1
    return _store(counter, "".join(lines), version, "1312", calls)


def sync(counter, via: str = "1301") -> SyncReport:
    meta = read_meta(counter.settings)
    if via == "1301":
        return sync_by_download(counter, meta.get("version", "") if meta else "")
    if via == "1312":
        return sync_by_query(counter)
    raise ValueError(f"via must be 1301 or 1312, not {via!r}")


def read_meta(settings) -> dict | None:
    try:
        return json.loads((catalogue_dir(settings) / META_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


_loaded: dict[tuple[str, int, int], NationalCatalogue] = {}


def load_local(settings) -> NationalCatalogue:
    """The catalogue last synced on this machine (cached per process while the file is unchanged)."""
    path = catalogue_dir(settings) / DATA_FILE
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CatalogueMissing("本机还没有国家医保目录，请先联网运行 clinic formulary catalogue sync",
                               f"{path} missing") from None
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _loaded:
        meta = read_meta(settings) or {}
        _loaded.clear()
        _loaded[key] = NationalCatalogue.load(path, version=str(meta.get("version", "")))
    return _loaded[key]


__all__ = ["CatalogueMissing", "SyncReport", "load_local", "query_page", "read_meta", "rows_text",
           "sync", "sync_by_download", "sync_by_query"]
