"""`clinic formulary ...`: search, signed versions (keygen, sign, install, versions, diff) and the
national catalogue (sync, check).

Trusted town keys: the files named in ``CLINIC_FORMULARY_KEYS`` (separated by the platform's
path separator, ``:`` on Linux), else the shipped DEMO key (formulary/data/town_demo_key.toml).
Installed versions live in ``settings.home / "formulary"``.
"""
from __future__ import annotations

import json
import os
import sys
from datetime import date
from functools import wraps
from pathlib import Path

from settlement.money import yuan

from .config import Settings
from .roles import NO_LOGIN

KEYS_ENV = "CLINIC_FORMULARY_KEYS"
EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


def formulary_store(settings: Settings):
    """The clinic's store of signed formulary versions: ``settings.home / "formulary"``, trusting
    the keys named in CLINIC_FORMULARY_KEYS (default: the shipped demo key)."""
    from formulary.store import FormularyStore
    return FormularyStore.open(Path(settings.home) / "formulary", os.environ.get(KEYS_ENV))


def _audit(args, settings: Settings):
    from .audit import Actor, AuditLog
    from .db import open_database
    return AuditLog(open_database(settings.db_path), Actor.acting(settings, args.session.operator))


def _formulary_errors(fn):
    """FormularyError -> its Chinese message on stderr and exit 1 (2 for a refused install)."""
    @wraps(fn)
    def run(args, settings: Settings) -> int:
        from formulary.errors import FormularyError
        from formulary.signing import SignatureError
        from formulary.store import InstallRefused
        try:
            return fn(args, settings)
        except FormularyError as exc:
            print(exc.message, file=sys.stderr)
            return EXIT_REFUSED if isinstance(exc, (InstallRefused, SignatureError)) else EXIT_FAILED
    return run


def _day(text: str | None) -> date:
    return date.fromisoformat(text) if text else date.today()


# ---- search ------------------------------------------------------------------------------

@_formulary_errors
def cmd_search(args, settings: Settings) -> int:
    if args.catalogue:
        return _search_catalogue(args, settings)
    hits = formulary_store(settings).in_force(_day(args.date)).search(args.query, limit=args.limit)
    if args.json:
        print(json.dumps([{"code": d.code, "name": d.name, "strength": d.strength,
                           "unit": d.unit, "price": yuan(d.price_fen), "class": d.chrgitm_lv}
                          for d in hits], ensure_ascii=False, indent=2))
    else:
        for d in hits:
            print(f"{d.code}  {d.name} {d.strength} /{d.unit}  {yuan(d.price_fen)}元")
        if not hits:
            print("没有找到匹配的药品")
    return EXIT_OK if hits else EXIT_FAILED


def _search_catalogue(args, settings: Settings) -> int:
    from .catalogue_sync import load_local
    cat = load_local(settings)
    day = _day(args.date)
    hits = cat.search(args.query, limit=args.limit)
    if args.json:
        print(json.dumps([{"code": e.code, "name": e.name, "class": e.chrgitm_lv,
                           "begndate": e.begndate, "enddate": e.enddate, "vali_flag": e.vali_flag,
                           "status": e.status_on(day)} for e in hits], ensure_ascii=False, indent=2))
    else:
        status = {"valid": "", "ended": "（已失效）", "invalid": "（无效）", "not_yet": "（未生效）"}
        for e in hits:
            print(f"{e.code}  {e.name}  {e.chrgitm_lv}  {e.begndate}～{e.enddate}{status[e.status_on(day)]}")
        if not hits:
            print("国家医保目录中没有找到匹配的药品")
    return EXIT_OK if hits else EXIT_FAILED


# ---- signed versions -----------------------------------------------------------------------

@_formulary_errors
def cmd_keygen(args, settings: Settings) -> int:
    from formulary import signing
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    private, public = out / "town_private.key", out / "town_public.key"
    if private.exists() or public.exists():
        print(f"{out} 中已有密钥文件，不覆盖", file=sys.stderr)
        return EXIT_FAILED
    key = signing.generate_key()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(signing.private_key_text(key))
    public.write_text(signing.public_key_text(key.public_key()), encoding="utf-8")
    print(f"密钥 {signing.key_id(key.public_key())}：私钥 {private}（妥善保管，勿拷到卫生室），"
          f"公钥 {public}（发给各卫生室，设置 {KEYS_ENV}）")
    return EXIT_OK


@_formulary_errors
def cmd_sign(args, settings: Settings) -> int:
    from formulary import signing
    csv_text = Path(args.csv).read_text(encoding="utf-8")
    data = signing.sign(csv_text, version=args.version, effective_date=date.fromisoformat(args.effective),
                        expires=date.fromisoformat(args.expires) if args.expires else None,
                        key=signing.load_private_key(args.key), issuer=args.issuer)
    Path(args.out).write_bytes(data)
    print(f"已签发药品目录第 {args.version} 版（{args.effective} 起生效）：{args.out}")
    return EXIT_OK


@_formulary_errors
def cmd_install(args, settings: Settings) -> int:
    from formulary.diff import diff
    from formulary.errors import FormularyError
    store = formulary_store(settings)
    audit = _audit(args, settings)
    before = store.versions()
    try:
        info = store.install(args.file)
    except FormularyError as exc:
        audit.append("formulary_install", Path(args.file).name, "refused", reason=exc.detail[:200])
        raise
    audit.append("formulary_install", f"v{info.version}", "ok", effective_date=info.effective_date.isoformat(),
                 file_sha256=info.file_sha256, key_id=info.key_id, drugs=info.drug_count)
    print(f"已安装药品目录第 {info.version} 版：{info.drug_count} 种药，"
          f"{info.effective_date} 起生效，签发：{info.issuer}（密钥 {info.key_id}）")
    if before:
        prev = before[-1]
        print(f"与第 {prev.version} 版相比：" +
              diff(store.get(prev.version), store.get(info.version)).summary())
    return EXIT_OK


@_formulary_errors
def cmd_versions(args, settings: Settings) -> int:
    from formulary.errors import FormularyError
    store = formulary_store(settings)
    today = _day(args.date)
    infos = store.versions()
    try:
        current = store.in_force_info(today)
    except FormularyError as exc:
        current, note = None, exc.message
    else:
        note = ""
    if args.json:
        print(json.dumps({"versions": [_info_json(i) for i in infos],
                          "in_force": _info_json(current) if current else None, "note": note},
                         ensure_ascii=False, indent=1))
        return EXIT_OK
    if not infos:
        print("尚未安装任何药品目录版本")
    for i in infos:
        mark = "  ← 今日适用" if current and not current.packaged and current.version == i.version else ""
        exp = f"，{i.expires} 失效" if i.expires else ""
        when = f"，安装于 {i.installed_at:%Y-%m-%d %H:%M}" if i.installed_at else ""
        print(f"第 {i.version} 版：{i.effective_date} 起生效{exp}，{i.drug_count} 种药，"
              f"签发 {i.issuer}（密钥 {i.key_id}）{when}{mark}")
    if current and current.packaged:
        print(f"今日适用：随软件附带的第 {current.version} 版（{current.drug_count} 种药，演示密钥签发）")
    if note:
        print(note)
    return EXIT_OK


def _info_json(i) -> dict:
    return {"version": i.version, "effective_date": i.effective_date.isoformat(),
            "expires": i.expires.isoformat() if i.expires else None, "issuer": i.issuer,
            "key_id": i.key_id, "drugs": i.drug_count, "file_sha256": i.file_sha256,
            "installed_at": i.installed_at.isoformat() if i.installed_at else None,
            "packaged": i.packaged}


def _resolve_version(store, ref: str):
    """(label, drugs) for a version number in the store or a file path (signed file or CSV)."""
    from formulary.drugs import load_csv
    from formulary.signing import verify
    path = Path(ref)
    if path.is_file():
        data = path.read_bytes()
        if data.lstrip()[:1] == b"{":
            signed = verify(data, store.trusted_keys, source=path.name)
            return f"{path.name}（第 {signed.version} 版）", signed.drugs(path.name)
        return path.name, load_csv(path)
    if not ref.removeprefix("v").isdigit():
        from formulary.store import UnknownVersion
        raise UnknownVersion(f"“{ref}”既不是版本号也不是文件", f"bad version ref {ref!r}")
    version = int(ref.removeprefix("v"))
    signed = store.signed(version)
    return f"第 {version} 版（{signed.effective_date} 起生效）", list(store.get(version))


@_formulary_errors
def cmd_diff(args, settings: Settings) -> int:
    from formulary.diff import FIELD_LABELS, diff
    store = formulary_store(settings)
    old_label, old = _resolve_version(store, args.old)
    new_label, new = _resolve_version(store, args.new)
    d = diff(old, new)
    if args.json:
        print(json.dumps({
            "old": old_label, "new": new_label, "summary": d.summary(),
            "added": [{"code": x.code, "name": x.name} for x in d.added],
            "removed": [{"code": x.code, "name": x.name} for x in d.removed],
            "changed": [{"code": c.code, "name": c.name, "changes": [
                {"field": f.field, "label": FIELD_LABELS[f.field], "old": _plain(f.old),
                 "new": _plain(f.new), "text": f.describe()} for f in c.changes]} for c in d.changed],
        }, ensure_ascii=False, indent=1))
        return EXIT_OK
    print(f"{old_label} → {new_label}：{d.summary()}")
    if d.added:
        print("新增：")
        for x in d.added:
            print(f"  + {x.code}  {x.name} {x.strength} /{x.unit}  {yuan(x.price_fen)}元  {x.class_name}")
    if d.removed:
        print("删除：")
        for x in d.removed:
            print(f"  - {x.code}  {x.name} {x.strength} /{x.unit}")
    if d.changed:
        print("变更：")
        for c in d.changed:
            print(f"  * {c.describe()}")
    return EXIT_OK


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


# ---- the national catalogue -------------------------------------------------------------------

@_formulary_errors
def cmd_catalogue_sync(args, settings: Settings) -> int:
    from .catalogue_sync import sync
    from .counter import Counter
    counter = Counter(settings, args.session)
    try:
        report = sync(counter, via=args.via)
    finally:
        counter.close()
    print(f"已更新国家医保目录：版本 {report.version or '未知'}，{report.records} 条（经 {report.via}，"
          f"{report.calls} 次通讯）")
    return EXIT_OK


@_formulary_errors
def cmd_catalogue_check(args, settings: Settings) -> int:
    from .catalogue_sync import load_local
    day = _day(args.date)
    cat = load_local(settings)
    formulary = formulary_store(settings).in_force(day)
    m = cat.map_formulary(formulary, day)
    if args.json:
        print(json.dumps({"day": day.isoformat(), "catalogue_version": cat.version,
                          "drugs": len(formulary), "mapped": m.mapped,
                          "warnings": [{"code": w.code, "name": w.name, "kind": w.kind,
                                        "message": w.message} for w in m.warnings]},
                         ensure_ascii=False, indent=1))
    else:
        print(f"{day} 药品目录 {len(formulary)} 种，在国家医保目录（版本 {cat.version or '未知'}，"
              f"{len(cat)} 条）中找到 {m.mapped} 种，{len(m.warnings)} 条提醒")
        for w in m.warnings:
            print(f"  ! {w.message}")
    return EXIT_OK if not m.warnings else EXIT_FAILED


# ---- registration ---------------------------------------------------------------------------------

def register(sub) -> None:
    fm = sub.add_parser("formulary", help="药品目录").add_subparsers(dest="sub", required=True)

    fs = fm.add_parser("search", help="按拼音首字母、拼音、中文、医保编码搜索")
    fs.add_argument("query")
    fs.add_argument("--limit", type=int, default=20)
    fs.add_argument("--json", action="store_true")
    fs.add_argument("--catalogue", action="store_true", help="搜索整个国家医保目录（需先同步）")
    fs.add_argument("--date", help="yyyy-mm-dd：按这一天适用的目录版本，默认今天")
    fs.set_defaults(func=cmd_search, needs="view_formulary")

    kg = fm.add_parser("keygen", help="（镇卫生院）生成签发密钥对")
    kg.add_argument("--out", required=True)
    kg.set_defaults(func=cmd_keygen, needs=NO_LOGIN)

    sg = fm.add_parser("sign", help="（镇卫生院）签发一个药品目录版本")
    sg.add_argument("csv")
    sg.add_argument("--version", type=int, required=True)
    sg.add_argument("--effective", required=True, help="生效日期 yyyy-mm-dd")
    sg.add_argument("--expires", help="失效日期 yyyy-mm-dd（可选）")
    sg.add_argument("--issuer", default="枫泾镇社区卫生服务中心")
    sg.add_argument("--key", required=True, help="私钥文件")
    sg.add_argument("--out", required=True)
    sg.set_defaults(func=cmd_sign, needs=NO_LOGIN)

    ins = fm.add_parser("install", help="安装镇卫生院签发的目录文件")
    ins.add_argument("file")
    ins.set_defaults(func=cmd_install, needs="formulary_install")

    vs = fm.add_parser("versions", help="已安装的版本和今日适用的版本")
    vs.add_argument("--date")
    vs.add_argument("--json", action="store_true")
    vs.set_defaults(func=cmd_versions, needs="view_formulary")

    df = fm.add_parser("diff", help="两个版本之间的变化（版本号或文件）")
    df.add_argument("old")
    df.add_argument("new")
    df.add_argument("--json", action="store_true")
    df.set_defaults(func=cmd_diff, needs="view_formulary")

    cat = fm.add_parser("catalogue", help="国家医保目录").add_subparsers(dest="catalogue_cmd", required=True)
    cs = cat.add_parser("sync", help="从医保中心下载目录（1301+9102，或 1312 分页）")
    cs.add_argument("--network")
    cs.add_argument("--via", choices=("1301", "1312"), default="1301")
    cs.set_defaults(func=cmd_catalogue_sync, needs="catalogue_sync")
    cc = cat.add_parser("check", help="本卫生室目录对照国家目录，提示失效和缺失")
    cc.add_argument("--date")
    cc.add_argument("--json", action="store_true")
    cc.set_defaults(func=cmd_catalogue_check, needs="view_formulary")
