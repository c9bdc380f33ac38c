"""Run the simulator as a real HTTP server on a socket it binds itself (port 0 works)."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from .app import create_app
from .faults import Fault, FaultPlan

DB_FILENAME = "insurer_sim.sqlite3"


def default_data_dir() -> Path:
    home = os.environ.get("CLINIC_HOME")
    if home:
        return Path(home) / "simulator"
    import platformdirs
    return Path(platformdirs.user_data_dir("village-clinic")) / "simulator"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is TCP,
    # and without it every answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, banner: str):
        super().__init__(config)
        self._banner = banner

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit and self._banner:
            # Exactly one line, once connections are served: callers wait for it.
            print(self._banner, flush=True)

    def handle_exit(self, sig: int, frame) -> None:
        # Like uvicorn's, but without re-raising the signal after the graceful shutdown:
        # SIGTERM/SIGINT end the simulator with exit status 0.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def serve(host: str = "127.0.0.1", port: int = 8080, db_url: str | None = None,
          policy_path: str | None = None, *, data_dir: str | Path | None = None,
          catalogue_path: str | None = None, faults: list[Fault] | None = None,
          control: bool = False, workers: int = 1) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn handles both and shuts down cleanly).

    workers > 1: the listening socket is bound once, then that many processes are forked,
    each with its own event loop, engine and connection pool, all accepting on the socket
    (Python runs one thread of Python code at a time per process: on a multi-core machine a
    process per core is what lets the simulator use them). The database keeps them correct
    (PostgreSQL's row and advisory locks; SQLite's BEGIN IMMEDIATE). Faults and the control
    endpoint live in one process's memory, so they need workers == 1."""
    if workers > 1 and (faults or control):
        raise ValueError("--fault and --control need a single worker (--workers 1)")
    if db_url is None:
        d = Path(data_dir) if data_dir else default_data_dir()
        d.mkdir(parents=True, exist_ok=True)
        db_url = f"sqlite:///{d / DB_FILENAME}"
    app = create_app(db_url, policy_path=policy_path, catalogue_path=catalogue_path,
                     faults=FaultPlan(faults), control=control)
    sock = bind(host, port)
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    banner = f"insurer simulator listening on http://{shown}:{real_port}"
    if workers > 1:
        app.state.sim.close()  # no connection may cross a fork
        try:
            _prefork(sock, workers, banner, lambda: create_app(
                db_url, policy_path=policy_path, catalogue_path=catalogue_path))
        finally:
            sock.close()
        return
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5)
    server = _Server(config, banner)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        app.state.sim.close()
    sys.stdout.flush()


def _prefork(sock: socket.socket, workers: int, banner: str, make_app) -> None:
    """Fork the workers, print the banner once, forward SIGTERM/SIGINT, reap them."""
    sys.stdout.flush()
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # worker
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                app = make_app()
                config = uvicorn.Config(app, log_level="warning", access_log=False,
                                        lifespan="off", timeout_graceful_shutdown=5)
                _Server(config, "").run(sockets=[sock])
                app.state.sim.close()
            except BaseException:  # noqa: BLE001 - a worker must never return into the parent
                import traceback
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    stopping = False

    def stop(sig, frame) -> None:
        nonlocal stopping
        stopping = True
        for c in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(c, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(banner, flush=True)
    while children:
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            break
        if pid in children:
            children.remove(pid)
        if not stopping:  # a worker died on its own: take the others down too
            stop(signal.SIGTERM, None)
