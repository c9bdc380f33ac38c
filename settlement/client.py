"""The signed HTTP client for the platform's single service endpoint.

It knows nothing of money or visits: it sends one already-journaled body and classifies
what came back, so that a lost answer is never mistaken for a failure.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from . import gateway, wire
from .errors import GatewayRejected, InsurerRefused, NetworkUnreachable, OutcomeUnknown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """A successful (infcode 0) response; `raw` is kept for the journal."""
    output: Any
    raw: bytes
    inf_refmsgid: str
    warn_msg: str


class InsurerClient:
    def __init__(self, base_url: str, *, paas_id: str = gateway.DEFAULT_PAAS_ID,
                 paas_token: str = gateway.DEFAULT_PAAS_TOKEN, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None):
        self.url = base_url.rstrip("/") + wire.SERVICE_PATH
        self._paas_id = paas_id
        self._token = paas_token
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                                  transport=transport, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def send(self, infno: str, msgid: str, body: bytes) -> Answer:
        """POST one journaled body. Raises NetworkUnreachable only when nothing was delivered."""
        headers = gateway.sign_headers(self._paas_id, self._token)
        headers["content-type"] = "application/json; charset=utf-8"
        try:
            resp = self._http.post(self.url, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise NetworkUnreachable(detail=f"{infno} {msgid}: {exc!r}") from exc
        except httpx.TransportError as exc:
            # Sent (or partly sent) and no answer: the insurer may have committed.
            raise OutcomeUnknown(detail=f"{infno} {msgid}: {exc!r}") from exc
        return self._classify(infno, msgid, resp)

    def _classify(self, infno: str, msgid: str, resp: httpx.Response) -> Answer:
        if resp.status_code == 401:
            raise GatewayRejected(detail=f"{infno} {msgid}: HTTP 401 {resp.text[:200]}")
        if resp.status_code >= 500:
            raise OutcomeUnknown(detail=f"{infno} {msgid}: HTTP {resp.status_code}")
        raw = resp.content
        if resp.headers.get("content-type", "").startswith(("application/zip",
                                                            "application/octet-stream")):
            return Answer(output=None, raw=raw, inf_refmsgid="", warn_msg="")  # 9102's file
        try:
            body = wire.loads(raw)
            code = int(body["infcode"])
        except (wire.WireError, KeyError, TypeError, ValueError) as exc:
            raise OutcomeUnknown(detail=f"{infno} {msgid}: unreadable answer: {exc}") from exc
        if code != 0:
            raise InsurerRefused(message=str(body.get("err_msg") or InsurerRefused.message),
                                 detail=f"{infno} {msgid}: infcode {code}")
        return Answer(output=body.get("output"), raw=raw,
                      inf_refmsgid=str(body.get("inf_refmsgid", "")),
                      warn_msg=str(body.get("warn_msg") or ""))
