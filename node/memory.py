"""Giving freed heap back to the system after calls.

A call allocates and frees a few MiB (ICE, DTLS, SRTP contexts, SDP, buffers). glibc
keeps freed memory in its heap for reuse, so a daemon that served many calls looks as
if it leaked (about 19 KiB per call over hundreds of calls, all of it free memory).
`MemoryTrimmer` asks glibc to return it (`malloc_trim(0)`) a little after calls end,
coalesced to at most one trim per `min_interval` seconds; on a C library without
malloc_trim it does nothing."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # musl, macOS: nothing to ask
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class MemoryTrimmer:
    def __init__(self, delay: float = 2.0, min_interval: float = 10.0):
        self._trim = _malloc_trim()
        self._delay = delay
        self._min_interval = min_interval
        self._last = float("-inf")
        self._pending: asyncio.TimerHandle | None = None
        self.trims = 0

    def soon(self) -> None:
        """Schedule a trim (event loop thread), once serving and after each call: after
        `delay`, when the call's objects are gone, and not sooner than `min_interval`
        after the previous one."""
        if self._trim is None or self._pending is not None:
            return
        wait = max(self._delay, self._last + self._min_interval - time.monotonic())
        self._pending = asyncio.get_running_loop().call_later(wait, self.trim_now)

    def trim_now(self) -> None:
        self._pending = None
        self._last = time.monotonic()
        if self._trim is not None:
            self._trim(0)
            self.trims += 1

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
