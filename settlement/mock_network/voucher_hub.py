"""The simulator's electronic-voucher hub (医保电子凭证): scanned QR code -> ecToken.

protocol.md §4: the counter does not decode the patient's QR code itself; it sends the scanned
text to the voucher hub, which answers ``idNo, idType, userName, ecToken`` (40 chars) and more;
1101 is then called with ``mdtrt_cert_type 01`` and the token.

What the simulator models:

* **QR payloads** (``qr_payload(villager, now)``): ``YBEC1`` + psn_no (14 hex) + issue time
  (8 hex, unix seconds) + an HMAC (16 hex) under ``QR_KEY``.  Upper-case hex only, so a
  keyboard-wedge scanner types it unchanged on any layout (the hub also accepts lower case,
  as typed with Caps Lock on).  A payload is refused when its MAC is wrong (forged or
  mistyped: ``unknown``), when it is older than ``qr_max_age`` (default one day, env
  ``SIM_VOUCHER_QR_MAX_AGE``: ``expired``) or dated in the future.  Training sheets with
  QR codes for villagers come from ``qr_payload`` (``clinic network cards`` prints them).
* **ecTokens**: 40 upper-case hex = expiry (8 hex, unix seconds) + psn_no (14 hex) + HMAC
  (18 hex, 72 bits) under a key drawn at random when the simulator process starts (or env
  ``SIM_VOUCHER_TOKEN_KEY``).  Lifetime ``token_lifetime`` seconds, default 300 (env
  ``SIM_VOUCHER_LIFETIME``).  A token cannot be forged without the key; an expired token
  and an unknown one (bad MAC, another simulator process, unknown person) are refused by
  the hub's checker ``check_token``, which 1101 type 01 uses (tx/person.py).

HTTP: ``POST HUB_PATH`` with the platform's x-tif-* gateway headers and a JSON body
``{"transType": "ec.query", "orgId": ..., "data": {"qrCode": ..., "businessType": "01101",
"orgId": ..., "operatorId": ..., "operatorName": ..., "officeId": ...}}``.  Answer:
``{"code": 0, "message": "成功", "data": {"idNo", "idType", "userName", "ecToken", "insuOrg",
"ecIndexNo", "gender", "birthday", "nationality", "tokenExpireTime"}}``, or
``{"code": <non-zero>, "reason": "expired"|"unknown"|"bad_request", "message": <Chinese>}``.
Wrong gateway headers get HTTP 401 like the service endpoint.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from settlement import wire
from settlement.gateway import GatewayRefusal
from settlement.voucher import HUB_PATH

from .db import Person
from .registry import INSUPLC_ADMDVS

if TYPE_CHECKING:
    from .app import Simulator

log = logging.getLogger("settlement.mock_network.voucher")

BEIJING = timezone(timedelta(hours=8))
QR_PREFIX = "YBEC1"
QR_LEN = len(QR_PREFIX) + 14 + 8 + 16
TOKEN_LEN = 40
DEFAULT_TOKEN_LIFETIME = 300            # seconds: "minutes" (protocol.md §4, unconfirmed)
DEFAULT_QR_MAX_AGE = 24 * 3600          # printed training sheets stay usable for a day
QR_FUTURE_SKEW = 300                    # a payload dated this far ahead is refused
# The QR key is shared by whoever prints training QR codes and the simulator, in different
# processes: a fixed simulator key, like the gateway's DEFAULT_PAAS_TOKEN.  Not a secret.
QR_KEY = os.environ.get("SIM_VOUCHER_QR_KEY", "sim-voucher-qr-key-not-a-secret").encode()
# Token key: per simulator process, so tokens cannot be made outside the hub.
_TOKEN_KEY = (os.environ.get("SIM_VOUCHER_TOKEN_KEY", "").encode()
              or secrets.token_bytes(32))

# Refusal reasons and their Chinese messages (shown to the counter worker).
EXPIRED, UNKNOWN, BAD_REQUEST = "expired", "unknown", "bad_request"
MESSAGES = {
    ("qr", EXPIRED): "医保电子凭证二维码已过期，请患者刷新医保电子凭证二维码后重新扫码",
    ("qr", UNKNOWN): "无法识别该二维码，不是有效的医保电子凭证，请患者打开医保电子凭证后重新扫码",
    ("token", EXPIRED): "医保电子凭证已过期，请患者刷新医保电子凭证二维码后重新扫码",
    ("token", UNKNOWN): "医保电子凭证无效，请患者打开医保电子凭证后重新扫码",
    ("person", UNKNOWN): "该医保电子凭证对应的人员未参保或信息不存在，请核对后改用身份证或社保卡",
}
CODES = {EXPIRED: 1101, UNKNOWN: 1102, BAD_REQUEST: 1103}


class VoucherRefusal(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _epoch(dt: datetime) -> int:
    """Simulator clocks are naive Beijing time."""
    return int((dt if dt.tzinfo else dt.replace(tzinfo=BEIJING)).timestamp())


def _mac(key: bytes, kind: str, body: str, hex_chars: int) -> str:
    return hmac.new(key, f"{kind}|{body}".encode(), hashlib.sha256).hexdigest()[:hex_chars].upper()


def _psn_hex(psn_no: str) -> str:
    if not (psn_no.isdigit() and len(psn_no) <= 16):
        raise ValueError("psn_no must be at most 16 digits")
    return f"{int(psn_no):014X}"


# ---- QR payloads -------------------------------------------------------------------------

def qr_payload(villager: Any, now: datetime | None = None) -> str:
    """The text of a villager's voucher QR code as a scanner reads it (43 chars).

    ``villager``: anything with ``psn_no`` (a registry ``Villager``); ``now``: issue time,
    naive Beijing or aware (default: now).  Valid at this simulator for ``qr_max_age``."""
    issued = _epoch(now or datetime.now(BEIJING))
    body = f"{_psn_hex(villager.psn_no)}{issued:08X}"
    return QR_PREFIX + body + _mac(QR_KEY, "qr", body, 16)


def decode_qr(text: str, now: datetime, max_age: float = DEFAULT_QR_MAX_AGE) -> str:
    """psn_no of a QR payload, or VoucherRefusal (unknown/expired)."""
    t = text.strip().upper()
    if len(t) != QR_LEN or not t.startswith(QR_PREFIX):
        raise VoucherRefusal(UNKNOWN, MESSAGES["qr", UNKNOWN])
    body, mac = t[len(QR_PREFIX):-16], t[-16:]
    if not hmac.compare_digest(_mac(QR_KEY, "qr", body, 16), mac):
        raise VoucherRefusal(UNKNOWN, MESSAGES["qr", UNKNOWN])
    psn, issued = int(body[:14], 16), int(body[14:], 16)
    age = _epoch(now) - issued
    if age > max_age or age < -QR_FUTURE_SKEW:
        raise VoucherRefusal(EXPIRED, MESSAGES["qr", EXPIRED])
    return f"{psn:016d}"


# ---- ecTokens ----------------------------------------------------------------------------

def issue_token(psn_no: str, now: datetime, lifetime: float = DEFAULT_TOKEN_LIFETIME) -> str:
    body = f"{_epoch(now) + int(lifetime):08X}{_psn_hex(psn_no)}"
    return body + _mac(_TOKEN_KEY, "ecToken", body, TOKEN_LEN - len(body))


def check_token(token: str, now: datetime) -> str:
    """psn_no of a token issued by this simulator process, or VoucherRefusal."""
    t = token.strip().upper() if isinstance(token, str) else ""
    if len(t) != TOKEN_LEN or any(c not in "0123456789ABCDEF" for c in t):
        raise VoucherRefusal(UNKNOWN, MESSAGES["token", UNKNOWN])
    body, mac = t[:22], t[22:]
    if not hmac.compare_digest(_mac(_TOKEN_KEY, "ecToken", body, TOKEN_LEN - 22), mac):
        raise VoucherRefusal(UNKNOWN, MESSAGES["token", UNKNOWN])
    if _epoch(now) >= int(body[:8], 16):
        raise VoucherRefusal(EXPIRED, MESSAGES["token", EXPIRED])
    return f"{int(body[8:], 16):016d}"


def token_expiry(token: str) -> datetime:
    """When a (well-formed) token stops being accepted, naive Beijing time."""
    return datetime.fromtimestamp(int(token[:8], 16), BEIJING).replace(tzinfo=None)


# ---- the hub -----------------------------------------------------------------------------

def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        log.warning("%s is not a number; using %s", name, default)
        return default
    return value if value > 0 else default


class VoucherHub:
    """Decodes QR payloads against the simulator's person table and issues ecTokens."""

    def __init__(self, engine, clock: Callable[[], datetime], *,
                 token_lifetime: float | None = None, qr_max_age: float | None = None):
        self.engine = engine
        self.clock = clock
        self.token_lifetime = token_lifetime or _env_seconds("SIM_VOUCHER_LIFETIME",
                                                             DEFAULT_TOKEN_LIFETIME)
        self.qr_max_age = qr_max_age or _env_seconds("SIM_VOUCHER_QR_MAX_AGE", DEFAULT_QR_MAX_AGE)

    def query(self, qr_text: str) -> dict[str, Any]:
        now = self.clock()
        psn_no = decode_qr(qr_text, now, self.qr_max_age)
        with Session(self.engine) as s:
            p = s.get(Person, psn_no)
            if p is None:
                raise VoucherRefusal(UNKNOWN, MESSAGES["person", UNKNOWN])
            token = issue_token(psn_no, now, self.token_lifetime)
            return {
                "idNo": p.certno, "idType": "01", "userName": p.psn_name, "ecToken": token,
                "insuOrg": INSUPLC_ADMDVS,
                "ecIndexNo": hashlib.sha256(f"ecIndex|{psn_no}".encode()).hexdigest()[:32].upper(),
                "gender": p.gend, "birthday": p.brdy.strftime("%Y-%m-%d"),
                "nationality": p.naty,
                "tokenExpireTime": token_expiry(token).strftime("%Y-%m-%d %H:%M:%S"),
            }


def _answer(payload: dict, status: int = 200) -> Response:
    return Response(wire.dumps(payload), status_code=status,
                    media_type="application/json; charset=utf-8")


def voucher_routes(sim: Simulator, *, token_lifetime: float | None = None,
                   qr_max_age: float | None = None) -> list[Route]:
    """The hub's route on the simulator's app; ``sim.voucher_hub`` is set for tests."""
    hub = VoucherHub(sim.engine, sim.clock, token_lifetime=token_lifetime, qr_max_age=qr_max_age)
    sim.voucher_hub = hub

    async def query(request: Request) -> Response:
        from .app import gateway_refusal
        try:
            # Database work (nonce, person) runs off the event loop, as for the service route.
            await sim.run(sim.check_gateway,
                          {k.lower(): v for k, v in request.headers.items()})
        except GatewayRefusal as exc:
            return gateway_refusal(sim, exc)
        try:
            body = wire.loads(await request.body())
            qr = body["data"]["qrCode"]
            if not isinstance(qr, str) or not qr.strip():
                raise TypeError("qrCode")
        except (wire.WireError, KeyError, TypeError):
            return _answer({"code": CODES[BAD_REQUEST], "reason": BAD_REQUEST,
                            "message": "请求格式错误：缺少二维码内容 qrCode"}, 400)
        try:
            data = await run_in_threadpool(hub.query, qr)
        except VoucherRefusal as exc:
            log.info("voucher query refused: %s", exc.reason)   # never the code itself
            return _answer({"code": CODES[exc.reason], "reason": exc.reason,
                            "message": exc.message})
        log.info("voucher query ok")
        return _answer({"code": 0, "message": "成功", "data": data})

    return [Route(HUB_PATH, query, methods=["POST"])]
