"""A deterministic registry of insured villagers of Fengjing's four villages.

Generated from a fixed seed with its own random.Random, so every run, every test and every
training profile sees the same people. Everyone in it is fictitious.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache

from cardreader.idnumber import check_digit

DEFAULT_SEED = 20261130
REFERENCE_DATE = date(2026, 11, 30)  # ages in the registry are as of this day
INSUPLC_ADMDVS = "310116"

VILLAGES = (("新春村", 1712), ("新华村", 386), ("五一村", 341), ("贵泾村", 297))

# Simulator's psn_type codes (illustrative; the platform's code list is not public in full).
PSN_TYPES = {
    "11": "在职职工", "21": "退休人员",
    "31": "成年居民", "32": "学生儿童", "33": "老年居民",
}
INSU_STATES = {"1": "正常参保", "2": "暂停参保", "4": "终止参保"}

_SURNAMES = ("张王李陆沈顾朱徐陈钱周金吴蒋姚曹杨黄孙胡高蔡俞范冯"
             "倪褚许汤施马宋盛邵方郁戴夏唐潘")
_MALE_OLD = tuple("根林福宝金全生荣明富发才兴海祥德财良昌伯明龙雪水")
_FEMALE_OLD = tuple("英珍妹娣宝秀芳凤梅兰菊琴娟金彩莲仙月招根")
_MALE_NEW = tuple("伟军强磊勇杰涛斌浩宇俊鹏辉晨轩睿昊博文诚毅峰")
_FEMALE_NEW = tuple("丽敏静燕婷雯倩颖洁琳悦欣怡佳萍慧蕾晶雪彤雨涵")
_EMPLOYERS = ("上海枫泾工业区某服装厂", "金山区枫泾镇人民政府", "上海某电子科技有限公司",
              "枫泾古镇旅游发展有限公司", "上海某机械制造有限公司", "枫泾镇社区卫生服务中心")


@dataclass(frozen=True)
class Villager:
    psn_no: str
    certno: str              # 18-digit resident ID number, valid check digit
    psn_name: str
    gend: str                # "1" male / "2" female, consistent with certno[16]
    naty: str                # "01" Han
    brdy: date
    village: str
    insutype: str            # "310" employees (incl. retired) / "390" residents
    psn_type: str            # see PSN_TYPES
    balc_fen: int            # personal account; residents 0
    card_no: str             # "S" + 8 digits
    card_sn: str             # 32 uppercase hex
    card_issue_date: date
    card_expiry_date: date
    insu_state: str          # "1" normal, "2" suspended
    insu_date: date = date(2010, 1, 1)
    emp_name: str = ""
    chronic: tuple[str, ...] = ()  # ICD-10 of registered chronic conditions, e.g. ("I10",)
    card_locked: bool = False      # PIN blocked after wrong tries: the card answers 6983
    deductible_reached: bool = False  # year totals seeded: the fund pays from the first fen

    def age(self, on: date | None = None) -> int:
        return age_on(self.brdy, on or REFERENCE_DATE)

    def __repr__(self) -> str:  # keep names and ID numbers out of logs
        return f"Villager(psn_no={self.psn_no}, village={self.village}, insutype={self.insutype})"


def age_on(brdy: date, on: date) -> int:
    return on.year - brdy.year - ((on.month, on.day) < (brdy.month, brdy.day))


def _age(rng: random.Random) -> int:
    # A village of the outer suburbs: many old people, few young adults at home.
    bands = ((0, 17, 12), (18, 39, 16), (40, 59, 27), (60, 79, 33), (80, 99, 12))
    lo, hi, _ = rng.choices(bands, weights=[b[2] for b in bands])[0]
    return rng.randint(lo, hi)


def _name(rng: random.Random, male: bool, birth_year: int) -> str:
    old = birth_year < 1975
    pool = (_MALE_OLD if old else _MALE_NEW) if male else (_FEMALE_OLD if old else _FEMALE_NEW)
    given = rng.choice(pool) + (rng.choice(pool) if rng.random() < 0.8 else "")
    return rng.choice(_SURNAMES) + given


def _certno(rng: random.Random, brdy: date, male: bool, used: set[str]) -> str:
    # Born before the 1997 county-to-district change: mostly the old county code 310228.
    prefix = "310228" if brdy.year < 1997 and rng.random() < 0.85 else "310116"
    while True:
        seq = rng.randint(0, 99)
        sex = rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
        first17 = f"{prefix}{brdy:%Y%m%d}{seq:02d}{sex}"
        cert = first17 + check_digit(first17)
        if cert not in used:
            used.add(cert)
            return cert


def _villager(rng: random.Random, index: int, village: str, used: set[str]) -> Villager:
    age = _age(rng)
    brdy = REFERENCE_DATE - timedelta(days=age * 365 + rng.randint(1, 364))
    male = rng.random() < 0.48
    certno = _certno(rng, brdy, male, used)
    employee = 18 <= age and rng.random() < (0.22 if age >= 60 else 0.25)
    a = age_on(brdy, REFERENCE_DATE)
    if employee:
        insutype, psn_type = "310", ("21" if a >= 60 else "11")
        balc = rng.randint(0, 800_000)  # 0 .. 8,000 yuan
        emp = "" if psn_type == "21" else rng.choice(_EMPLOYERS)
    else:
        insutype, psn_type = "390", ("32" if a < 18 else "33" if a >= 60 else "31")
        balc, emp = 0, ""
    issue = date(2019, 1, 1) + timedelta(days=rng.randint(0, 6 * 365))
    expired = rng.random() < 0.01
    if expired:
        issue = date(2013, 1, 1) + timedelta(days=rng.randint(0, 700))
    chronic: tuple[str, ...] = ()
    if a >= 55:
        r = rng.random()
        chronic = ("I10",) if r < 0.35 else ("I10", "E11") if r < 0.45 else ("E11",) if r < 0.52 else ()
    return Villager(
        psn_no=f"31011600{index:08d}", certno=certno, psn_name=_name(rng, male, brdy.year),
        gend="1" if male else "2", naty="01", brdy=brdy, village=village, insutype=insutype,
        psn_type=psn_type, balc_fen=balc, card_no=f"S{rng.randint(10_000_000, 99_999_999)}",
        card_sn=f"{rng.getrandbits(128):032X}", card_issue_date=issue,
        card_expiry_date=issue.replace(year=issue.year + 10) if not (issue.month == 2 and issue.day == 29)
        else date(issue.year + 10, 2, 28),
        insu_state="2" if rng.random() < 0.01 else "1",
        insu_date=max(brdy, date(2008, 1, 1) + timedelta(days=rng.randint(0, 3000))),
        emp_name=emp, chronic=chronic)


def _default(used: set[str]) -> Villager:
    """The typical patient of domain.md: 83, female, hypertension, resident, Xinchun."""
    brdy = date(1943, 3, 8)
    first17 = f"310228{brdy:%Y%m%d}024"
    certno = first17 + check_digit(first17)
    used.add(certno)
    return Villager(
        psn_no="31011600" + "00000000", certno=certno, psn_name="陆秀英", gend="2",
        naty="01", brdy=brdy, village="新春村", insutype="390", psn_type="33", balc_fen=0,
        card_no="S31011683", card_sn="5F1C0A3E9B7D42E8A6C1D0F3B2E4A981",
        card_issue_date=date(2021, 6, 18), card_expiry_date=date(2031, 6, 18), insu_state="1",
        insu_date=date(2008, 1, 1), chronic=("I10",))


# Training states. Suspended insurance and expired cards come from the generator (about 1 %
# each); locked cards, zero balances and reached deductibles are laid over chosen villagers.
STATES = ("normal", "suspended", "expired", "locked", "chronic", "zero_balance",
          "deductible_reached")
PER_VILLAGE = 3  # of each laid-over state, in every village


def card_state(v: Villager, on: date | None = None) -> str:
    """What the physical card does in a reader: "locked" (PIN blocked: the reader's
    VirtualCard gets pin=card_pin(v), pin_tries=0), "expired" (past card_expiry_date on
    `on`, default today) or "normal"."""
    if v.card_locked:
        return "locked"
    if v.card_expiry_date < (on or date.today()):
        return "expired"
    return "normal"


def card_pin(v: Villager) -> str:
    """The six-digit PIN of the villager's (virtual) card: fixed, derived from psn_no."""
    return f"{int(hashlib.sha256(f'sim-pin|{v.psn_no}'.encode()).hexdigest(), 16) % 1_000_000:06d}"


def states(v: Villager, on: date | None = None) -> tuple[str, ...]:
    """The training states of a villager, in STATES order; ("normal",) when none applies."""
    found = []
    if v.insu_state != "1":
        found.append("suspended")
    cs = card_state(v, on)
    if cs != "normal":
        found.append(cs)
    if v.chronic:
        found.append("chronic")
    if v.insutype == "310" and v.balc_fen == 0:
        found.append("zero_balance")
    if v.deductible_reached:
        found.append("deductible_reached")
    return tuple(found) or ("normal",)


def _overlay(people: list[Villager], seed: int) -> None:
    """Lay the chosen states over plain villagers (normally insured, valid card), PER_VILLAGE
    of each in every village, none twice, never the default villager. Own Random: the
    generated registry underneath is unchanged."""
    rng = random.Random(seed * 7919 + 3)
    taken = {0}
    for village, _ in VILLAGES:
        plain = [i for i, v in enumerate(people)
                 if v.village == village and i not in taken and v.insu_state == "1"
                 and v.card_expiry_date > REFERENCE_DATE]
        employees = [i for i in plain if people[i].insutype == "310"]

        def pick(pool: list[int], n: int) -> list[int]:
            chosen = rng.sample([i for i in pool if i not in taken], n)
            taken.update(chosen)
            return chosen

        for i in pick(plain, PER_VILLAGE):
            people[i] = replace(people[i], card_locked=True)
        for i in pick(employees, PER_VILLAGE):
            people[i] = replace(people[i], balc_fen=0)
        # Deductible reached: residents and one employee (who then pays from the account).
        residents = [i for i in plain if people[i].insutype == "390"]
        for i in pick(residents, PER_VILLAGE - 1) + pick(employees, 1):
            people[i] = replace(people[i], deductible_reached=True)


@lru_cache(maxsize=4)
def _build(seed: int) -> tuple[Villager, ...]:
    rng = random.Random(seed)
    used: set[str] = set()
    people = [_default(used)]
    cards = {people[0].card_no}
    index = 1
    for village, count in VILLAGES:
        n = count - 1 if village == people[0].village else count
        for _ in range(n):
            v = _villager(rng, index, village, used)
            while v.card_no in cards:  # card numbers are unique
                v = _villager(rng, index, village, used)
            cards.add(v.card_no)
            people.append(v)
            index += 1
    _overlay(people, seed)
    return tuple(people)


def build_registry(seed: int = DEFAULT_SEED) -> list[Villager]:
    return list(_build(seed))


def default_villager() -> Villager:
    return _build(DEFAULT_SEED)[0]


@lru_cache(maxsize=4)
def _index(seed: int) -> tuple[dict[str, Villager], dict[str, Villager]]:
    people = _build(seed)
    return {v.card_no: v for v in people}, {v.certno: v for v in people}


def find_by_card(card_no: str, seed: int = DEFAULT_SEED) -> Villager | None:
    return _index(seed)[0].get(card_no)


def find_by_certno(certno: str, seed: int = DEFAULT_SEED) -> Villager | None:
    return _index(seed)[1].get(certno.strip().upper())


def select_villagers(*, village: str | None = None, state: str | None = None,
                     seed: int = DEFAULT_SEED, on: date | None = None) -> list[Villager]:
    """Registry order, filtered by village name and by one of STATES."""
    if state is not None and state not in STATES:
        raise ValueError(f"unknown state {state!r}; one of {', '.join(STATES)}")
    return [v for v in _build(seed) if (village is None or v.village == village)
            and (state is None or state in states(v, on))]
