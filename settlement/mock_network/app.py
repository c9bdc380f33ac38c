"""The simulator's HTTP endpoint: gateway check, envelope check, idempotency, dispatch.

One POST per transaction at SERVICE_PATH (protocol.md §1). The first answer to every msgid
is stored in the same database transaction as the business effect, so a repeated msgid gets
that answer byte for byte, also after a restart.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from settlement import wire
from settlement.gateway import (
    DEFAULT_PAAS_ID,
    DEFAULT_PAAS_TOKEN,
    MAX_SKEW_SECONDS,
    GatewayRefusal,
    check_headers,
)

from . import catalogue as catalogue_mod
from . import sql
from .asgi import ServiceApp
from .db import is_postgres, make_engine, seed_registry, seed_year_totals
from .dbthreads import DbThreads
from .faults import DROP, FaultPlan
from .policy import Policy, load_policy
from .registry import DEFAULT_SEED, INSUPLC_ADMDVS, build_registry
from .tx import HANDLERS, Ctx, RawFile, TxError

log = logging.getLogger("settlement.mock_network")

BEIJING = timezone(timedelta(hours=8))
INFNO_RE = re.compile(r"^(\d{4})[A-Z]?$")
JSON = "application/json; charset=utf-8"
JSON_B = JSON.encode()
ZIP = "application/zip"


def media_type(body: bytes) -> str:
    """A stored answer is either the JSON envelope or a zip file (9102)."""
    return ZIP if body[:4] == b"PK\x03\x04" else JSON


def beijing_now() -> datetime:
    return datetime.now(BEIJING).replace(tzinfo=None)


def body_hash(obj: Any) -> str:
    """Hash of the parsed body with keys sorted: whitespace and key order do not matter,
    every value does. (The bytes hashed are wire.dumps of the key-sorted body, as stored
    by earlier versions, written without building a sorted copy.)"""
    return hashlib.sha256(wire.dumps(obj, sort_keys=True)).hexdigest()


class Simulator:
    """Everything but HTTP: usable directly from tests and from the ASGI route."""

    def __init__(self, engine: Engine, policy: Policy, items: dict, *,
                 tokens: dict[str, str] | None = None,
                 clock: Callable[[], datetime] = beijing_now,
                 faults: FaultPlan | None = None, nonce_engine: Engine | None = None):
        self.engine = engine
        self.nonce_engine = nonce_engine or engine
        self.policy = policy
        self.catalogue = items
        self.tokens = tokens or {DEFAULT_PAAS_ID: DEFAULT_PAAS_TOKEN}
        self.clock = clock
        self.faults = faults or FaultPlan()
        self._serial = itertools.count(1)
        self.postgres = is_postgres(engine)
        self.db = sql.Db(self.postgres)
        self._lock = threading.Lock()  # SQLite only: one transaction at a time
        self._nonce_calls = 0
        self._local = threading.local()  # PostgreSQL: each worker thread's connections
        self._conns: list = []
        self._conns_lock = threading.Lock()
        self.main = self.main_cur = self.nonce_cur = None  # SQLite: the process's connections
        # The threads that run the blocking database work. Bounded: each holds its own
        # PostgreSQL connections (two), and a transaction waiting for a lock holds a thread.
        self.threads = DbThreads(16)
        dbapi = engine.dialect.loaded_dbapi
        self._conflicts = (IntegrityError, OperationalError, dbapi.IntegrityError,
                           dbapi.OperationalError)
        self._data_errors = (DataError, dbapi.DataError)
        self._db_errors = (DBAPIError, dbapi.Error)

    def close(self) -> None:
        """Close every database connection (before a fork, at shutdown)."""
        self.threads.shutdown()
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(Exception):
                c.close()
        self._local = threading.local()
        self.main = self.main_cur = self.nonce_cur = None
        self.engine.dispose()
        if self.nonce_engine is not self.engine:
            self.nonce_engine.dispose()

    # ---- responses ------------------------------------------------------------------
    def respond(self, infcode: int, output: Any, received: datetime, err_msg: str = "",
                warn_msg: str = "") -> bytes:
        now = self.clock()
        stamp = f"{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}"
        return wire.dumps({
            "infcode": infcode,
            "inf_refmsgid": f"{INSUPLC_ADMDVS}{stamp}{next(self._serial) % 10_000_000:07d}",
            "refmsg_time": f"{received:%Y%m%d%H%M%S}{received.microsecond // 1000:03d}",
            "respond_time": stamp,
            "err_msg": err_msg,
            "warn_msg": warn_msg,
            "output": output,
        })

    # ---- connections ----------------------------------------------------------------
    def _main_conn(self) -> Connection:
        """The connection a request's transaction runs on. PostgreSQL: one per worker thread,
        kept (no pool checkout, no ping per request); SQLite: one for the process, used under
        the process lock."""
        holder = self._local if self.postgres else self
        c = getattr(holder, "main", None)
        if c is None or c.closed or c.invalidated:
            c = self.engine.connect()
            holder.main = c
            holder.main_cur = c.connection.driver_connection.cursor()
            with self._conns_lock:
                self._conns.append(c)
        return c

    def _nonce_cur(self):
        """A cursor on an autocommit connection for the gateway's nonces. PostgreSQL: its
        commits do not wait for the disk (synchronous_commit off for this session); SQLite:
        the nonce engine's connection (synchronous=NORMAL)."""
        holder = self._local if self.postgres else self
        cur = getattr(holder, "nonce_cur", None)
        if cur is None:
            if self.postgres:
                d = self.nonce_engine.dialect
                cargs, cparams = d.create_connect_args(self.nonce_engine.url)
                raw = d.loaded_dbapi.connect(*cargs, **cparams)
                raw.autocommit = True
                raw.execute("SET synchronous_commit TO OFF")
            else:
                fairy = self.nonce_engine.raw_connection()  # isolation_level None: autocommit
                raw = fairy.driver_connection
                with self._conns_lock:
                    self._conns.append(fairy)
            cur = raw.cursor()
            holder.nonce_cur = cur
            with self._conns_lock:
                self._conns.append(raw)
        return cur

    def _drop_conns(self) -> None:
        """This thread's connections are broken: the next request makes new ones."""
        holder = self._local if self.postgres else self
        for name in ("main", "main_cur", "nonce_cur", "pipeline", "pipeline_cm"):
            with contextlib.suppress(Exception):
                obj = getattr(holder, name, None)
                if name == "main" and obj is not None:
                    obj.invalidate()
            setattr(holder, name, None)

    # ---- gateway --------------------------------------------------------------------
    def seen_nonce(self, paas_id: str, nonce: str) -> bool:
        """Record the nonce; True if it was already used. Kept in the DB across restarts.

        Its commit does not wait for the disk (see _nonce_cur): a power cut may forget the
        last moment's nonces, a crash of the simulator forgets none. One statement: the
        insert that does nothing when the nonce is there already."""
        now = int(time.time())
        self._nonce_calls += 1
        with self._serialized():
            cur = self._nonce_cur()
            q = self.db.q
            try:
                if self._nonce_calls % 200 == 0:  # a nonce older than the skew window is harmless
                    cur.execute(q("DELETE FROM nonce WHERE seen_at < %s"),
                                (now - 2 * MAX_SKEW_SECONDS,))
                cur.execute(q("INSERT INTO nonce (paas_id, nonce, seen_at) VALUES (%s, %s, %s) "
                              "ON CONFLICT DO NOTHING"), (paas_id, nonce[:128], now))
            except Exception:
                self._drop_conns()
                raise
            return cur.rowcount == 0

    def check_gateway(self, headers: dict[str, str]) -> None:
        check_headers(headers, self.tokens, seen_nonce=self.seen_nonce)

    def _serialized(self):
        """SQLite: one writer at a time in this process (its file lock would make the others
        spin on busy_timeout). PostgreSQL: no global lock; row and advisory locks do it."""
        return contextlib.nullcontext() if self.postgres else self._lock

    async def run(self, fn, *args):
        """Run blocking database work on the simulator's threads, never on the event loop."""
        return await self.threads.run(fn, *args)

    # ---- one request ----------------------------------------------------------------
    def serve(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes, bytes, list]:
        """One call without a fault: gateway check, then the transaction. Returns HTTP
        status, body, content type and extra headers (asgi.py sends them)."""
        try:
            self.check_gateway(headers)
        except GatewayRefusal as exc:
            return (401, self.respond(-1, None, self.clock(), exc.message), JSON_B,
                    [(b"x-tif-refusal", exc.code.encode())])
        result = self.handle(body)
        if result is INTERNAL_ERROR or result is DROP:
            return (500, self.respond(-1, None, self.clock(), "医保中心内部错误，请稍后用同一报文重试"),
                    JSON_B, [])
        return 200, result, media_type(result).encode(), []

    def handle(self, body: bytes, *, fault: str | None = None) -> bytes | object:
        """Answer one (already gateway-checked) body. Returns the response bytes, DROP when a
        fault says the connection must be dropped, or INTERNAL_ERROR. Blocking: the ASGI
        route runs it in a worker thread."""
        with self._serialized():
            result = self._handle(body, fault)
        if fault in ("drop_before_commit", "commit_then_drop") and result is not INTERNAL_ERROR:
            # Whatever the answer was (new, replayed or a refusal), it is lost on the way.
            log.warning("fault: %s, connection dropped", fault)
            return DROP
        return result

    def _handle(self, body: bytes, fault: str | None) -> bytes | object:
        received = self.clock()
        try:
            env = wire.loads(body)
        except wire.WireError as exc:
            log.info("refused malformed body: %s", exc)
            return self.respond(-1, None, received, "报文格式错误：不是合法的JSON")
        if not isinstance(env, dict):
            return self.respond(-1, None, received, "报文格式错误：应为JSON对象")
        infno_raw = env.get("infno")
        m = INFNO_RE.match(infno_raw) if isinstance(infno_raw, str) else None
        if m is None:
            return self.respond(-1, None, received, "交易编号 infno 缺失或格式错误")
        infno = m.group(1)
        msgid = env.get("msgid")
        if not isinstance(msgid, str) or not wire.MSGID_RE.match(msgid):
            return self.respond(-1, None, received,
                                "报文ID msgid 格式错误：应为30位（机构编号12位+时间14位+流水号4位）")
        fixmedins = env.get("fixmedins_code")
        if not isinstance(fixmedins, str) or len(fixmedins) != 12:
            return self.respond(-1, None, received, "定点医药机构编号 fixmedins_code 缺失或格式错误")
        if msgid[:12] != fixmedins:
            return self.respond(-1, None, received, "报文ID前12位应为本机构编号 fixmedins_code")
        req = _Request(env, msgid, infno, infno_raw, fixmedins, body_hash(env), received)
        for attempt in range(1, RETRIES + 1):
            try:
                resp = self._transaction(req, fault)
            except _Dropped:
                return DROP
            except self._conflicts as exc:
                # PostgreSQL: a deadlock, a serialization failure or a unique key taken by a
                # concurrent transaction. Everything was rolled back: do it again.
                if attempt < RETRIES and _retryable(exc):
                    log.info("%s %s: concurrent conflict, retried (%s)", infno, msgid,
                             type(getattr(exc, "orig", exc)).__name__)
                    continue
                log.exception("%s %s failed inside the simulator", infno, msgid)
                return INTERNAL_ERROR
            except Exception:
                # A simulator bug is not an answer: rolled back, not remembered, retry-able.
                log.exception("%s %s failed inside the simulator", infno, msgid)
                return INTERNAL_ERROR
            return resp
        return INTERNAL_ERROR  # not reached

    def _transaction(self, req: _Request, fault: str | None) -> bytes:
        """One database transaction: the msgid's lock, the replay check, the business effect
        and the message-log row, committed together. A refusal rolls the effect back and
        stores only its answer (in a new transaction under the msgid's lock again).

        PostgreSQL, a transaction written in plain SQL (handler(..., plain_sql=True)): in
        psycopg's pipeline mode, so statements whose result is not read go out together with
        the next one that is read (BEGIN, the lock and the replay check in one round trip;
        a settlement's writes, the log row and COMMIT in another). The connection stays in
        pipeline mode between such calls (leaving it costs a round trip of its own) and leaves
        it before a transaction that uses the ORM."""
        conn = self._main_conn()
        holder = self._local if self.postgres else self
        cur = holder.main_cur
        if self.postgres:
            self._pipeline_mode(cur, getattr(HANDLERS.get(req.infno), "plain_sql", False))
        return self._transaction_on(conn, cur, req, fault)

    def _pipeline_mode(self, cur, on: bool) -> None:
        loc = self._local
        cm = getattr(loc, "pipeline_cm", None)
        if on and cm is None:
            cm = cur.connection.pipeline()
            loc.pipeline = cm.__enter__()
            loc.pipeline_cm = cm
        elif not on and cm is not None:
            loc.pipeline_cm = loc.pipeline = None
            cm.__exit__(None, None, None)

    def _transaction_on(self, conn: Connection, cur, req: _Request, fault: str | None) -> bytes:
        trans = conn.begin()
        try:
            try:
                resp = self._run(conn, cur, req, fault)
                if isinstance(resp, _Refused):  # refused after the handler ran: keep nothing of it
                    self._rollback(trans, cur)
                    if fault == "drop_before_commit":
                        raise _Dropped()  # the refusal is lost with the request: nothing remembered
                    trans = conn.begin()
                    resp = self._store_refusal(cur, req, resp.err_msg)
                if fault == "drop_before_commit":
                    raise _Dropped()
                trans.commit()
                return resp
            except self._data_errors:
                # Pipeline mode: a value PostgreSQL refuses shows at a later statement or at
                # COMMIT, not at its own. The same refusal as when the handler meets it.
                self._rollback(trans, cur)
                log.info("%s %s refused: a value too long or out of range", req.infno, req.msgid)
                if fault == "drop_before_commit":
                    raise _Dropped() from None
                trans = conn.begin()
                resp = self._store_refusal(cur, req, DATA_REFUSAL)
                trans.commit()
                return resp
        except BaseException:
            try:
                self._rollback(trans, cur)
            except Exception:  # noqa: BLE001 - the connection is gone: make a new one next time
                self._drop_conns()
            else:
                if getattr(cur.connection, "closed", False):  # psycopg: lost the server
                    self._drop_conns()
            raise

    def _rollback(self, trans, cur) -> None:
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is not None:
            # After an error the statements queued behind it answer "pipeline aborted" at the
            # next sync; take those answers first, then the rollback goes through.
            for _ in range(3):
                try:
                    pipeline.sync()
                    break
                except self._db_errors:
                    continue
        trans.rollback()  # closes SQLAlchemy's record of it (a no-op for one already closed)
        cur.connection.rollback()  # and the driver's: a failed COMMIT leaves it open

    def _prelude(self, cur, req: _Request) -> tuple:
        """Under the msgid's lock: the stored answer, the reversal tombstone, the sign-in."""
        db = self.db
        sql.lock_key(db, cur, req.msgid)  # a concurrent copy of this msgid waits here, then replays
        sign_no = req.env.get("sign_no")
        cur.execute(db.q(_PRELUDE), (req.msgid, sign_no if isinstance(sign_no, str) else "",
                                     req.msgid))
        return cur.fetchone()

    def _replay(self, req: _Request, prior_hash: str, prior_resp: bytes) -> bytes:
        if prior_hash == req.h:
            log.info("msgid %s repeated: first answer replayed", req.msgid)
            return bytes(prior_resp)
        log.warning("msgid %s repeated with a different body: refused", req.msgid)
        return self.respond(-1, None, req.received, "报文ID重复但内容不同")

    def _run(self, conn: Connection, cur, req: _Request, fault: str | None) -> bytes | _Refused:
        """The answer (with its log row written), or _Refused after the handler ran (its
        effects must be rolled back before the refusal is stored)."""
        prior_hash, prior_resp, tombstone, sign_inst, signed_out = self._prelude(cur, req)
        if prior_hash is not None:
            return self._replay(req, prior_hash, prior_resp)
        err_msg = None
        ran = False
        if tombstone is not None:
            err_msg = "该报文已被冲正（2601），不予处理"
        else:
            fn = HANDLERS.get(req.infno)
            ctx = None
            try:
                if fn is None:
                    raise TxError(f"不支持的交易编号 {req.infno_raw}")
                if getattr(fn, "needs_sign_in", True):
                    _check_sign_in(req.env, req.fixmedins, sign_inst, signed_out)
                ctx = Ctx(conn=conn, cur=cur, db=self.db, env=req.env, msgid=req.msgid,
                          infno=req.infno, fixmedins_code=req.fixmedins, now=req.received,
                          policy=self.policy, catalogue=self.catalogue)
                ran = True
                output = fn(ctx, req.env.get("input"))
                if isinstance(output, RawFile):
                    resp = output.data  # 9102: the file itself is the answer
                else:
                    resp = self.respond(0, output, req.received, warn_msg="；".join(ctx.warnings))
                if ctx._s is not None:
                    ctx._s.flush()
            except TxError as exc:
                log.info("%s %s refused: %s", req.infno, req.msgid, exc.err_msg)
                err_msg = exc.err_msg
            except self._data_errors:
                # PostgreSQL checks lengths and ranges SQLite lets through.
                log.info("%s %s refused: a value too long or out of range", req.infno, req.msgid)
                err_msg = DATA_REFUSAL
            finally:
                if ctx is not None and ctx._s is not None:
                    ctx._s.close()
        if err_msg is not None:
            if ran:
                return _Refused(err_msg)
            if fault == "drop_before_commit":
                raise _Dropped()  # the refusal is lost with the request: nothing remembered
            resp = self.respond(-1, None, req.received, err_msg)
        self._log(cur, req, 0 if err_msg is None else -1, resp)
        if err_msg is None:
            log.info("%s %s ok", req.infno, req.msgid)
        return resp

    def _store_refusal(self, cur, req: _Request, err_msg: str) -> bytes:
        """A refusal is an answer too: a retry of the same msgid must get it again. Stored
        under the msgid's lock; a copy that was answered meanwhile wins."""
        prior_hash, prior_resp, *_ = self._prelude(cur, req)
        if prior_hash is not None:
            return self._replay(req, prior_hash, prior_resp)
        resp = self.respond(-1, None, req.received, err_msg)
        self._log(cur, req, -1, resp)
        return resp

    def _log(self, cur, req: _Request, infcode: int, resp: bytes) -> None:
        db = self.db
        cur.execute(db.q(_LOG_INSERT), (req.msgid, req.infno, req.fixmedins, req.h, infcode, resp,
                                        db.dt(req.received), db.boolean(False)))


_PRELUDE = ("SELECT m.body_hash, m.response, (SELECT 1 FROM reversed_unseen WHERE msgid = %s), "
            "s.fixmedins_code, s.signout_time "
            "FROM (SELECT 1 AS one) AS x "
            "LEFT JOIN sign_in s ON s.sign_no = %s "
            "LEFT JOIN message_log m ON m.msgid = %s")
_LOG_INSERT = ("INSERT INTO message_log (msgid, infno, fixmedins_code, body_hash, infcode, response, "
               "received, reversed) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")


def _check_sign_in(env: dict, fixmedins: str, sign_inst: str | None, signed_out) -> None:
    sign_no = env.get("sign_no")
    if not isinstance(sign_no, str) or not sign_no.strip():
        raise TxError("缺少签到编号 sign_no，请先签到（9001）")
    if sign_inst is None or sign_inst != fixmedins:
        raise TxError("签到编号 sign_no 无效，请重新签到（9001）")
    if signed_out is not None:
        raise TxError("该签到编号已签退，请重新签到（9001）")


class _Dropped(Exception):
    pass


@dataclass(frozen=True)
class _Refused:
    err_msg: str


RETRIES = 5
DATA_REFUSAL = "报文字段超长或数值超出范围"


@dataclass(frozen=True)
class _Request:
    env: dict
    msgid: str
    infno: str
    infno_raw: str
    fixmedins: str
    h: str
    received: datetime


def _retryable(exc: Exception) -> bool:
    """Unique-key races, deadlocks (40P01) and serialization failures (40001); SQLite's
    "database is locked" when several worker processes wait longer than busy_timeout.
    `exc` is SQLAlchemy's wrapper (ORM code) or the driver's own exception (plain SQL)."""
    orig = getattr(exc, "orig", None) or exc
    if "database is locked" in str(exc):
        return True
    # DB-API: IntegrityError in both drivers (psycopg's UniqueViolation is a subclass).
    if any(c.__name__ == "IntegrityError" for c in type(orig).__mro__):
        return True
    return getattr(orig, "sqlstate", None) in ("40P01", "40001")


INTERNAL_ERROR = object()  # handle() result: answer HTTP 500, nothing stored


def create_app(db_url: str | None = None, *, engine: Engine | None = None,
               policy: Policy | None = None, policy_path: str | None = None,
               catalogue_path: str | None = None, seed: int = DEFAULT_SEED,
               tokens: dict[str, str] | None = None,
               clock: Callable[[], datetime] = beijing_now,
               faults: FaultPlan | None = None, control: bool = False) -> ServiceApp:
    nonce_engine = None
    if engine is None:
        engine = make_engine(db_url)
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            nonce_engine = make_engine(db_url, durable=False)
    policy = policy or load_policy(policy_path)
    villagers = build_registry(seed)
    seed_registry(engine, villagers)
    seed_year_totals(engine, villagers, policy, clock().year)
    sim = Simulator(engine, policy, catalogue_mod.catalogue(policy, catalogue_path),
                    tokens=tokens, clock=clock, faults=faults, nonce_engine=nonce_engine)

    async def call_service(request: Request) -> Response:
        from .faults import serve_with_faults
        return await serve_with_faults(sim, request)

    async def health(request: Request) -> Response:
        # The cheapest route the server has: the floor that benchmarks compare a call against.
        return Response(b"ok", media_type="text/plain")

    routes = [Route(wire.SERVICE_PATH, call_service, methods=["POST"]),
              Route("/health", health, methods=["GET"])]
    routes += __import__(f"{__package__}.voucher_hub", fromlist=["*"]).voucher_routes(sim)
    if control:
        from .faults import control_routes
        routes += control_routes(sim)
    app = Starlette(routes=routes)
    app.state.sim = sim
    return ServiceApp(sim, app)


def gateway_refusal(sim: Simulator, exc: GatewayRefusal) -> Response:
    body = sim.respond(-1, None, sim.clock(), exc.message)
    return Response(body, status_code=401, media_type=JSON, headers={"x-tif-refusal": exc.code})
