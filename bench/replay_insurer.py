"""A replay insurer for benchmarks: answers each transaction with a recorded simulator answer at
once, served by the same Starlette + uvicorn stack, so a benchmark sees the client's own cost.

Run: python bench/replay_insurer.py ANSWERS.json  (prints `replay insurer listening on URL`)
"""
from __future__ import annotations

import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from settlement import wire
from settlement.mock_network.server import bind


def build(answers: dict[str, str]) -> Starlette:
    canned = {k: v.encode("utf-8") for k, v in answers.items()}

    async def call(request: Request) -> Response:
        body = await request.body()
        # The stdlib parser, not the strict one: the replay's own work is not what is measured.
        infno = json.loads(body)["infno"]
        return Response(canned[infno], media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b"ok", media_type="text/plain")

    return Starlette(routes=[Route(wire.SERVICE_PATH, call, methods=["POST"]),
                             Route("/health", health)])


def main() -> None:
    answers = json.loads(open(sys.argv[1], encoding="utf-8").read())
    sock = bind("127.0.0.1", 0)  # the simulator's own binding (TCP_NODELAY: no 40 ms ACK waits)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(build(answers), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(f"replay insurer listening on http://{host}:{port}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
