"""The signed HTTP client for the platform's single service endpoint.

It knows nothing of money or visits: it sends one already-journaled body and classifies
what came back, so that a lost answer is never mistaken for a failure:

- *unreachable* (`NetworkUnreachable`): the connection could not be made, nothing was sent;
- *unknown* (`OutcomeUnknown`): something was (or may have been) sent and no usable answer
  came: a timeout, a dropped connection, an HTTP 5xx, an unreadable body;
- *refused* (`InsurerRefused`): the insurer answered `infcode` ≠ 0; `GatewayRejected`: HTTP 401.

Every visit makes six of these calls, so the transport is the standard library's
`http.client` on kept-alive connections (a POST costs about 40 % of what it did through httpx);
the connection is made in a step of its own, which is what lets a refused connection be told
apart from a lost answer.
"""
from __future__ import annotations

import http.client
import logging
import select
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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


def _tls_context() -> ssl.SSLContext:
    """Certificate checks as strict as httpx's default (certifi's roots when installed)."""
    try:
        import certifi
        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()


# The largest answer read at all: 9102's zip files (the national catalogue is a few MB); JSON
# answers are held to settlement.wire.MAX_BODY_BYTES when parsed.
MAX_ANSWER_BYTES = 64 * 1024 * 1024

class _OneWrite:
    """A request's headers and bytes body in one write. http.client sends them in two, and the
    server then needs a second read (and a turn of its event loop) before it has the body."""

    def post(self, path: str, head: bytes, body: bytes) -> None:
        """Send what request("POST", path, body=body, headers=...) sends, given the header lines
        after the request line, made once by the caller but for the few that change (see
        _head_template): http.client's putrequest and endheaders still keep the
        connection's state. request() checks and encodes each header on every call."""
        self.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
        self._buffer.append(head)
        self.endheaders(body)

    def _send_output(self, message_body=None, encode_chunked=False):
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", b""))
            msg = b"\r\n".join(self._buffer) + message_body
            del self._buffer[:]
            self.send(msg)
            return
        super()._send_output(message_body, encode_chunked)


class _HTTPConnection(_OneWrite, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_OneWrite, http.client.HTTPSConnection):
    pass


def _head_template(host: str, port: int, https: bool, path: str, paas_id: str) -> str:
    """The header lines request() writes for our POST, with %-fields for the body's length and
    the signature's changing headers: http.client writes (and checks) the fixed ones once here,
    in its order: Host, Accept-Encoding, Content-Length, then ours as sign_headers orders them."""
    probe = http.client.HTTPConnection(host, port)
    probe.default_port = 443 if https else 80  # what the Host header leaves out
    probe.putrequest("POST", path)
    probe.putheader("x-tif-paasid", paas_id)
    host_line, accept_encoding, paas = (line.decode("latin-1").replace("%", "%%")
                                        for line in probe._buffer[1:])
    return (f"{host_line}\r\n{accept_encoding}\r\nContent-Length: %d\r\n{paas}\r\n"
            "x-tif-timestamp: %s\r\nx-tif-nonce: %s\r\nx-tif-signature: %s\r\n"
            "content-type: application/json; charset=utf-8")


def _readable(sock) -> bool:
    """Whether a read would not block (data, or the peer's close), without waiting."""
    if hasattr(select, "poll"):  # no FD_SETSIZE limit
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


class InsurerClient:
    def __init__(self, base_url: str, *, paas_id: str = gateway.DEFAULT_PAAS_ID,
                 paas_token: str = gateway.DEFAULT_PAAS_TOKEN, timeout: float = 10.0):
        self.url = base_url.rstrip("/") + wire.SERVICE_PATH
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"insurer URL must be http(s)://host[:port]: {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._paas_id = paas_id
        self._token = paas_token
        self._timeout = timeout
        self._connect_timeout = min(timeout, 5.0)
        self._tls = _tls_context() if self._https else None
        self._head = _head_template(self._host, self._port, self._https, self._path, paas_id)
        # Kept-alive connections not in use (a list, so two threads never share one).
        self._idle: list[http.client.HTTPConnection] = []

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    # ---- connections ---------------------------------------------------------------------

    def _connection(self, infno: str, msgid: str) -> http.client.HTTPConnection:
        """A connected connection: an idle one the server has not closed, else a new one.

        Raises NetworkUnreachable if a new connection cannot be made: nothing was sent."""
        while True:
            try:
                conn = self._idle.pop()  # atomic: another thread may have taken the last one
            except IndexError:
                break
            sock = conn.sock
            # An idle keep-alive connection must have nothing to read; readable means the
            # server closed it (or broke the protocol): never send on it.
            if sock is not None and not _readable(sock):
                return conn
            conn.close()
        if self._https:
            conn = _HTTPSConnection(self._host, self._port, timeout=self._connect_timeout,
                                    context=self._tls)
        else:
            conn = _HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        try:
            conn.connect()  # TCP_NODELAY is set by http.client
        except OSError as exc:  # refused, no route, DNS, connect timeout, TLS handshake
            conn.close()
            raise NetworkUnreachable(detail=f"{infno} {msgid}: {exc!r}") from exc
        conn.sock.settimeout(self._timeout)
        return conn

    # ---- one call ------------------------------------------------------------------------

    def send(self, infno: str, msgid: str, body: bytes) -> Answer:
        """POST one journaled body. Raises NetworkUnreachable only when nothing was delivered."""
        head = self._request_head(body)
        conn = self._connection(infno, msgid)
        try:
            # Headers and body leave in one write (_OneWrite); TCP_NODELAY is on.
            conn.post(self._path, head, body)
            resp = conn.getresponse()
            raw = resp.read(MAX_ANSWER_BYTES + 1)
            if len(raw) > MAX_ANSWER_BYTES:  # never buffer whatever a broken peer sends
                raise http.client.HTTPException(f"answer longer than {MAX_ANSWER_BYTES} bytes")
        except (OSError, http.client.HTTPException) as exc:
            # Sent (or partly sent) and no whole answer: the insurer may have committed.
            conn.close()
            raise OutcomeUnknown(detail=f"{infno} {msgid}: {exc!r}") from exc
        if resp.will_close:
            conn.close()
        else:
            self._idle.append(conn)
        return self._classify(infno, msgid, resp.status, resp.getheader("content-type") or "", raw)

    def _request_head(self, body: bytes) -> bytes:
        signed = gateway.sign_headers(self._paas_id, self._token)
        return (self._head % (len(body), signed["x-tif-timestamp"], signed["x-tif-nonce"],
                              signed["x-tif-signature"])).encode("latin-1")

    def _classify(self, infno: str, msgid: str, status: int, content_type: str,
                  raw: bytes) -> Answer:
        if status == 401:
            raise GatewayRejected(detail=f"{infno} {msgid}: HTTP 401 "
                                         f"{raw.decode('utf-8', 'replace')[:200]}")
        if status >= 500:
            raise OutcomeUnknown(detail=f"{infno} {msgid}: HTTP {status}")
        if content_type.startswith(("application/zip", "application/octet-stream")):
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
