"""The national drug catalogue (西药中成药目录) the simulator serves through 1301 and 1312.

Generated, not real: deterministic from a fixed seed, about 100,000 items. It holds the
formulary's drugs under their exact codes and names (read from formulary/data/formulary_v2.csv
as a plain file, like catalogue.py), and around them every generic stem of that list and of a
list of other common drugs, in several dosage forms, strengths, packs and makers, with codes of
the real 23-character shape (kind · ATC level 4 · generic id · form · strength · pack · maker).

About 4 % of the items have ended (``enddate`` in the past) and 1 % are marked invalid
(``vali_flag`` 0). Of the formulary's own drugs a fixed few have ended (EXPIRED_FORMULARY, on
2025-06-30, each with a valid same-name successor from another maker) and a fixed few are
missing (MISSING_FORMULARY), so a clinic's mapping check has something to warn about.

Built lazily on first use and cached for the life of the process (about a second), so the
simulator starts as fast as before.
"""
from __future__ import annotations

import csv
import functools
import io
import random
import zipfile
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from .catalogue import FORMULARY_CSV, chrgitm_type_for

VERSION = "20261101001"
SIZE = 100_000
SEED = 20261101
OPEN_END = "2099-12-31"
FORMULARY_ENDED = "2025-06-30"
# The 1301 file: a zip with one tab-separated member, no header, these columns.
COLUMNS = ("hilist_code", "hilist_name", "med_chrgitm_type", "chrgitm_lv", "lmt_used_flag",
           "begndate", "enddate", "vali_flag")

# Positions in the formulary file (0-based, data rows) of drugs whose catalogue entry has ended
# or that the catalogue lacks. Fixed so tests and docs can name them.
EXPIRED_FORMULARY = (7, 57, 107, 157)
MISSING_FORMULARY = (33, 133)

# Form words as they end a drug name, longest first, with this project's form codes
# (the formulary's assignment where it has one, see docs/formulary.md).
FORMS = (
    ("缓释胶囊", "E003"), ("肠溶胶囊", "E004"), ("口服溶液", "K001"), ("缓释片", "A010"),
    ("控释片", "A011"), ("肠溶片", "A012"), ("分散片", "A002"), ("咀嚼片", "A006"),
    ("泡腾片", "A004"), ("软胶囊", "E006"), ("注射液", "B002"), ("滴眼液", "G001"),
    ("混悬液", "K009"), ("口服液", "K002"), ("含片", "A005"), ("胶囊", "E001"), ("颗粒", "N001"),
    ("糖浆", "K003"), ("滴丸", "P003"), ("蜜丸", "P002"), ("软膏", "F001"), ("乳膏", "F002"),
    ("凝胶", "F003"), ("眼膏", "G003"), ("片", "A001"), ("丸", "P001"), ("散", "S001"),
)
_FORM_CODE = dict(FORMS)
WESTERN_FORMS = ("片", "胶囊", "缓释片", "分散片", "颗粒", "注射液", "肠溶片", "口服溶液",
                 "软胶囊", "咀嚼片", "泡腾片", "缓释胶囊", "混悬液")
TCM_FORMS = ("丸", "颗粒", "胶囊", "片", "口服液", "滴丸", "蜜丸", "糖浆", "软胶囊", "含片")

# Other common drugs (stem, ATC level 4 or TCM category), so the catalogue is not just our list.
OTHER_STEMS = """
阿奇霉素 J01FA|克拉霉素 J01FA|红霉素 J01FA|罗红霉素 J01FA|头孢克洛 J01DC|头孢丙烯 J01DC|头孢地尼 J01DD
头孢克肟 J01DD|头孢呋辛酯 J01DC|头孢氨苄 J01DB|头孢拉定 J01DB|氨苄西林 J01CA|哌拉西林 J01CA
左氧氟沙星 J01MA|莫西沙星 J01MA|环丙沙星 J01MA|诺氟沙星 J01MA|甲硝唑 J01XD|替硝唑 J01XD|奥硝唑 J01XD
多西环素 J01AA|米诺环素 J01AA|磷霉素 J01XX|呋喃妥因 J01XE|利奈唑胺 J01XX|氟康唑 J02AC|伊曲康唑 J02AC
阿昔洛韦 J05AB|伐昔洛韦 J05AB|奥司他韦 J05AH|利巴韦林 J05AP|恩替卡韦 J05AF|替诺福韦 J05AF
布洛芬 M01AE|洛索洛芬钠 M01AE|萘普生 M01AE|双氯芬酸钠 M01AB|吲哚美辛 M01AB|美洛昔康 M01AC
塞来昔布 M01AH|依托考昔 M01AH|对乙酰氨基酚 N02BE|曲马多 N02AX|氨酚羟考酮 N02AJ|秋水仙碱 M04AC
别嘌醇 M04AA|非布司他 M04AA|苯溴马隆 M04AB|氨氯地平 C08CA|左旋氨氯地平 C08CA|硝苯地平 C08CA
拉西地平 C08CA|贝尼地平 C08CA|西尼地平 C08CA|依那普利 C09AA|贝那普利 C09AA|培哚普利 C09AA
福辛普利 C09AA|赖诺普利 C09AA|缬沙坦 C09CA|氯沙坦钾 C09CA|厄贝沙坦 C09CA|替米沙坦 C09CA
坎地沙坦酯 C09CA|奥美沙坦酯 C09CA|阿利沙坦酯 C09CA|美托洛尔 C07AB|比索洛尔 C07AB|阿替洛尔 C07AB
卡维地洛 C07AG|普萘洛尔 C07AA|氢氯噻嗪 C03AA|吲达帕胺 C03BA|呋塞米 C03CA|螺内酯 C03DA
托拉塞米 C03CA|阿托伐他汀钙 C10AA|瑞舒伐他汀钙 C10AA|辛伐他汀 C10AA|普伐他汀钠 C10AA
匹伐他汀钙 C10AA|氟伐他汀钠 C10AA|非诺贝特 C10AB|苯扎贝特 C10AB|依折麦布 C10AX|二甲双胍 A10BA
格列美脲 A10BB|格列齐特 A10BB|格列吡嗪 A10BB|格列喹酮 A10BB|阿卡波糖 A10BF|伏格列波糖 A10BF
瑞格列奈 A10BX|那格列奈 A10BX|西格列汀 A10BH|沙格列汀 A10BH|利格列汀 A10BH|吡格列酮 A10BG
达格列净 A10BK|恩格列净 A10BK|奥美拉唑 A02BC|兰索拉唑 A02BC|泮托拉唑 A02BC|雷贝拉唑钠 A02BC
艾司奥美拉唑镁 A02BC|法莫替丁 A02BA|雷尼替丁 A02BA|铝碳酸镁 A02AD|硫糖铝 A02BX|多潘立酮 A03FA
莫沙必利 A03FA|伊托必利 A03FA|甲氧氯普胺 A03FA|蒙脱石 A07BC|洛哌丁胺 A07DA|乳果糖 A06AD
聚乙二醇 A06AD|比沙可啶 A06AB|地衣芽孢杆菌 A07FA|双歧杆菌 A07FA|枯草杆菌 A07FA|氯雷他定 R06AX
地氯雷他定 R06AX|西替利嗪 R06AE|左西替利嗪 R06AE|依巴斯汀 R06AX|氯苯那敏 R06AB|孟鲁司特钠 R03DC
氨溴索 R05CB|溴己新 R05CB|乙酰半胱氨酸 R05CB|羧甲司坦 R05CB|右美沙芬 R05DA|喷托维林 R05DB
可待因 R05DA|氨茶碱 R03DA|茶碱 R03DA|沙丁胺醇 R03AC|特布他林 R03AC|布地奈德 R03BA
地塞米松 H02AB|泼尼松 H02AB|甲泼尼龙 H02AB|氢化可的松 H02AB|左甲状腺素钠 H03AA|甲巯咪唑 H03BB
丙硫氧嘧啶 H03BA|阿司匹林 B01AC|氯吡格雷 B01AC|替格瑞洛 B01AC|华法林钠 B01AA|利伐沙班 B01AF
达比加群酯 B01AE|单硝酸异山梨酯 C01DA|硝酸异山梨酯 C01DA|硝酸甘油 C01DA|曲美他嗪 C01EB
地高辛 C01AA|胺碘酮 C01BD|普罗帕酮 C01BC|维生素B1 A11DA|维生素B6 A11HA|维生素C A11GA
维生素B12 B03BA|叶酸 B03BB|硫酸亚铁 B03AA|琥珀酸亚铁 B03AA|碳酸钙 A12AA|葡萄糖酸钙 A12AA
氯化钾 A12BA|艾司唑仑 N05CD|阿普唑仑 N05BA|劳拉西泮 N05BA|地西泮 N05BA|佐匹克隆 N05CF
唑吡坦 N05CF|舍曲林 N06AB|帕罗西汀 N06AB|氟西汀 N06AB|艾司西酞普兰 N06AB|米氮平 N06AX
文拉法辛 N06AX|度洛西汀 N06AX|奥氮平 N05AH|喹硫平 N05AH|利培酮 N05AX|阿立哌唑 N05AX
卡马西平 N03AF|丙戊酸钠 N03AG|左乙拉西坦 N03AX|加巴喷丁 N03AX|普瑞巴林 N03AX|多奈哌齐 N06DA
美金刚 N06DX|倍他司汀 N07CA|氟桂利嗪 N07CA|尼莫地平 C08CA|银杏叶提取物 N06DX|坦索罗辛 G04CA
非那雄胺 G04CB|特拉唑嗪 G04CA|甲钴胺 B03BA|复方甘草 R05CA|重组人胰岛素 A10AB|精蛋白锌胰岛素 A10AC
甘精胰岛素 A10AE|门冬胰岛素 A10AB|硫酸庆大霉素 J01GB|阿米卡星 J01GB|长春西汀 N06BX
""".strip()
OTHER_TCM_STEMS = """
银翘解毒 A01AB|桑菊感冒 A01AB|感冒清热 A01AA|九味羌活 A01AA|荆防败毒 A01AA|柴胡 A01AB
蓝芩 A04CA|蒲地蓝消炎 A04CA|清开灵 A04CA|牛黄解毒 A04CA|黄连上清 A04CA|一清 A04CA
急支 A09AA|川贝枇杷 A09AA|橘红 A09AA|通宣理肺 A09AA|养阴清肺 A09AA|百合固金 A09AA
六味地黄 A12AA|杞菊地黄 A12AA|知柏地黄 A12AA|桂附地黄 A12AA|左归 A12AA|右归 A12AA
补中益气 A12BA|归脾 A12BA|八珍 A12BA|十全大补 A12BA|人参养荣 A12BA|生脉 A12BA
天王补心 A13AA|柏子养心 A13AA|枣仁安神 A13AA|血府逐瘀 A15AA|复方丹参 A15AA|丹七 A15AA
通心络 A15AA|脑心通 A15AA|银杏叶 A15AA|天麻钩藤 A15BA|松龄血脉康 A15BA|逍遥 A16AA
加味逍遥 A16AA|柴胡疏肝 A16AA|香砂养胃 A16BA|香砂六君 A16BA|保和 A17AA|健胃消食 A17AA
三金 A18AA|癃闭舒 A18AA|独活寄生 A19AA|风湿骨痛 A19AA|颈复康 G01AA|腰痛宁 G01AA
行气活血 A15AA|重楼解毒 A04CA|参苓白术 A12BA|参芪降糖 A12BA|长春藤止咳 A09AA|地榆槐角 C03AA
""".strip()


@dataclass(frozen=True, slots=True)
class Entry:
    hilist_code: str
    hilist_name: str
    med_chrgitm_type: str
    chrgitm_lv: str
    lmt_used_flag: str
    begndate: str
    enddate: str
    vali_flag: str

    def row(self) -> tuple[str, ...]:
        return tuple(getattr(self, c) for c in COLUMNS)

    def as_output(self) -> dict[str, str]:
        return {c: getattr(self, c) for c in COLUMNS}


def _split_form(name: str) -> tuple[str, str] | None:
    """(stem, form word) when the name ends with a known form word and has a stem before it."""
    for word, _ in FORMS:
        if name.endswith(word) and len(name) > len(word) and "(" not in name:
            return name[: -len(word)], word
    return None


def _formulary_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return [r for r in csv.DictReader(fh) if (r.get("code") or "").strip()]
    except OSError:
        return []


def _stems(text: str) -> list[tuple[str, str]]:
    out = []
    for part in text.replace("\n", "|").split("|"):
        stem, atc = part.split()
        out.append((stem, atc))
    return out


def _day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange((last - first).days + 1))


@functools.cache
def entries(path: str | None = None) -> tuple[Entry, ...]:
    """Every catalogue item, sorted by code (deterministic; cached per process)."""
    rng = random.Random(SEED)
    rows = _formulary_rows(Path(path) if path else FORMULARY_CSV)
    items: dict[str, Entry] = {}
    used_ids: set[str] = set()
    # (kind, atc, generic id, stem, forms to generate)
    stems: dict[str, tuple[str, str, str]] = {}
    for i, r in enumerate(rows):
        code, name = r["code"].strip(), (r.get("name") or "").strip()
        used_ids.add(code[6:10])
        split = _split_form(name)
        if split and split[0] not in stems:
            stems[split[0]] = (code[0], code[1:6], code[6:10])
        if i in MISSING_FORMULARY:
            continue
        lv = (r.get("class") or "01").strip()
        flag = "1" if (r.get("restrict_dx") or "").strip() else "0"
        begin = _day(rng, date(2019, 1, 1), date(2023, 12, 31)).isoformat()
        end = FORMULARY_ENDED if i in EXPIRED_FORMULARY else OPEN_END
        items[code] = Entry(code, name, chrgitm_type_for(code), lv, flag, begin, end, "1")
        if i in EXPIRED_FORMULARY:  # a successor from another maker, valid from the day after
            succ = code[:-5] + f"{(int(code[-5:]) + 50000) % 100000:05d}"
            items[succ] = Entry(succ, name, chrgitm_type_for(code), lv, flag, "2025-07-01", OPEN_END, "1")

    def new_id() -> str:
        while True:
            gid = f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randrange(1000):03d}"
            if gid not in used_ids:
                used_ids.add(gid)
                return gid

    for stem, atc in _stems(OTHER_STEMS):
        stems.setdefault(stem, ("X", atc, new_id()))
    for stem, atc in _stems(OTHER_TCM_STEMS):
        stems.setdefault(stem, ("Z", atc, new_id()))

    names: list[tuple[str, str, str, str, str]] = []  # (name, kind, atc, gid, form code)
    for stem, (kind, atc, gid) in sorted(stems.items()):
        pool = WESTERN_FORMS if kind == "X" else TCM_FORMS
        k = rng.randint(4, len(pool))
        for word in rng.sample(pool, k):
            name = f"{stem}{word}"
            names.append((name, kind, atc, gid, _FORM_CODE[word]))
    today_like = date(2026, 6, 30)
    n = 0
    while len(items) < SIZE:
        name, kind, atc, gid, form = names[n % len(names)]
        n += 1
        code = (f"{kind}{atc}{gid}{form}{rng.randrange(1, 40):02d}{rng.randrange(1, 60):02d}"
                f"{rng.randrange(100000):05d}")
        if code in items:
            continue
        lv = rng.choices(("01", "02", "03"), (40, 50, 10))[0]
        flag = "1" if rng.random() < 0.08 else "0"
        begin = _day(rng, date(2019, 1, 1), date(2025, 12, 31))
        end, valid = OPEN_END, "1"
        roll = rng.random()
        if roll < 0.04:
            end = _day(rng, begin + timedelta(days=90), today_like).isoformat()
        elif roll < 0.05:
            valid = "0"
        items[code] = Entry(code, name, chrgitm_type_for(code), lv, flag, begin.isoformat(), end, valid)
    return tuple(sorted(items.values(), key=lambda e: e.hilist_code))


@functools.cache
def _codes(path: str | None = None) -> list[str]:
    return [e.hilist_code for e in entries(path)]


@functools.cache
def zip_file(path: str | None = None) -> bytes:
    """The 1301 download: a zip with ``catalogue_<VERSION>.txt``, tab-separated, COLUMNS."""
    buf = io.StringIO()
    for e in entries(path):
        buf.write("\t".join(e.row()))
        buf.write("\n")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(f"catalogue_{VERSION}.txt", date_time=(2026, 11, 1, 0, 0, 0)),
                   buf.getvalue().encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def query(*, query_date: str = "", hilist_code: str = "", med_chrgitm_type: str = "",
          chrgitm_lv: str = "", path: str | None = None) -> list[Entry]:
    """1312's filter: code prefix, item type, class, and in effect on query_date (ISO date)."""
    all_ = entries(path)
    if hilist_code:
        codes = _codes(path)
        i = bisect_left(codes, hilist_code)
        j = bisect_left(codes, hilist_code + "\uffff", lo=i)
        pool: tuple[Entry, ...] | list[Entry] = all_[i:j]
    else:
        pool = all_
    return [e for e in pool
            if (not med_chrgitm_type or e.med_chrgitm_type == med_chrgitm_type)
            and (not chrgitm_lv or e.chrgitm_lv == chrgitm_lv)
            and (not query_date or (e.begndate <= query_date <= e.enddate))]
