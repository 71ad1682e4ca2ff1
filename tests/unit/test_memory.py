"""The daemon's heap trimmer: ends of calls coalesce into one malloc_trim, later than
the call's end and never more often than its interval."""

from __future__ import annotations

import asyncio

from node.memory import MemoryTrimmer


async def test_call_ends_coalesce_into_rate_limited_trims():
    trimmer = MemoryTrimmer(delay=0.05, min_interval=1.0)
    assert trimmer._trim is not None, "glibc's malloc_trim should be found on this machine"
    for _ in range(5):
        trimmer.soon()
    assert trimmer.trims == 0  # not at the call's end: its objects are still being freed
    await asyncio.sleep(0.5)
    assert trimmer.trims == 1
    trimmer.soon()
    await asyncio.sleep(0.1)
    assert trimmer.trims == 1  # inside min_interval: deferred, not dropped
    await asyncio.sleep(1.5)
    assert trimmer.trims == 2
    trimmer.soon()
    trimmer.cancel()
    await asyncio.sleep(1.2)
    assert trimmer.trims == 2
