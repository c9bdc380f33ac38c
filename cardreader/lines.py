"""The emulator's side of the wire: a pseudo-terminal master, or a TCP listener.

Both read with a short timeout and return b"" when nothing came, so the serving loop can
notice ``stop()``; both survive the client going away and a new one arriving.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import time
import tty

_WRITE_GIVE_UP = 1.0  # a client that does not read for this long gets its answer dropped


class PtyLine:
    """Master side of a real pty.  ``path`` is the slave device for the client."""

    def __init__(self, hold_slave: bool = True):
        master, slave = os.openpty()
        tty.setraw(slave)          # bytes pass unchanged: no echo, no CR/LF mapping, no signals
        os.set_blocking(master, False)
        self.master: int | None = master
        self.path = os.ttyname(slave)
        # Holding a slave fd keeps the raw termios between clients (Linux resets a pty's
        # termios on the slave's last close); without it the master reads EIO meanwhile.
        self.slave: int | None = slave
        if not hold_slave:
            os.close(slave)
            self.slave = None

    @property
    def address(self) -> str:
        return self.path

    def read(self, timeout: float) -> tuple[bytes, bool]:
        """(data, new_client): a pty cannot tell a new client, so always False."""
        try:
            ready, _, _ = select.select([self.master], [], [], timeout)
            return (os.read(self.master, 4096) if ready else b""), False
        except (BlockingIOError, InterruptedError):
            return b"", False
        except OSError as e:
            if e.errno == errno.EIO:   # no client has the slave open: wait for one
                time.sleep(timeout)
                return b"", False
            if e.errno == errno.EBADF:
                return b"", False
            raise
        except (TypeError, ValueError):  # fd closed under our feet by close()
            return b"", False

    def write(self, raw: bytes) -> None:
        view, deadline = memoryview(raw), time.monotonic() + _WRITE_GIVE_UP
        while view and time.monotonic() < deadline and self.master is not None:
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:   # client not reading: wait a little, then give up
                select.select([], [self.master], [], 0.05)
            except OSError:
                return

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None


class TcpLine:
    """A TCP listener serving one client at a time, for ``socket://host:port`` (Windows has
    no pty; a demo machine can still run the virtual reader)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.server = socket.create_server((host, port))
        self.server.setblocking(False)
        self.conn: socket.socket | None = None

    @property
    def address(self) -> str:
        host, port = self.server.getsockname()[:2]
        return f"socket://{host}:{port}"

    def read(self, timeout: float) -> tuple[bytes, bool]:
        try:
            if self.conn is None:
                ready, _, _ = select.select([self.server], [], [], timeout)
                if not ready:
                    return b"", False
                self.conn, _ = self.server.accept()
                self.conn.settimeout(_WRITE_GIVE_UP)
                # ACK and answer are separate small writes: without this, Nagle holds the
                # answer until the client's delayed ACK, ~40 ms per exchange.
                self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return b"", True
            ready, _, _ = select.select([self.conn], [], [], timeout)
            if not ready:
                return b"", False
            data = self.conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return b"", False
        except (OSError, ValueError):
            data = b""
        if not data:  # client closed: wait for the next one
            self._drop()
        return data, False

    def write(self, raw: bytes) -> None:
        if self.conn is None:
            return
        try:
            self.conn.sendall(raw)
        except OSError:
            self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def close(self) -> None:
        self._drop()
        self.server.close()
