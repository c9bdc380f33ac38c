"""InsurerClient tells unreachable, unknown and refused apart, over a real socket.

The server below is a plain TCP listener that answers each request the way a test scripts it
(a good answer, a refusal, a 500, a truncated body, silence, a dropped connection), so the
client's own classification is what is under test.
"""
from __future__ import annotations

import json
import socket
import ssl
import threading
import time

import pytest
from net_helpers import closed_port

from settlement import wire
from settlement.client import InsurerClient
from settlement.errors import (
    GatewayRejected,
    InsurerRefused,
    NetworkUnreachable,
    OutcomeUnknown,
)

OK = b'{"infcode":0,"inf_refmsgid":"R1","output":{"amt":12.30},"warn_msg":null}'


def _response(body: bytes, status: str = "200 OK", ctype: str = "application/json",
              extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
            f"{extra}\r\n").encode() + body


class ScriptedServer:
    """Answers the n-th request with script[n]: bytes to send, "drop" (close without answering),
    "silence" (read it and say nothing), or ("close_after", bytes) (answer, then close)."""

    def __init__(self, script, tls=None):
        self.script = list(script)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        if tls is not None:  # an ssl.SSLContext: the handshake happens in accept()
            self.sock = tls.wrap_socket(self.sock, server_side=True)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _read_request(self, conn, buf: bytes) -> tuple[bytes | None, bytes]:
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return None, buf
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += conn.recv(65536)
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except ssl.SSLError:  # a client that refused our certificate: wait for the next
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn) -> None:
        buf = b""
        with conn:
            while True:
                req, buf = self._read_request(conn, buf)
                if req is None:
                    return
                self.requests.append(req)
                step = self.script.pop(0) if self.script else _response(OK)
                if step == "drop":
                    return
                if step == "silence":
                    time.sleep(2)
                    return
                if isinstance(step, tuple):
                    conn.sendall(step[1])
                    return
                conn.sendall(step)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def server(request):
    srv = ScriptedServer(getattr(request, "param", []))
    yield srv
    srv.close()


def test_a_refused_connection_is_unreachable_nothing_was_sent():
    client = InsurerClient(f"http://127.0.0.1:{closed_port()}", timeout=2)
    with pytest.raises(NetworkUnreachable):
        client.send("2207", "M1", b"{}")


def test_an_answer_is_parsed_strictly_and_the_request_is_signed(server):
    client = InsurerClient(server.url, paas_id="pid", paas_token="tok", timeout=2)
    ans = client.send("2207", "M1", b'{"infno":"2207"}')
    assert ans.raw == OK and ans.inf_refmsgid == "R1" and ans.warn_msg == ""
    assert str(ans.output["amt"]) == "12.30"  # Decimal, exactly as sent
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST " + wire.SERVICE_PATH.encode() + b" HTTP/1.1")
    assert b"x-tif-paasid: pid" in head and b"x-tif-signature: " in head
    assert body == b'{"infno":"2207"}'
    client.close()


def test_calls_share_one_kept_alive_connection(server):
    client = InsurerClient(server.url, timeout=2)
    for n in range(3):
        client.send("1101", f"M{n}", b"{}")
    assert server.connections == 1
    client.close()


@pytest.mark.parametrize("server", [[("close_after", _response(OK))]], indirect=True)
def test_a_connection_the_server_closed_while_idle_is_not_used_again(server):
    client = InsurerClient(server.url, timeout=2)
    client.send("1101", "M1", b"{}")
    time.sleep(0.1)  # the server has closed its end by now
    client.send("1101", "M2", b"{}")  # a fresh connection, not an unknown outcome
    assert server.connections == 2 and len(server.requests) == 2
    client.close()


@pytest.mark.parametrize("server", [[_response(json.dumps(
    {"infcode": -1, "err_msg": "参保人不存在"}).encode())]], indirect=True)
def test_infcode_minus_one_is_refused(server):
    with pytest.raises(InsurerRefused) as info:
        InsurerClient(server.url, timeout=2).send("1101", "M1", b"{}")
    assert info.value.message == "参保人不存在"


@pytest.mark.parametrize("server", [[_response(b"bad signature", "401 Unauthorized",
                                               "text/plain")]], indirect=True)
def test_http_401_is_a_gateway_rejection(server):
    with pytest.raises(GatewayRejected):
        InsurerClient(server.url, timeout=2).send("1101", "M1", b"{}")


@pytest.mark.parametrize("server", [
    [_response(b'{"infcode":-1}', "500 Internal Server Error")],  # HTTP 5xx
    [_response(b'{"infcode":0,"output":{"setlinfo":')],  # malformed body
    [_response(b'{"infcode":0,"infcode":0}')],  # duplicate key: not strict JSON
    ["drop"],  # request taken, connection dropped, no answer
    [("close_after", b'HTTP/1.1 200 OK\r\ncontent-length: 512\r\n\r\n{"infcode":0,')],  # cut
    ["silence"],  # no answer within the timeout
], indirect=True, ids=["http500", "malformed", "duplicate_key", "dropped", "cut", "timeout"])
def test_a_sent_request_without_a_usable_answer_is_unknown_never_failed(server):
    client = InsurerClient(server.url, timeout=0.5)
    with pytest.raises(OutcomeUnknown):
        client.send("2207", "M1", b"{}")
    assert len(server.requests) == 1  # it was delivered: only the insurer knows what happened
    client.send("2207", "M1", b"{}")  # the next call works (on a new connection if need be)
    client.close()


@pytest.mark.parametrize("server", [[_response(b"PK\x03\x04zipbytes", ctype="application/zip")]],
                         indirect=True)
def test_a_file_answer_is_returned_raw(server):
    ans = InsurerClient(server.url, timeout=2).send("9102", "M1", b"{}")
    assert ans.raw == b"PK\x03\x04zipbytes" and ans.output is None


def test_a_base_url_must_be_http_or_https():
    with pytest.raises(ValueError):
        InsurerClient("ftp://insurer.example")


def test_headers_and_body_leave_in_one_write():
    from settlement.client import _HTTPConnection

    class Sock:
        def __init__(self):
            self.writes = []

        def sendall(self, data):
            self.writes.append(bytes(data))

    conn = _HTTPConnection("127.0.0.1", 1)
    conn.sock = Sock()
    conn.request("POST", "/p", body=b'{"a":1}', headers={"content-type": "application/json"})
    assert len(conn.sock.writes) == 1
    assert conn.sock.writes[0].startswith(b"POST /p HTTP/1.1\r\n")
    assert conn.sock.writes[0].endswith(b"\r\n\r\n" + b'{"a":1}')
    assert b"Content-Length: 7\r\n" in conn.sock.writes[0]


def _self_signed(tmp_path):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert_pem, key_pem


def test_https_checks_the_certificate_and_an_untrusted_one_is_unreachable(tmp_path):
    cert_pem, key_pem = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_pem, key_pem)
    srv = ScriptedServer([], tls=server_ctx)
    url = srv.url.replace("http://127.0.0.1", "https://localhost")
    try:
        with pytest.raises(NetworkUnreachable):  # the handshake refuses it: nothing was sent
            InsurerClient(url, timeout=2).send("1101", "M1", b"{}")
        trusting = InsurerClient(url, timeout=2)
        trusting._tls = ssl.create_default_context(cafile=str(cert_pem))
        assert trusting.send("1101", "M2", b"{}").raw == OK
        assert trusting.send("1101", "M3", b"{}").raw == OK  # kept alive over TLS
        assert srv.connections == 1 and len(srv.requests) == 2
        trusting.close()
    finally:
        srv.close()


@pytest.mark.parametrize("server", [[_response(b"PK" + b"\0" * 2048, ctype="application/zip")]],
                         indirect=True)
def test_an_answer_longer_than_the_limit_is_not_buffered_and_is_unknown(server, monkeypatch):
    import settlement.client as client_module
    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 1024)
    client = InsurerClient(server.url, timeout=2)
    with pytest.raises(OutcomeUnknown) as caught:
        client.send("9102", "M1", b"{}")
    assert "longer than 1024" in caught.value.detail
    client.close()


@pytest.mark.parametrize("server", [[_response(b'{"infcode":0,"infcode":0,"output":{}}'),
                                     _response(b'{"infcode":0,"output":{"amt":NaN}}')]],
                         indirect=True)
def test_an_answer_with_duplicate_keys_or_nan_is_unknown_never_settled(server):
    client = InsurerClient(server.url, timeout=2)
    for why in ("duplicate key", "non-finite"):
        with pytest.raises(OutcomeUnknown) as caught:
            client.send("2207", "M1", b"{}")
        assert "unreadable answer" in caught.value.detail and why in caught.value.detail
    client.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://insurer.example",
                                 "https://insurer.example", "https://insurer.example:8443/base",
                                 "http://[::1]:8000", "http://münchen.example:81/a?b=c",
                                 "http://a%41b:8000"])
def test_a_post_sends_the_bytes_request_would(url, monkeypatch):
    """The client writes its header lines itself (made once but for the signature's); on the
    wire they are what http.client's request() would have written, byte for byte."""
    from settlement import gateway
    from settlement.client import _HTTPConnection, _HTTPSConnection

    class Sock:
        def __init__(self):
            self.writes = []

        def sendall(self, data):
            self.writes.append(bytes(data))

    client = InsurerClient(url, paas_id="pid-1%s", paas_token="tok")
    signed = gateway.sign_headers("pid-1%s", "tok")
    monkeypatch.setattr(gateway, "sign_headers", lambda paas_id, token: dict(signed))
    body = '{"infno":"2207","x":"元"}'.encode()
    sent = []
    for send in (lambda c: c.post(client._path, client._request_head(body), body),
                 lambda c: c.request("POST", client._path, body=body, headers={
                     **signed, "content-type": "application/json; charset=utf-8"})):
        cls = _HTTPSConnection if url.startswith("https") else _HTTPConnection
        conn = cls(client._host, client._port)
        conn.sock = Sock()
        send(conn)
        assert len(conn.sock.writes) == 1
        sent.append(conn.sock.writes[0])
    assert sent[0] == sent[1]
    assert b"\r\nx-tif-signature: " + signed["x-tif-signature"].encode() + b"\r\n" in sent[0]


def test_a_paas_id_that_cannot_be_a_header_is_refused_at_once():
    with pytest.raises(ValueError):
        InsurerClient("http://127.0.0.1:8000", paas_id="pid\r\nx-evil: 1")
