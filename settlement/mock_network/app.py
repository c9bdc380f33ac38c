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

from sqlalchemy import delete, insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
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
from .db import (
    MessageLog,
    Nonce,
    ReversedUnseen,
    SignIn,
    is_postgres,
    lock_key,
    make_engine,
    seed_registry,
    seed_year_totals,
)
from .faults import DROP, FaultPlan
from .policy import Policy, load_policy
from .registry import DEFAULT_SEED, INSUPLC_ADMDVS, build_registry
from .tx import HANDLERS, Ctx, RawFile, TxError

log = logging.getLogger("settlement.mock_network")

BEIJING = timezone(timedelta(hours=8))
INFNO_RE = re.compile(r"^(\d{4})[A-Z]?$")
JSON = "application/json; charset=utf-8"
ZIP = "application/zip"


def media_type(body: bytes) -> str:
    """A stored answer is either the JSON envelope or a zip file (9102)."""
    return ZIP if body[:4] == b"PK\x03\x04" else JSON


def beijing_now() -> datetime:
    return datetime.now(BEIJING).replace(tzinfo=None)


def body_hash(obj: Any) -> str:
    """Hash of the parsed body with keys sorted: whitespace and key order do not matter,
    every value does."""
    def canon(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: canon(x[k]) for k in sorted(x)}
        if isinstance(x, list):
            return [canon(v) for v in x]
        return x
    return hashlib.sha256(wire.dumps(canon(obj))).hexdigest()


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
        self._lock = threading.Lock()  # SQLite only: one transaction at a time
        self._nonce_calls = 0

    def close(self) -> None:
        """Close every database connection (before a fork, at shutdown)."""
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

    # ---- gateway --------------------------------------------------------------------
    def seen_nonce(self, paas_id: str, nonce: str) -> bool:
        """Record the nonce; True if it was already used. Kept in the DB across restarts.

        Its commit does not wait for the disk (PostgreSQL: synchronous_commit off for this
        transaction; SQLite: a connection with synchronous=NORMAL): a power cut may forget the
        last moment's nonces, a crash of the simulator forgets none. Core, not the ORM: it
        runs once per request."""
        now = int(time.time())
        self._nonce_calls += 1
        with self._serialized(), self.nonce_engine.begin() as conn:
            if self.postgres:
                conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
            if self._nonce_calls % 200 == 0:  # a nonce older than the skew window is harmless
                conn.execute(delete(Nonce).where(Nonce.seen_at < now - 2 * MAX_SKEW_SECONDS))
            try:
                with conn.begin_nested():
                    conn.execute(insert(Nonce), {"paas_id": paas_id, "nonce": nonce[:128],
                                                 "seen_at": now})
            except IntegrityError:
                return True
        return False

    def check_gateway(self, headers: dict[str, str]) -> None:
        check_headers(headers, self.tokens, seen_nonce=self.seen_nonce)

    def _serialized(self):
        """SQLite: one writer at a time in this process (its file lock would make the others
        spin on busy_timeout). PostgreSQL: no global lock; row and advisory locks do it."""
        return contextlib.nullcontext() if self.postgres else self._lock

    # ---- one request ----------------------------------------------------------------
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
            except (IntegrityError, OperationalError) as exc:
                # PostgreSQL: a deadlock, a serialization failure or a unique key taken by a
                # concurrent transaction. Everything was rolled back: do it again.
                if attempt < RETRIES and _retryable(exc):
                    log.info("%s %s: concurrent conflict, retried (%s)", infno, msgid,
                             type(exc.orig).__name__)
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
        (in a savepoint, so a refusal keeps nothing of it) and the message-log row."""
        msgid, infno, fixmedins, h, received = req.msgid, req.infno, req.fixmedins, req.h, req.received
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            lock_key(s, msgid)  # a concurrent copy of this msgid waits here, then replays
            prior = s.get(MessageLog, msgid)
            if prior is not None:
                if prior.body_hash == h:
                    log.info("msgid %s repeated: first answer replayed", msgid)
                    return prior.response
                log.warning("msgid %s repeated with a different body: refused", msgid)
                return self.respond(-1, None, received, "报文ID重复但内容不同")
            err_msg = None
            if s.get(ReversedUnseen, msgid) is not None:
                err_msg = "该报文已被冲正（2601），不予处理"
            else:
                fn = HANDLERS.get(req.infno)
                try:
                    with s.begin_nested():
                        if fn is None:
                            raise TxError(f"不支持的交易编号 {req.infno_raw}")
                        if getattr(fn, "needs_sign_in", True):
                            self._check_sign_in(s, req.env, fixmedins)
                        ctx = Ctx(s=s, env=req.env, msgid=msgid, infno=infno,
                                  fixmedins_code=fixmedins, now=received, policy=self.policy,
                                  catalogue=self.catalogue)
                        output = fn(ctx, req.env.get("input"))
                        if isinstance(output, RawFile):
                            resp = output.data  # 9102: the file itself is the answer
                        else:
                            resp = self.respond(0, output, received, warn_msg="；".join(ctx.warnings))
                        s.flush()
                except TxError as exc:
                    log.info("%s %s refused: %s", infno, msgid, exc.err_msg)
                    err_msg = exc.err_msg
                except DataError:
                    # PostgreSQL checks lengths and ranges SQLite lets through.
                    log.info("%s %s refused: a value too long or out of range", infno, msgid)
                    err_msg = "报文字段超长或数值超出范围"
            if err_msg is not None:
                if fault == "drop_before_commit":
                    raise _Dropped()  # the refusal is lost with the request: nothing remembered
                # A refusal is an answer too: a retry of the same msgid must get it again.
                resp = self.respond(-1, None, received, err_msg)
            s.add(MessageLog(msgid=msgid, infno=infno, fixmedins_code=fixmedins, body_hash=h,
                             infcode=0 if err_msg is None else -1, response=resp,
                             received=received))
            s.flush()
            if fault == "drop_before_commit":
                raise _Dropped()
        if err_msg is None:
            log.info("%s %s ok", infno, msgid)
        return resp

    def _check_sign_in(self, s: Session, env: dict, fixmedins: str) -> None:
        sign_no = env.get("sign_no")
        if not isinstance(sign_no, str) or not sign_no.strip():
            raise TxError("缺少签到编号 sign_no，请先签到（9001）")
        row = s.get(SignIn, sign_no)
        if row is None or row.fixmedins_code != fixmedins:
            raise TxError("签到编号 sign_no 无效，请重新签到（9001）")
        if row.signout_time is not None:
            raise TxError("该签到编号已签退，请重新签到（9001）")


class _Dropped(Exception):
    pass


RETRIES = 5


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
    "database is locked" when several worker processes wait longer than busy_timeout."""
    if isinstance(exc, IntegrityError) or "database is locked" in str(exc):
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40P01", "40001")


INTERNAL_ERROR = object()  # handle() result: answer HTTP 500, nothing stored


def create_app(db_url: str | None = None, *, engine: Engine | None = None,
               policy: Policy | None = None, policy_path: str | None = None,
               catalogue_path: str | None = None, seed: int = DEFAULT_SEED,
               tokens: dict[str, str] | None = None,
               clock: Callable[[], datetime] = beijing_now,
               faults: FaultPlan | None = None, control: bool = False) -> Starlette:
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
    return app


def gateway_refusal(sim: Simulator, exc: GatewayRefusal) -> Response:
    body = sim.respond(-1, None, sim.clock(), exc.message)
    return Response(body, status_code=401, media_type=JSON, headers={"x-tif-refusal": exc.code})
