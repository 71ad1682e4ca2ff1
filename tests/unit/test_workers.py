"""The daemon's worker pool starts every thread at once, so overlapping jobs (aiortc's
audio encoding, source stops, snapshots) never add a thread later."""

from __future__ import annotations

import asyncio
import threading
import time

from node.workers import PREFIX, install_worker_pool


def _workers() -> int:
    return sum(t.name.startswith(PREFIX) for t in threading.enumerate())


def test_the_pool_is_full_from_the_start_and_stays_so():
    async def main() -> list[int]:
        install_worker_pool(asyncio.get_running_loop(), 4)
        counts = [_workers()]
        for burst in (1, 4, 2, 8):  # overlapping jobs, as many as the pool and more
            await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.02) for _ in range(burst)))
            counts.append(_workers())
        return counts

    assert asyncio.run(main()) == [4] * 5
    assert _workers() == 0  # asyncio.run shut the pool down with the loop
