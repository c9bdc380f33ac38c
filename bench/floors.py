"""What the visit benchmarks compare against, and the count that makes the comparison fair.

`Floor.sample(n_http, n_commits)`: the time of that many bare HTTP round trips to a server's
cheapest route (`GET /health`) and that many bare SQLite commits on a file with the clinic's
settings (WAL, synchronous=FULL). `CommitCount(counter)` counts every commit a visit makes,
including those on DBAPI connections the engine's commit event does not see.

How the round trips and commits are made:
- `http="httpx"`: `httpx.Client.get` (the first floor, and bench_visit's); `http="stdlib"`: one
  kept-alive `http.client` connection, the HTTP stack the insurer client itself uses since it
  left httpx, so the library's own cost is never counted as floor for one and not the other;
- `commits="engine"`: `engine.begin()` + a `text()` INSERT per commit (the first floor's);
  `commits="dbapi"`: an INSERT and `commit()` on one DBAPI connection held open (pragmas
  applied by the engine), with no SQLAlchemy or pool work at all: the strictest floor.
"""
from __future__ import annotations

import time
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import event, text

from clinic.db import COMMITS as RAW_COMMITS
from clinic.db import make_engine

CALLS_PER_VISIT = 6  # 1101, 2201, 2203, 2204, 2206, 2207
_ROW = b"x" * 512


class CommitCount:
    def __init__(self, counter):
        self._counter = counter
        self._engine_commits = 0
        event.listen(counter.engine, "commit", self._on_commit)

    def _on_commit(self, _conn) -> None:
        self._engine_commits += 1

    def __call__(self) -> int:
        """Commits so far: the engine's, the journal's and clinic.db.raw_tx's."""
        return self._engine_commits + self._counter.journal.commits + RAW_COMMITS["raw"]


class Floor:
    def __init__(self, url: str, work: Path, *, http: str = "httpx", commits: str = "engine"):
        if http not in ("httpx", "stdlib") or commits not in ("engine", "dbapi"):
            raise ValueError(f"floor http={http!r} commits={commits!r}")
        self._url = url
        self._engine = make_engine(f"sqlite:///{work / f'floor_{http}_{commits}.db'}")
        with self._engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)"))
        if http == "stdlib":
            parts = urlsplit(url)
            self._conn = http_conn = HTTPConnection(parts.hostname, parts.port)

            def get() -> None:
                http_conn.request("GET", "/health")  # TCP_NODELAY is set by http.client
                resp = http_conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET /health: {resp.status}")
            self._http = None
        else:
            self._conn = None
            self._http = client = httpx.Client(trust_env=False)

            def get() -> None:
                client.get(url + "/health")
        self._get = get
        if commits == "dbapi":
            self._raw = raw = self._engine.raw_connection()

            def commit() -> None:
                raw.cursor().execute("INSERT INTO t (v) VALUES (?)", (_ROW,))
                raw.commit()
        else:
            self._raw = None
            engine = self._engine

            def commit() -> None:
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": _ROW})
        self._commit = commit

    def warm(self, commits: int = 1100) -> None:
        """Commit past SQLite's WAL auto-checkpoint (1000 pages), so the floor's WAL has wrapped
        and is rewritten in place, as a clinic database's is in steady state (appending to a
        fresh WAL costs more per fsync and would flatter the ratio)."""
        for _ in range(commits):
            self._commit()

    def sample_ordered(self, ops: str) -> float:
        """The same bare operations in a given order: "h" a round trip, "c" a commit."""
        get, commit = self._get, self._commit
        t0 = time.perf_counter()
        for op in ops:
            if op == "h":
                get()
            else:
                commit()
        return time.perf_counter() - t0

    def sample(self, n_http: int, n_commits: int) -> float:
        get, commit = self._get, self._commit
        t0 = time.perf_counter()
        for _ in range(n_http):
            get()
        for _ in range(n_commits):
            commit()
        return time.perf_counter() - t0

    def close(self) -> None:
        for c in (self._conn, self._http, self._raw):
            if c is not None:
                c.close()
        self._engine.dispose()
