"""A sound file as an audio source (`view --talk file:PATH.wav`): decoded and resampled
once when it opens, played once, then the source ends."""

from __future__ import annotations

from dataclasses import replace

import av

from ..source import MediaError
from .source import AudioInfo, AudioSource


class WavSource(AudioSource):
    """A WAV file (or anything FFmpeg reads), delivered as 20 ms s16 chunks."""

    kind = "file"

    def __init__(self, path: str, rate: int = 48000, channels: int = 1):
        super().__init__(rate, channels)
        self.path = path
        self._pcm = b""
        self._at = 0

    def info(self) -> AudioInfo:
        return replace(super().info(), device=self.path)

    def _open(self) -> None:
        layout = "mono" if self.channels == 1 else "stereo"
        out = bytearray()
        try:
            with av.open(self.path) as container:
                if not container.streams.audio:
                    raise MediaError(f"file:{self.path}: no audio stream in it")
                resampler = av.AudioResampler(format="s16", layout=layout, rate=self.rate)
                for frame in container.decode(audio=0):
                    for piece in resampler.resample(frame):
                        out += bytes(piece.planes[0])[: piece.samples * 2 * self.channels]
                for piece in resampler.resample(None):
                    out += bytes(piece.planes[0])[: piece.samples * 2 * self.channels]
        except (av.FFmpegError, OSError) as e:
            raise MediaError(f"file:{self.path}: cannot read it as audio: {e}") from None
        self._pcm, self._at = bytes(out), 0

    def _read(self) -> bytes | None:
        size = self.period * 2 * self.channels
        if self._at >= len(self._pcm):
            return None  # played once: the source ends
        chunk = self._pcm[self._at : self._at + size]
        self._at += size
        return chunk.ljust(size, b"\0")


__all__ = ["WavSource"]
