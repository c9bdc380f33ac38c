"""The threads that run the simulator's blocking database work, and the hop to them.

asyncio's run_in_executor goes through concurrent.futures (a Future, a lock, a semaphore and
a chained asyncio future per call); at several hundred calls a second that hop cost about a
tenth of the simulator's CPU. Here a call is one queue put, and one call_soon_threadsafe to
hand the result back. Threads start only when all are busy (up to `size`), as in
ThreadPoolExecutor: each keeps its own PostgreSQL connections (app.Simulator).
"""
from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any


class DbThreads:
    def __init__(self, size: int, name: str = "sim-db"):
        self.size = size
        self.name = name
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.submit(fn, args, lambda ok, value: loop.call_soon_threadsafe(_settle, fut, ok, value))
        return await fut

    def submit(self, fn: Callable[..., Any], args: tuple, done: Callable[[bool, Any], None]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("database threads are shut down")
            if self._idle:
                self._idle -= 1  # an idle thread will take it
            elif len(self._threads) < self.size:
                t = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}",
                                     daemon=True)
                self._threads.append(t)
                t.start()
            self._q.put((fn, args, done))

    def _work(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            fn, args, done = item
            try:
                result = (True, fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                result = (False, exc)
            del item, fn, args
            try:
                done(*result)
            except RuntimeError:  # the event loop is closed: nobody waits for it any more
                pass
            result = None
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._q.put(None)
        for t in threads:
            if t is not threading.current_thread():
                t.join(10)


def _settle(fut: asyncio.Future, ok: bool, value: Any) -> None:
    if fut.cancelled():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
