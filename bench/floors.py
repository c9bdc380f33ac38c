"""What the visit benchmarks compare against, and the count that makes the comparison fair.

`Floor.sample(n_http, n_commits)`: the time of that many bare HTTP round trips to a server's
cheapest route (`GET /health`) and that many bare SQLite commits on a file with the clinic's
settings (WAL, synchronous=FULL). `CommitCount(counter)` counts every commit a visit makes,
including those on DBAPI connections the engine's commit event does not see.
"""
from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy import event, text

from clinic.db import COMMITS as RAW_COMMITS
from clinic.db import make_engine

CALLS_PER_VISIT = 6  # 1101, 2201, 2203, 2204, 2206, 2207


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
    def __init__(self, url: str, work: Path):
        self._url = url
        self._engine = make_engine(f"sqlite:///{work / 'floor.db'}")
        with self._engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)"))
        self._http = httpx.Client(trust_env=False)

    def sample(self, n_http: int, n_commits: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n_http):
            self._http.get(self._url + "/health")
        for _ in range(n_commits):
            with self._engine.begin() as conn:
                conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": b"x" * 512})
        return time.perf_counter() - t0

    def close(self) -> None:
        self._http.close()
        self._engine.dispose()
