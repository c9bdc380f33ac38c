"""The service endpoint as a bare ASGI callable in front of the Starlette app.

Every call of a visit goes through here: the body is read, then one hop to a database thread
runs the gateway check and the transaction, and the answer is sent. Starlette's routing,
Request and Response objects and a second thread hop cost about as much CPU as the
transaction's own SQL (docs/simulator.md, "Load"). What the endpoint checks and answers is
unchanged (Simulator.serve). With a fault pending (faults.py) a call takes the Starlette
route instead, which knows how to delay, break and drop answers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from settlement import wire

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .app import Simulator


class ServiceApp:
    def __init__(self, sim: Simulator, inner: Starlette):
        self.sim = sim
        self.inner = inner
        self.state = inner.state  # app.state.sim, as create_app's callers know it

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope["path"] != wire.SERVICE_PATH
                or scope["method"] != "POST" or self.sim.faults.active()):
            await self.inner(scope, receive, send)
            return
        request = await read_body(receive)
        if request is None:
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, body, ctype, extra = await self.sim.run(self.sim.serve, headers, request)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype), (b"content-length", b"%d" % len(body)),
                                *extra]})
        await send({"type": "http.response.body", "body": body})


async def read_body(receive) -> bytes | None:
    """A request's whole body, or None if the client went away first."""
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return None
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body", False):
            return b"".join(chunks)
