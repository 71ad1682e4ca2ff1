"""Test doubles for the call path: a publisher made of aiortc's own test tracks (until
node/media is wired everywhere) and a frame-counting receiver."""

from __future__ import annotations

import asyncio

from aiortc import AudioStreamTrack, VideoStreamTrack


class ToyAttachment:
    def __init__(self, pc, tracks):
        self.pc = pc
        self.tracks = tracks
        self.detached = False
        self.frames_sent = None  # aiortc's test tracks are not counted

    def detach(self) -> None:
        self.detached = True
        for t in self.tracks:
            t.stop()


class ToyPublisher:
    """attach(pc): aiortc's synthetic audio/video tracks, added send-only."""

    def __init__(self):
        self.attachments: list[ToyAttachment] = []

    async def video_profile(self):
        return None  # aiortc encodes its test video itself

    def attach(self, pc) -> ToyAttachment:
        tracks = [AudioStreamTrack(), VideoStreamTrack()]
        for t in tracks:
            pc.addTrack(t)
        a = ToyAttachment(pc, tracks)
        self.attachments.append(a)
        return a


class CountingReceiver:
    """Counts decoded frames of every incoming track."""

    def __init__(self, pc):
        self.video_frames = 0
        self.audio_frames = 0
        self.tasks: list[asyncio.Task] = []
        pc.on("track", self._on_track)

    def _on_track(self, track) -> None:
        self.tasks.append(asyncio.ensure_future(self._pump(track)))

    async def _pump(self, track) -> None:
        try:
            while True:
                await track.recv()
                if track.kind == "video":
                    self.video_frames += 1
                else:
                    self.audio_frames += 1
        except Exception:
            return

    def summary(self) -> dict:
        return {"video_frames": self.video_frames, "audio_frames": self.audio_frames}

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
