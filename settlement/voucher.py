"""Client of the electronic-voucher hub (医保电子凭证): scanned QR text -> identity + ecToken.

protocol.md §4: the counter sends the scanned code to the voucher hub, which answers
``idNo, idType, userName, ecToken`` (40 chars); 1101 then goes with ``mdtrt_cert_type 01``
and the token as ``mdtrt_cert_no``.  The request is signed with the same x-tif-* gateway
headers as the service endpoint.  Errors are typed, with a Chinese message for the worker:
``VoucherExpired``, ``VoucherUnknown``, ``VoucherNetworkError`` (and ``VoucherRefused`` for
anything else the hub refuses).  Nothing here logs the QR text, the token, the ID number or
the name.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from cardreader.idnumber import IdNumberError, normalize

from . import gateway, wire
from .errors import SettlementError

log = logging.getLogger(__name__)

HUB_PATH = "/localcfc/api/hsecfc/localQrCodeQuery"
TOKEN_LEN = 40


@dataclass(frozen=True)
class VoucherIdentity:
    id_no: str        # 证件号码 (ID number, checked)
    id_type: str      # 证件类型, "01" resident ID card
    user_name: str
    ec_token: str     # 40 chars, for 1101 mdtrt_cert_no with mdtrt_cert_type "01"

    def __repr__(self) -> str:  # nothing identifying in a log line
        return f"VoucherIdentity(id_type={self.id_type})"


class VoucherError(SettlementError):
    message = "医保电子凭证读取失败，请患者重新出示二维码后再扫"


class VoucherExpired(VoucherError):
    message = "医保电子凭证二维码已过期，请患者刷新医保电子凭证二维码后重新扫码"


class VoucherUnknown(VoucherError):
    message = "无法识别该二维码，不是有效的医保电子凭证，请患者打开医保电子凭证后重新扫码"


class VoucherRefused(VoucherError):
    message = "医保电子凭证服务拒绝了本次查询"


class VoucherNetworkError(VoucherError):
    message = "连不上医保电子凭证服务，请检查网络后重试；也可以改用社保卡或身份证"


class VoucherAnswerError(VoucherError):
    message = "医保电子凭证服务的回复不完整，请重新扫码；也可以改用社保卡或身份证"


class VoucherHubClient:
    def __init__(self, base_url: str, paas_id: str = gateway.DEFAULT_PAAS_ID,
                 paas_token: str = gateway.DEFAULT_PAAS_TOKEN, *, org_id: str = "",
                 operator_id: str = "", operator_name: str = "", timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None):
        self.url = base_url.rstrip("/") + HUB_PATH
        self._paas_id, self._token = paas_id, paas_token
        self.org_id, self.operator_id, self.operator_name = org_id, operator_id, operator_name
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                                  transport=transport, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VoucherHubClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def query(self, qr_text: str) -> VoucherIdentity:
        """Ask the hub who this QR code belongs to; a fresh ecToken comes with the answer."""
        body = wire.dumps({"transType": "ec.query", "orgId": self.org_id, "data": {
            "qrCode": qr_text, "businessType": "01101", "orgId": self.org_id,
            "operatorId": self.operator_id, "operatorName": self.operator_name,
            "officeId": ""}})
        headers = gateway.sign_headers(self._paas_id, self._token)
        headers["content-type"] = "application/json; charset=utf-8"
        try:
            resp = self._http.post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:
            # Nothing is lost: a query moves no money, it is simply asked again.
            raise VoucherNetworkError(detail=f"voucher hub: {type(exc).__name__}") from exc
        return self._parse(resp)

    @staticmethod
    def _parse(resp: httpx.Response) -> VoucherIdentity:
        if resp.status_code == 401:
            raise VoucherRefused("医保网关拒绝了本机的接入认证，请联系管理员检查接入配置。",
                                 detail=f"voucher hub: HTTP 401 {resp.headers.get('x-tif-refusal', '')}")
        if resp.status_code >= 500 or resp.status_code == 404:
            raise VoucherNetworkError(detail=f"voucher hub: HTTP {resp.status_code}")
        try:
            out = wire.loads(resp.content)
            code = int(out["code"])
        except (wire.WireError, KeyError, TypeError, ValueError) as exc:
            raise VoucherAnswerError(detail=f"voucher hub: unreadable answer ({exc})") from exc
        if code != 0:
            reason = str(out.get("reason", ""))
            cls = {"expired": VoucherExpired, "unknown": VoucherUnknown}.get(reason, VoucherRefused)
            msg = out.get("message")
            raise cls(msg if isinstance(msg, str) and msg else None,
                      detail=f"voucher hub: code {code} {reason}")
        try:
            d = out["data"]
            token, name = str(d["ecToken"]), str(d["userName"]).strip()
            id_no = normalize(str(d["idNo"]))
            id_type = str(d.get("idType") or "01")
        except (KeyError, TypeError) as exc:
            raise VoucherAnswerError(detail=f"voucher hub: missing {exc}") from exc
        except IdNumberError as exc:
            raise VoucherAnswerError(detail=f"voucher hub: idNo {exc.detail}") from exc
        if len(token) != TOKEN_LEN or not token.isalnum() or not name:
            raise VoucherAnswerError(detail=f"voucher hub: ecToken of {len(token)} chars or no name")
        return VoucherIdentity(id_no, id_type, name, token)
