"""What the visit benchmarks compare against, and the count that makes the comparison fair.

`Floor.sample(n_http, n_commits)`: the time of that many bare HTTP round trips to a server's
cheapest route (`GET /health`) and that many bare SQLite commits on a file with the clinic's
settings (WAL, synchronous=FULL). `CommitCount(counter)` counts every commit a visit makes,
including those on DBAPI connections the engine's commit event does not see.

Two ways of making the round trips and commits:
- `strict=True` (the client-cost benchmark): each round trip on one kept-alive connection of
  the standard library's `http.client` (the HTTP stack the insurer client uses), each commit an
  INSERT and `commit()` on one DBAPI connection held open (the engine's, pragmas applied), so
  neither the HTTP library's nor SQLAlchemy's own overhead counts as floor;
- `strict=False` (the first floor, kept for bench_visit and for comparison with earlier
  figures): `httpx.Client.get` and `engine.begin()` + `text()` INSERT per commit.
"""
from __future__ import annotations

import http.client
import time
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
    def __init__(self, url: str, work: Path, *, strict: bool = False):
        self._url = url
        self._strict = strict
        self._engine = make_engine(f"sqlite:///{work / ('floor_strict.db' if strict else 'floor.db')}")
        with self._engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)"))
        if strict:
            parts = urlsplit(url)
            self._conn = http.client.HTTPConnection(parts.hostname, parts.port)  # TCP_NODELAY
            self._raw = self._engine.raw_connection()  # pragmas applied by the engine
        else:
            self._http = httpx.Client(trust_env=False)

    def sample(self, n_http: int, n_commits: int) -> float:
        return (self._sample_strict if self._strict else self._sample_first)(n_http, n_commits)

    def _sample_strict(self, n_http: int, n_commits: int) -> float:
        conn, raw = self._conn, self._raw
        t0 = time.perf_counter()
        for _ in range(n_http):
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
        for _ in range(n_commits):
            cur = raw.cursor()
            cur.execute("INSERT INTO t (v) VALUES (?)", (_ROW,))
            raw.commit()
        dt = time.perf_counter() - t0
        assert resp.status == 200 if n_http else True
        return dt

    def _sample_first(self, n_http: int, n_commits: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n_http):
            self._http.get(self._url + "/health")
        for _ in range(n_commits):
            with self._engine.begin() as conn:
                conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": _ROW})
        return time.perf_counter() - t0

    def close(self) -> None:
        if self._strict:
            self._conn.close()
            self._raw.close()
        else:
            self._http.close()
        self._engine.dispose()
