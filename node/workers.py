"""The daemon's worker threads: a fixed pool, every thread started at once.

asyncio's default executor starts its threads one at a time, when a job finds none idle
(aiortc encodes every audio frame there; the node stops sources, takes snapshots and
reads diagnostics there), so a daemon's thread count crept up whenever jobs overlapped
and never came down. The daemon starts the same number of threads as asyncio's own
default, min(32, cores + 4), at start-up instead: its thread count is the same from the
first minute to the last, which is what a watchdog, `ps` or a leak check expects."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

PREFIX = "media-node-worker"


def default_workers() -> int:
    """asyncio's default executor size (ThreadPoolExecutor's default)."""
    return min(32, (os.cpu_count() or 1) + 4)


def install_worker_pool(loop: asyncio.AbstractEventLoop, workers: int | None = None) -> ThreadPoolExecutor:
    """Make a pool of `workers` threads, all running, the loop's default executor
    (what run_in_executor(None, ...) and asyncio.to_thread use). asyncio.run shuts it
    down with the loop."""
    n = workers or default_workers()
    pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix=PREFIX)
    # The pool starts a thread only when a job finds none idle: n jobs that wait for
    # each other make it start all n now.
    barrier = threading.Barrier(n, timeout=1.0)
    jobs = [pool.submit(barrier.wait) for _ in range(n)]
    try:
        for job in jobs:
            job.result()  # each returns within the barrier's second
    except threading.BrokenBarrierError:  # threads were slow to start: the pool still works, lazily
        started = sum(t.name.startswith(PREFIX) for t in threading.enumerate())
        log.warning("the worker pool started %d of %d threads at once", started, n)
    loop.set_default_executor(pool)
    return pool


__all__ = ["default_workers", "install_worker_pool"]
