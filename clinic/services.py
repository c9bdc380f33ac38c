"""Start the insurer simulator and the virtual card reader as real child processes.

Used by `make run`, `clinic demo`, training and the tests, so all of them exercise the same
processes a clinic would talk to.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

READY_TIMEOUT = 30.0


class ServiceError(RuntimeError):
    pass


def simulator_dir(settings) -> Path:
    """Where `make run` keeps its insurer simulator: beside the clinic's data directory, never in
    it, because the simulator is the insurer's side and holds the whole registry in clear."""
    home = Path(settings.home)
    return home.with_name(home.name + "-insurer-sim")


def _wait_line(proc: subprocess.Popen, marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                raise ServiceError(f"{proc.args!r} exited with {proc.returncode}: {err[-2000:]}")
            time.sleep(0.05)
            continue
        if marker in line:
            return line.strip()
    raise ServiceError(f"{proc.args!r} did not print {marker!r} within {timeout}s")


@dataclass
class Running:
    proc: subprocess.Popen
    address: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


def _spawn(args: list[str], marker: str, env: dict | None = None) -> Running:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    try:
        line = _wait_line(proc, marker, READY_TIMEOUT)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return Running(proc, line.split()[-1])


def start_simulator(db_path: Path, port: int = 0, host: str = "127.0.0.1",
                    extra: list[str] | None = None) -> Running:
    """`clinic network serve`; address is its http://host:port URL."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return _spawn([sys.executable, "-m", "clinic", "network", "serve", "--host", host,
                   "--port", str(port), "--db", f"sqlite:///{db_path}", *(extra or [])],
                  "listening on")


def start_reader(link: Path | None = None, extra: list[str] | None = None) -> Running:
    """`clinic reader emulate`; address is the pseudo-terminal's device path."""
    args = [sys.executable, "-m", "clinic", "reader", "emulate", *(extra or [])]
    if link:
        args += ["--link", str(link)]
    return _spawn(args, "reader on")


@contextmanager
def counter_services(work_dir: Path, reader_args: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """Simulator + virtual reader for one session; yields (network URL, reader device)."""
    sim = start_simulator(work_dir / "insurer.db")
    try:
        reader = start_reader(extra=reader_args)
        try:
            yield sim.address, reader.address
        finally:
            reader.stop()
    finally:
        sim.stop()
