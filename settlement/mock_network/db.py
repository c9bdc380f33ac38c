"""The simulator's own database: registry, visits, settlements, running totals, message log.

All amounts are integer fen. The message log row of a request is written in the same
transaction as its business effect, so a repeated msgid is answered from here even after
a restart.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "person"
    psn_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    certno: Mapped[str] = mapped_column(String(18), unique=True, index=True)
    card_no: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    card_sn: Mapped[str] = mapped_column(String(32))
    card_issue_date: Mapped[date] = mapped_column(Date)
    card_expiry_date: Mapped[date] = mapped_column(Date)
    psn_name: Mapped[str] = mapped_column(String(40))
    gend: Mapped[str] = mapped_column(String(1))
    naty: Mapped[str] = mapped_column(String(2))
    brdy: Mapped[date] = mapped_column(Date)
    village: Mapped[str] = mapped_column(String(20))
    insutype: Mapped[str] = mapped_column(String(3))
    psn_type: Mapped[str] = mapped_column(String(8))
    insu_state: Mapped[str] = mapped_column(String(1))
    insu_date: Mapped[date] = mapped_column(Date)
    emp_name: Mapped[str] = mapped_column(String(80), default="")
    chronic: Mapped[str] = mapped_column(String(40), default="")


class Account(Base):
    """Personal account (个人账户) balance; residents have 0."""
    __tablename__ = "account"
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"), primary_key=True)
    balc_fen: Mapped[int] = mapped_column(BigInteger)


class YearTotal(Base):
    __tablename__ = "year_total"
    psn_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedc_used_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    fund_paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class SignIn(Base):
    __tablename__ = "sign_in"
    sign_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String(20), index=True)
    opter_no: Mapped[str] = mapped_column(String(40))
    mac: Mapped[str] = mapped_column(String(40), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    sign_time: Mapped[datetime] = mapped_column(DateTime)
    signout_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Visit(Base):
    __tablename__ = "visit"
    mdtrt_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    psn_no: Mapped[str] = mapped_column(String(32), index=True)
    fixmedins_code: Mapped[str] = mapped_column(String(20))
    insutype: Mapped[str] = mapped_column(String(3))
    ipt_otp_no: Mapped[str] = mapped_column(String(40))
    begntime: Mapped[datetime] = mapped_column(DateTime)
    mdtrt_cert_type: Mapped[str] = mapped_column(String(2))
    med_type: Mapped[str] = mapped_column(String(4), default="11")
    dr_name: Mapped[str] = mapped_column(String(40), default="")
    dept_name: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(12), default="registered")  # registered/cancelled/settled
    msgid: Mapped[str] = mapped_column(String(30), default="")  # the 2201 that made it (for 2601)
    __table_args__ = (UniqueConstraint("fixmedins_code", "ipt_otp_no"),)


class Diagnosis(Base):
    __tablename__ = "diagnosis"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mdtrt_id: Mapped[str] = mapped_column(ForeignKey("visit.mdtrt_id"), index=True)
    diag_type: Mapped[str] = mapped_column(String(4))
    diag_srt_no: Mapped[int] = mapped_column(Integer)
    diag_code: Mapped[str] = mapped_column(String(20))
    diag_name: Mapped[str] = mapped_column(String(100))
    vali_flag: Mapped[str] = mapped_column(String(1), default="1")


class FeeLine(Base):
    __tablename__ = "fee_line"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mdtrt_id: Mapped[str] = mapped_column(ForeignKey("visit.mdtrt_id"), index=True)
    feedetl_sn: Mapped[str] = mapped_column(String(40))
    chrg_bchno: Mapped[str] = mapped_column(String(40))
    med_list_codg: Mapped[str] = mapped_column(String(50))
    medins_list_codg: Mapped[str] = mapped_column(String(50), default="")
    cnt: Mapped[str] = mapped_column(String(24))    # exact decimal text
    pric: Mapped[str] = mapped_column(String(24))   # exact decimal text, yuan
    sumamt_fen: Mapped[int] = mapped_column(BigInteger)
    chrgitm_lv: Mapped[str | None] = mapped_column(String(2), nullable=True)  # None = not listed
    ceiling_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    consultation: Mapped[bool] = mapped_column(Boolean, default=False)
    restrict_dx: Mapped[str] = mapped_column(String(200), default="")  # ";"-joined ICD-10 prefixes
    setl_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    msgid: Mapped[str] = mapped_column(String(30), default="")  # the 2204 that sent it (for 2601)
    __table_args__ = (UniqueConstraint("mdtrt_id", "feedetl_sn"),)


AMOUNTS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
           "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "fund_pay_sumamt", "psn_part_amt",
           "acct_pay", "psn_cash_pay", "hosp_part_amt")


class Settlement(Base):
    __tablename__ = "settlement"
    setl_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    mdtrt_id: Mapped[str] = mapped_column(String(40), index=True)
    psn_no: Mapped[str] = mapped_column(String(32), index=True)
    medins_setl_id: Mapped[str] = mapped_column(String(30), index=True)  # msgid of the 2207/2208
    fixmedins_code: Mapped[str] = mapped_column(String(20), index=True)
    insutype: Mapped[str] = mapped_column(String(3))
    setl_time: Mapped[datetime] = mapped_column(DateTime)
    year: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8), default="settle")     # settle / revoke
    status: Mapped[str] = mapped_column(String(12), default="normal")  # normal / revoked / reversed
    orig_setl_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    medfee_sumamt: Mapped[int] = mapped_column(BigInteger)
    fulamt_ownpay_amt: Mapped[int] = mapped_column(BigInteger)
    overlmt_selfpay: Mapped[int] = mapped_column(BigInteger)
    preselfpay_amt: Mapped[int] = mapped_column(BigInteger)
    inscp_scp_amt: Mapped[int] = mapped_column(BigInteger)
    act_pay_dedc: Mapped[int] = mapped_column(BigInteger)
    hifp_pay: Mapped[int] = mapped_column(BigInteger)
    fund_pay_sumamt: Mapped[int] = mapped_column(BigInteger)
    psn_part_amt: Mapped[int] = mapped_column(BigInteger)
    acct_pay: Mapped[int] = mapped_column(BigInteger)
    psn_cash_pay: Mapped[int] = mapped_column(BigInteger)
    hosp_part_amt: Mapped[int] = mapped_column(BigInteger)
    balc: Mapped[int] = mapped_column(BigInteger)
    ytd_fund_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # capped fund part, for undo
    output_json: Mapped[bytes] = mapped_column(LargeBinary)       # the setlinfo as sent


class MessageLog(Base):
    """Idempotency: the first answer to each msgid, byte for byte."""
    __tablename__ = "message_log"
    msgid: Mapped[str] = mapped_column(String(30), primary_key=True)
    infno: Mapped[str] = mapped_column(String(8))
    fixmedins_code: Mapped[str] = mapped_column(String(20))
    body_hash: Mapped[str] = mapped_column(String(64))
    infcode: Mapped[int] = mapped_column(Integer)
    response: Mapped[bytes] = mapped_column(LargeBinary)
    received: Mapped[datetime] = mapped_column(DateTime)
    reversed: Mapped[bool] = mapped_column(Boolean, default=False)


class ReversedUnseen(Base):
    """A 2601 for a msgid we never saw: the late original must then be refused."""
    __tablename__ = "reversed_unseen"
    msgid: Mapped[str] = mapped_column(String(30), primary_key=True)
    oinfno: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(DateTime)


class StoredFile(Base):
    """Files of the 9101/9102 exchange: uploaded detail files and reconciliation results."""
    __tablename__ = "stored_file"
    file_qury_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    fixmedins_code: Mapped[str] = mapped_column(String(20), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[datetime] = mapped_column(DateTime)


class Nonce(Base):
    __tablename__ = "nonce"
    paas_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[int] = mapped_column(Integer, index=True)  # unix seconds


class Counter(Base):
    __tablename__ = "counter"
    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


SEQUENCES = ("mdtrt", "setl", "sign", "file")  # PostgreSQL: one sequence per id kind (sql.next_serial)


def is_postgres(bind) -> bool:
    return bind.dialect.name == "postgresql"


def lock_key(s: Session, key: str) -> None:
    """Serialize transactions on one key (a msgid) until commit or rollback.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to do, its writers are
    serialized by the simulator's lock and BEGIN IMMEDIATE."""
    if is_postgres(s.get_bind()):
        s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


def lock_person(s: Session, psn_no: str) -> Person | None:
    """The person's row, locked until the transaction ends (SELECT ... FOR UPDATE; SQLite
    ignores FOR UPDATE and needs no row lock). Every transaction that reads and then writes a
    person's account, yearly totals, visits or settlements takes this lock first, so two
    settlements of one person never both read the same balance."""
    return s.get(Person, psn_no, with_for_update=True, populate_existing=True)


def normalize_url(url: str) -> str:
    """postgresql:// and postgres:// mean psycopg 3 (the driver the project installs)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str | None = None, *, durable: bool = True) -> Engine:
    """An engine with the schema created. SQLite gets WAL and full fsync: a settlement the
    simulator confirmed must survive its crash; its transactions begin IMMEDIATE (the write
    lock is taken at BEGIN, so a read-then-write transaction never fails on the upgrade).
    PostgreSQL gets a connection pool sized for the server's worker threads and one sequence
    per id kind.

    durable=False (SQLite): commits do not wait for fsync (synchronous=NORMAL; WAL still
    survives a crash of the process, only a power cut can take the last commits). For the
    gateway's nonces, which need not outlive the skew window."""
    url = normalize_url(url or "sqlite:///insurer_sim.sqlite3")
    kwargs: dict = {}
    sqlite = url.startswith("sqlite")
    if sqlite:
        kwargs["connect_args"] = {"check_same_thread": False}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
    elif url.startswith("postgresql"):
        kwargs.update(pool_size=16, max_overflow=16, pool_pre_ping=True)
    engine = create_engine(url, **kwargs)
    if sqlite:
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    Base.metadata.create_all(engine)
    if is_postgres(engine):
        with engine.begin() as conn:
            for name in SEQUENCES:
                conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS sim_serial_{name}"))
                # A database that counted in the counter table before: continue after it.
                old = conn.execute(select(Counter.value).where(Counter.name == name)).scalar()
                if old:
                    conn.execute(text(f"SELECT setval('sim_serial_{name}', "
                                      f"GREATEST(:v, (SELECT last_value FROM sim_serial_{name})))"),
                                 {"v": old})
    return engine


def seed_registry(engine: Engine, villagers) -> int:
    """Insert the villagers not yet present; return how many were added. Idempotent."""
    with Session(engine) as s, s.begin():
        have = set(s.scalars(select(Person.psn_no)))
        added = 0
        accounts = []
        for v in villagers:
            if v.psn_no in have:
                continue
            s.add(Person(psn_no=v.psn_no, certno=v.certno, card_no=v.card_no, card_sn=v.card_sn,
                         card_issue_date=v.card_issue_date, card_expiry_date=v.card_expiry_date,
                         psn_name=v.psn_name, gend=v.gend, naty=v.naty, brdy=v.brdy,
                         village=v.village, insutype=v.insutype, psn_type=v.psn_type,
                         insu_state=v.insu_state, insu_date=v.insu_date, emp_name=v.emp_name,
                         chronic=",".join(v.chronic)))
            accounts.append(Account(psn_no=v.psn_no, balc_fen=v.balc_fen))
            added += 1
        s.flush()  # persons before their accounts (foreign key)
        s.add_all(accounts)
    return added


def seed_year_totals(engine: Engine, villagers, policy, year: int) -> int:
    """For villagers marked deductible_reached: this year's deductible counted as used, so the
    fund pays from the first fen. Only where the person has no total for `year` yet (a new
    year starts them at the deductible again). Returns how many rows were added."""
    added = 0
    with Session(engine) as s, s.begin():
        for v in villagers:
            if not v.deductible_reached or s.get(YearTotal, (v.psn_no, year)) is not None:
                continue
            ip = policy.for_insutype(v.insutype)
            # The larger deductible of the bands the person is in during the year (a birthday
            # can move them from one band to another).
            dedc = max(ip.band_for(v.age(date(year, m, d))).deductible_fen
                       for m, d in ((1, 1), (12, 31)))
            s.add(YearTotal(psn_no=v.psn_no, year=year, dedc_used_fen=dedc, fund_paid_fen=0))
            added += 1
    return added
