"""One viewer's audio track: s16 frames from the shared capture, which aiortc encodes
to Opus."""

from __future__ import annotations

import asyncio
import fractions
from collections import deque
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class AudioTrack(MediaStreamTrack):
    """One viewer's audio: s16 frames from the shared source, a small bounded buffer
    (oldest dropped: for audio a gap is better than growing latency)."""

    kind = "audio"

    def __init__(self, rate: int, channels: int, on_stop: Callable[[AudioTrack], None], max_chunks: int = 25):
        super().__init__()
        self.rate, self.channels = rate, channels
        self._on_stop = on_stop
        self._chunks: deque[tuple[bytes, int]] = deque(maxlen=max_chunks)
        self._ready = asyncio.Event()
        self.frames = 0

    def offer(self, data: bytes, pts: int) -> None:
        self._chunks.append((data, pts))
        self._ready.set()

    async def recv(self) -> av.AudioFrame:
        while self.readyState == "live":
            if self._chunks:
                data, pts = self._chunks.popleft()
                return self._frame(data, pts)
            self._ready.clear()
            await self._ready.wait()
        raise MediaStreamError

    def _frame(self, data: bytes, pts: int) -> av.AudioFrame:
        frame = av.AudioFrame(
            format="s16",
            layout="mono" if self.channels == 1 else "stereo",
            samples=len(data) // (2 * self.channels),
        )
        frame.planes[0].update(data)
        frame.sample_rate = self.rate
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, self.rate)
        self.frames += 1
        return frame

    def stop(self) -> None:
        super().stop()
        self._on_stop(self)
        self._ready.set()


__all__ = ["AudioTrack"]
