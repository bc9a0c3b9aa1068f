"""Parsing in worker processes: feedparser and the sanitizer are CPU-bound, the downloads are not.

A fetch run hands each downloaded body to `Parser.parse` and goes on downloading while worker
processes parse. The workers start on the first body that needs them, never for a run where every
feed answered 304.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ProcessPoolExecutor

from newsletter.feeds.parse import ParsedFeed, parse_feed

__all__ = ["Parser", "parser"]


class Parser:
    """Runs parse_feed in worker processes, started on the first feed that needs parsing."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._starting: asyncio.Future[Executor] | None = None

    async def parse(self, body: bytes, url: str, content_type: str | None) -> ParsedFeed:
        call = functools.partial(parse_feed, body, url=url, content_type=content_type)
        if self._workers == 0:
            return call()
        if self._starting is None:
            self._starting = asyncio.ensure_future(asyncio.to_thread(self._start))
        # Shielded: one feed's timeout must not cancel the start every other feed waits for.
        executor = await asyncio.shield(self._starting)
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    def _start(self) -> Executor:
        """Make the pool and start every worker, in a thread: starting a worker waits for the
        forkserver to import the parser (0.3 s the first time), and on the event loop that wait
        would stall every download in flight, and eat into their timeouts."""
        executor = ProcessPoolExecutor(self._workers, mp_context=_mp_context())
        for _ in range(self._workers):
            executor.submit(int)  # each submit finding no idle worker starts one
        return executor

    async def close(self) -> None:
        if self._starting is None:
            return
        try:
            executor = await asyncio.shield(self._starting)
        except Exception:  # the start failed; every parse already reported it
            return
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


@contextlib.asynccontextmanager
async def parser(workers: int | None, feeds: int) -> AsyncIterator[Parser]:
    """A Parser for a run of `feeds` feeds; `workers` None means one per CPU, 0 none."""
    if workers is None:
        workers = min(os.cpu_count() or 1, feeds)
        # One feed is parsed faster here than a worker process can be started.
        if feeds == 1:
            workers = 0
    pool = Parser(max(0, workers))
    try:
        yield pool
    finally:
        await pool.close()


def _mp_context() -> multiprocessing.context.BaseContext:
    # Not "fork": the parent runs an event loop and possibly other threads, and forking those is
    # unsafe (and deprecated from Python 3.12). forkserver starts workers cheaply from a clean
    # process; spawn is the portable fallback.
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Preload the parser (feedparser, nh3) once in the server instead of in every worker, and
    # not the default "__main__": re-importing the caller's script there would re-run any script
    # without an `if __name__ == "__main__"` guard.
    context.set_forkserver_preload(["newsletter.feeds.parse"])
    return context
