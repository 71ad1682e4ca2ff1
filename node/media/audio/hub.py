"""One audio source shared by every viewer: the capture thread's chunks are handed to
the event loop and offered to each viewer's track."""

from __future__ import annotations

import asyncio

from .source import AudioSource
from .track import AudioTrack


class AudioHub:
    """Shares one AudioSource among viewers' tracks (capture thread → event loop)."""

    def __init__(self, source: AudioSource):
        self.source = source
        self.rate, self.channels = source.rate, source.channels
        self._tracks: set[AudioTrack] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # while talkback plays on the speaker (node.media.speaker): silence, same timing
        self.muted = False
        self.muted_chunks = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.source.start(self._push_threadsafe)

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.source.stop)
        for track in list(self._tracks):
            track.stop()

    def _push_threadsafe(self, data: bytes, pts: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._push, data, pts)
            except RuntimeError:
                pass

    def _push(self, data: bytes, pts: int) -> None:
        if self.muted:
            data = bytes(len(data))
            self.muted_chunks += 1
        for track in list(self._tracks):
            track.offer(data, pts)

    def subscribe(self) -> AudioTrack:
        track = AudioTrack(self.rate, self.channels, self.unsubscribe)
        self._tracks.add(track)
        return track

    def unsubscribe(self, track: AudioTrack) -> None:
        self._tracks.discard(track)


__all__ = ["AudioHub"]
