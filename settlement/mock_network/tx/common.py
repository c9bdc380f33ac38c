"""What every handler needs: the context, the error type, field readers, person lookups."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from settlement.money import AmountError, to_fen

from ..catalogue import Item
from ..policy import Policy
from ..registry import INSUPLC_ADMDVS
from ..sql import Db, as_date, next_serial

Handler = Callable[["Ctx", dict], Any]
HANDLERS: dict[str, Handler] = {}
REGION = INSUPLC_ADMDVS


def handler(infno: str, *, needs_sign_in: bool = True, plain_sql: bool = False):
    """Register fn for infno. plain_sql: it uses only ctx.q/ctx.one/ctx.cur (never the ORM
    session ctx.s, nor a write's rowcount), so on PostgreSQL it may run in pipeline mode
    (app.Simulator._transaction)."""
    def deco(fn: Handler) -> Handler:
        fn.needs_sign_in = needs_sign_in  # type: ignore[attr-defined]
        fn.plain_sql = plain_sql  # type: ignore[attr-defined]
        HANDLERS[infno] = fn
        return fn
    return deco


@dataclass(frozen=True)
class RawFile:
    """A handler result sent as the raw HTTP body (9102's zip), not in the JSON envelope."""
    data: bytes


class TxError(Exception):
    """A business refusal: infcode -1 with this Chinese message."""

    def __init__(self, err_msg: str):
        super().__init__(err_msg)
        self.err_msg = err_msg


@dataclass
class Ctx:
    conn: Connection             # the request's connection, inside its transaction
    cur: Any                     # a DBAPI cursor on it: the hot path's plain SQL (sql.py)
    db: Db
    env: dict[str, Any]          # the request body (envelope)
    msgid: str
    infno: str                   # without a provincial letter
    fixmedins_code: str
    now: datetime                # Beijing time, naive
    policy: Policy
    catalogue: dict[str, Item]
    warnings: list[str] = field(default_factory=list)  # joined into warn_msg
    _s: Session | None = None

    @property
    def s(self) -> Session:
        """An ORM session in the request's transaction, for the less frequent transactions
        (made on first use; the frame flushes it before the message-log row is written)."""
        if self._s is None:
            self._s = Session(bind=self.conn, join_transaction_mode="rollback_only",
                              expire_on_commit=False)
        return self._s

    def q(self, sql: str, params: tuple | list = ()) -> Any:
        """Run one statement on the request's connection; returns the cursor."""
        self.cur.execute(self.db.q(sql), params)
        return self.cur

    def one(self, sql: str, params: tuple | list = ()) -> tuple | None:
        self.cur.execute(self.db.q(sql), params)
        return self.cur.fetchone()

    def serial(self, name: str) -> int:
        return next_serial(self.db, self.cur, name)

    def new_id(self, kind: str) -> str:
        """mdtrt_id / setl_id: region + date + kind digit + 9-digit serial (unique forever)."""
        digit = {"mdtrt": "1", "setl": "2", "sign": "3", "file": "4"}[kind]
        return f"{REGION}{self.now:%Y%m%d}{digit}{self.serial(kind):09d}"


def node(inp: Any, name: str) -> dict:
    if not isinstance(inp, dict) or not isinstance(inp.get(name), dict):
        raise TxError(f"输入参数缺少节点 {name}")
    return inp[name]


def text(d: dict, key: str, *, required: bool = True, default: str = "") -> str:
    v = d.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise TxError(f"缺少必填字段 {key}")
        return default
    if isinstance(v, bool) or not isinstance(v, (str, int, Decimal)):
        raise TxError(f"字段 {key} 格式错误")
    return str(v).strip()


def amount(d: dict, key: str) -> int:
    """A wire amount (number or string, two places) -> fen."""
    if key not in d or d[key] is None or d[key] == "":
        raise TxError(f"缺少必填金额 {key}")
    try:
        return to_fen(d[key])
    except (AmountError, ArithmeticError):
        raise TxError(f"金额 {key} 格式错误（应为最多两位小数）") from None


def decimal(d: dict, key: str, places: int, *, positive: bool = False) -> Decimal:
    v = d.get(key)
    if v is None or v == "" or isinstance(v, (bool, float)):
        raise TxError(f"缺少必填字段 {key}")
    try:
        x = Decimal(str(v).strip()) if not isinstance(v, Decimal) else v
        ok = x.is_finite() and x == x.quantize(Decimal(1).scaleb(-places))
    except (InvalidOperation, ArithmeticError):
        ok = False
    if not ok:
        raise TxError(f"字段 {key} 格式错误（最多 {places} 位小数）")
    if x < 0 or (positive and x == 0):
        raise TxError(f"字段 {key} 必须{'大于' if positive else '不小于'}0")
    return x


def timestamp(d: dict, key: str) -> datetime:
    v = text(d, key)
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(v, fmt)
        except ValueError:
            continue
    raise TxError(f"时间 {key} 格式错误，应为 yyyy-MM-dd HH:mm:ss")


def ymd(d: date | None) -> str | None:
    return d.strftime("%Y-%m-%d") if d else None


def ymdhms(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else None


def age_on(brdy: date, on: date) -> int:
    return on.year - brdy.year - ((on.month, on.day) < (brdy.month, brdy.day))


PERSON_COLS = ("psn_no, certno, card_no, card_sn, card_expiry_date, psn_name, gend, naty, brdy, "
               "insutype, psn_type, insu_state, insu_date, emp_name")


class PersonRow:
    """The registry fields of one person, read with PERSON_COLS (the person table is never
    written after seeding)."""
    __slots__ = (
        "brdy",
        "card_expiry_date",
        "card_no",
        "card_sn",
        "certno",
        "emp_name",
        "gend",
        "insu_date",
        "insu_state",
        "insutype",
        "naty",
        "psn_name",
        "psn_no",
        "psn_type",
    )

    def __init__(self, row: tuple):
        (self.psn_no, self.certno, self.card_no, self.card_sn, exp, self.psn_name, self.gend,
         self.naty, brdy, self.insutype, self.psn_type, self.insu_state, insu_date,
         self.emp_name) = row
        self.card_expiry_date = as_date(exp)
        self.brdy = as_date(brdy)
        self.insu_date = as_date(insu_date)


def lock_person(ctx: Ctx, psn_no: str) -> PersonRow | None:
    """The person's row, locked until the transaction ends (SELECT ... FOR UPDATE; SQLite has
    no FOR UPDATE and needs none: its writers are serialized). Every transaction that reads
    and then writes a person's account, yearly totals, visits or settlements takes this lock
    first, so two settlements of one person never both read the same balance; what it reads
    after the lock (in later statements) is what the previous holder committed."""
    lock = " FOR UPDATE" if ctx.db.postgres else ""
    row = ctx.one(f"SELECT {PERSON_COLS} FROM person WHERE psn_no = %s{lock}", (psn_no,))
    return PersonRow(row) if row else None


def person(ctx: Ctx, psn_no: str) -> PersonRow:
    """The insured person, also checking the envelope's insuplc_admdvs (required with psn_no).

    The person's row stays locked until the transaction ends: everything a transaction does
    to one person's visits, account and yearly totals happens one transaction at a time."""
    p = lock_person(ctx, psn_no)
    if p is None:
        raise TxError(f"人员编号 {psn_no} 不存在，请重新读卡获取人员信息")
    insuplc = str(ctx.env.get("insuplc_admdvs") or "").strip()
    if not insuplc:
        raise TxError("报文含人员编号时参保地医保区划 insuplc_admdvs 必填")
    if insuplc != REGION:
        raise TxError(f"参保地医保区划 {insuplc} 与该人员参保地 {REGION} 不符")
    return p


def diagnoses(ctx: Ctx, mdtrt_id: str) -> list[str]:
    rows = ctx.q("SELECT diag_code FROM diagnosis WHERE mdtrt_id = %s AND vali_flag = '1'",
                 (mdtrt_id,)).fetchall()
    return [r[0].upper() for r in rows]


def covered(restrict_dx: str | tuple[str, ...], codes: list[str]) -> bool:
    """A restricted item is paid by the fund only with a matching diagnosis (prefix match)."""
    prefixes = restrict_dx.split(";") if isinstance(restrict_dx, str) else restrict_dx
    prefixes = [p for p in prefixes if p]
    return not prefixes or any(c.startswith(p) for c in codes for p in prefixes)


def check_insured(p: PersonRow) -> None:
    if p.insu_state != "1":
        state = {"2": "暂停参保", "4": "终止参保"}.get(p.insu_state, "参保状态异常")
        raise TxError(f"该人员{state}，不能联网结算，请按自费处理或到医保经办机构咨询")
