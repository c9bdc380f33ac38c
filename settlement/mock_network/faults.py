"""Fault injection on demand: per infno, the next N calls misbehave in a chosen way.

Kinds (what the client sees / what the simulator's books hold):
  latency             the answer comes `seconds` late; processed normally
  drop_before_commit  processed, rolled back, connection dropped: nothing happened
                      (a repeated msgid: its stored answer is not sent)
  commit_then_drop    processed and committed, connection dropped: the client cannot know
                      (a repeated msgid: its stored answer is lost again)
  http500             HTTP 500, nothing processed
  malformed           HTTP 200 with a truncated JSON body, nothing processed
Set with `--fault INFNO:KIND[:COUNT[:SECONDS]]` (INFNO "*" = any) or, when the simulator runs
with `--control`, through the loopback-only endpoint CONTROL_PATH.
"""
from __future__ import annotations

import asyncio
import functools
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from settlement import wire
from settlement.gateway import GatewayRefusal

if TYPE_CHECKING:
    from .app import Simulator

KINDS = ("latency", "drop_before_commit", "commit_then_drop", "http500", "malformed")
CONTROL_PATH = "/sim/control/faults"
DROP = object()  # returned by Simulator.handle: drop the connection, send no answer
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass
class Fault:
    infno: str
    kind: str
    count: int = 1
    seconds: float = 0.0


def parse_fault(spec: str) -> Fault:
    """'2207:commit_then_drop', '2207:latency:3:2.5', '*:http500:2'."""
    parts = spec.split(":")
    if len(parts) < 2 or parts[1] not in KINDS:
        raise ValueError(f"fault {spec!r}: expected INFNO:KIND[:COUNT[:SECONDS]], KIND one of {KINDS}")
    f = Fault(parts[0].strip().upper() or "*", parts[1],
              int(parts[2]) if len(parts) > 2 and parts[2] else 1,
              float(parts[3]) if len(parts) > 3 and parts[3] else 0.0)
    if f.count < 1 or f.seconds < 0:
        raise ValueError(f"fault {spec!r}: count must be >= 1 and seconds >= 0")
    return f


class FaultPlan:
    def __init__(self, faults: list[Fault] | None = None):
        self._lock = threading.Lock()
        self._faults: list[Fault] = list(faults or [])

    def add(self, f: Fault) -> None:
        if f.kind not in KINDS or f.count < 1:
            raise ValueError("bad fault")
        with self._lock:
            self._faults.append(f)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> bool:
        """Any fault waiting (read without the lock: a fault added at this very moment may
        apply from the next call on)."""
        return bool(self._faults)

    def pending(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def take(self, infno: str | None) -> Fault | None:
        """The fault for this call, if any; counts it down."""
        code = (infno or "")[:4]
        with self._lock:
            for f in self._faults:
                if f.infno in ("*", code, infno):
                    f.count -= 1
                    if f.count <= 0:
                        self._faults.remove(f)
                    return Fault(f.infno, f.kind, 1, f.seconds)
        return None


def _peek_infno(body: bytes) -> str | None:
    try:
        env = wire.loads(body)
    except wire.WireError:
        return None
    v = env.get("infno") if isinstance(env, dict) else None
    return v if isinstance(v, str) else None


class _DroppedResponse(Response):
    """Start an answer that promises a body, then stop: the server closes the connection
    and the client sees it cut mid-response."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                (b"content-length", b"512")]})
        await send({"type": "http.response.body", "body": b'{"infcode":0,', "more_body": True})


async def serve_with_faults(sim: Simulator, request: Request) -> Response:
    from .app import INTERNAL_ERROR, JSON, gateway_refusal, media_type
    headers = {k.lower(): v for k, v in request.headers.items()}
    # The database work is blocking: it runs in a worker thread, never on the event loop.
    try:
        await sim.run(sim.check_gateway, headers)
    except GatewayRefusal as exc:
        return gateway_refusal(sim, exc)
    body = await request.body()
    fault = sim.faults.take(_peek_infno(body))
    kind = fault.kind if fault else None
    if kind == "latency":
        await asyncio.sleep(fault.seconds)
    elif kind == "http500":
        return Response(sim.respond(-1, None, sim.clock(), "医保中心服务异常（模拟故障）"),
                        status_code=500, media_type=JSON)
    elif kind == "malformed":
        return Response(b'{"infcode":0,"output":{"setlinfo":', media_type=JSON)
    result = await sim.run(functools.partial(sim.handle, fault=kind), body)
    if result is DROP:
        return _DroppedResponse()
    if result is INTERNAL_ERROR:
        return Response(sim.respond(-1, None, sim.clock(), "医保中心内部错误，请稍后用同一报文重试"),
                         status_code=500, media_type=JSON)
    return Response(result, media_type=media_type(result))


def control_routes(sim: Simulator) -> list[Route]:
    async def faults(request: Request) -> Response:
        host = request.client.host if request.client else ""
        if host not in LOOPBACK:
            return JSONResponse({"error": "control endpoint is loopback-only"}, status_code=403)
        if request.method == "DELETE":
            sim.faults.clear()
        elif request.method == "POST":
            try:
                d = wire.loads(await request.body())
                sim.faults.add(Fault(str(d["infno"]), str(d["kind"]), int(d.get("count", 1)),
                                     float(d.get("seconds", 0))))
            except (wire.WireError, KeyError, TypeError, ValueError) as exc:
                return JSONResponse({"error": f"bad fault: {exc}"}, status_code=400)
        return JSONResponse({"faults": sim.faults.pending()})
    return [Route(CONTROL_PATH, faults, methods=["GET", "POST", "DELETE"])]
