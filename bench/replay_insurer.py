"""A replay insurer for benchmarks: answers each transaction with a recorded simulator answer at
once, so a benchmark sees the client's own cost.

It is a bare ASGI callable on uvicorn (the simulator's server stack), and its service route and
the floors' `GET /health` take the same path through it: read the request, answer canned
bytes. The transaction code is picked out of the body's first field (the envelope writes
`infno` first) with a byte search, so the replay parses no JSON: what it costs per call is the
same for the visit's POSTs and the floors' GETs.

Run: python bench/replay_insurer.py ANSWERS.json  (prints `replay insurer listening on URL`)
"""
from __future__ import annotations

import json
import sys

import uvicorn

from settlement import wire
from settlement.mock_network.asgi import read_body
from settlement.mock_network.server import bind

_INFNO = b'"infno":"'
_SERVICE = wire.SERVICE_PATH


def build(answers: dict[str, str]):
    canned = {k.encode("ascii"): v.encode("utf-8") for k, v in answers.items()}
    json_type = [(b"content-type", b"application/json")]
    text_type = [(b"content-type", b"text/plain")]

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = await read_body(receive)
        if body is None:
            return
        if scope["path"] == _SERVICE:
            at = body.index(_INFNO) + len(_INFNO)
            status, out, headers = 200, canned[body[at:body.index(b'"', at)]], json_type
        elif scope["path"] == "/health":
            status, out, headers = 200, b"ok", text_type
        else:
            status, out, headers = 404, b"", text_type
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", b"%d" % len(out))]})
        await send({"type": "http.response.body", "body": out})

    return app


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        answers = json.load(f)
    sock = bind("127.0.0.1", 0)  # the simulator's own binding (TCP_NODELAY: no 40 ms ACK waits)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(build(answers), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(f"replay insurer listening on http://{host}:{port}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
