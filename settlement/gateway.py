"""The gateway's x-tif-* header signature (protocol.md §1), for client and simulator alike."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

DEFAULT_PAAS_ID = "fengjing-clinics"
DEFAULT_PAAS_TOKEN = "sim-paas-token-not-a-secret"
MAX_SKEW_SECONDS = 300


def signature(timestamp: str, token: str, nonce: str) -> str:
    return hashlib.sha256(f"{timestamp}{token}{nonce}{timestamp}".encode()).hexdigest()


def sign_headers(paas_id: str, token: str, *, now: float | None = None) -> dict[str, str]:
    ts = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    return {
        "x-tif-paasid": paas_id,
        "x-tif-timestamp": ts,
        "x-tif-nonce": nonce,
        "x-tif-signature": signature(ts, token, nonce),
    }


class GatewayRefusal(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_headers(headers: dict[str, str], tokens: dict[str, str], *, now: float | None = None,
                  seen_nonce=None) -> str:
    """Verify the headers; return the paas id. `seen_nonce(paas_id, nonce) -> bool` marks and tests reuse."""
    paas_id = headers.get("x-tif-paasid", "")
    ts = headers.get("x-tif-timestamp", "")
    nonce = headers.get("x-tif-nonce", "")
    sig = headers.get("x-tif-signature", "")
    if not (paas_id and ts and nonce and sig):
        raise GatewayRefusal("missing", "网关认证头缺失")
    token = tokens.get(paas_id)
    if token is None:
        raise GatewayRefusal("unknown_paasid", "未知的接入系统")
    if not hmac.compare_digest(signature(ts, token, nonce), sig.lower()):
        raise GatewayRefusal("bad_signature", "网关签名错误")
    try:
        skew = abs((time.time() if now is None else now) - int(ts))
    except ValueError:
        raise GatewayRefusal("bad_timestamp", "网关时间戳格式错误") from None
    if skew > MAX_SKEW_SECONDS:
        raise GatewayRefusal("stale_timestamp", "网关时间戳超出允许范围")
    if seen_nonce is not None and seen_nonce(paas_id, nonce):
        raise GatewayRefusal("nonce_reused", "网关随机数重复使用")
    return paas_id
