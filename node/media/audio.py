"""Audio: a capture source (ALSA microphone via pyalsaaudio on its own thread, or a tone
for tests) shared by all viewers; each viewer gets its own track of av.AudioFrame
(s16 PCM) that aiortc encodes to Opus."""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import struct
import threading
import time
from collections import deque
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .source import Backoff, MediaError, WorkerThread

log = logging.getLogger(__name__)

PcmSink = Callable[[bytes, int], None]  # (s16 interleaved samples, pts in samples)


class AudioSource:
    """Delivers 20 ms chunks of s16 PCM, from its own thread, to one sink."""

    kind = "?"

    def __init__(self, rate: int = 48000, channels: int = 1, period_ms: int = 20):
        self.rate = rate
        self.channels = channels
        self.period = rate * period_ms // 1000  # samples per channel per chunk
        self._sink: PcmSink | None = None
        self._worker: WorkerThread | None = None
        self.chunks = 0

    def describe(self) -> dict:
        return {"kind": self.kind, "rate": self.rate, "channels": self.channels, "codec": "opus"}

    def start(self, sink: PcmSink) -> None:
        self._sink = sink
        self._open()
        # a read error (a USB microphone hiccup) reopens the device after a backoff
        self._worker = WorkerThread(f"{self.kind}-audio", self._run, restart=Backoff())
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        self._close()
        self._sink = None

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _read(self) -> bytes | None:
        """One chunk (period samples), b"" to retry, None when the source ended."""
        raise NotImplementedError

    def _reopen(self) -> None:
        """Called when the capture thread runs again after a failure."""

    def alive(self) -> bool:
        return self._worker is None or self._worker.alive()

    def _run(self, stop: threading.Event) -> None:
        if self._worker is not None and self._worker.failures:
            self._reopen()
        t0 = time.monotonic()
        pts = 0
        while not stop.is_set():
            data = self._read()
            if data is None:
                return
            if not data:
                continue
            # Real capture blocks in read(); ALSA's file plugin and the tone do not, so
            # pace against the clock (a no-op on real hardware).
            delay = t0 + pts / self.rate - time.monotonic()
            if delay > 0 and stop.wait(delay):
                return
            sink = self._sink
            if sink is not None:
                sink(data, pts)
            self.chunks += 1
            pts += len(data) // (2 * self.channels)


class ToneSource(AudioSource):
    """A sine tone (default 440 Hz): deterministic audio for tests and the demo."""

    kind = "tone"

    def __init__(
        self, rate: int = 48000, channels: int = 1, frequency: float = 440.0, amplitude: float = 0.3
    ):
        super().__init__(rate, channels)
        self.frequency = frequency
        self.amplitude = amplitude
        self._n = 0

    def _read(self) -> bytes:
        scale = 32767 * self.amplitude
        w = 2 * math.pi * self.frequency / self.rate
        samples = []
        for i in range(self._n, self._n + self.period):
            v = int(scale * math.sin(w * i))
            samples.extend([v] * self.channels)
        self._n += self.period
        return struct.pack(f"<{len(samples)}h", *samples)


class AlsaSource(AudioSource):
    """An ALSA capture device (e.g. `default`, `hw:1,0`, `plughw:CARD=Device`)."""

    kind = "alsa"

    def __init__(self, device: str = "default", rate: int = 48000, channels: int = 1):
        super().__init__(rate, channels)
        self.device = device
        self._pcm = None
        self.overruns = 0

    def describe(self) -> dict:
        return {**super().describe(), "device": self.device}

    def _open(self) -> None:
        try:
            import alsaaudio
        except ImportError:
            raise MediaError(
                "alsa: pyalsaaudio is not installed (pip install pyalsaaudio; needs libasound2-dev)"
            ) from None
        try:
            self._pcm = alsaaudio.PCM(
                type=alsaaudio.PCM_CAPTURE,
                mode=alsaaudio.PCM_NORMAL,
                device=self.device,
                rate=self.rate,
                channels=self.channels,
                format=alsaaudio.PCM_FORMAT_S16_LE,
                periodsize=self.period,
                periods=4,
            )
        except alsaaudio.ALSAAudioError as e:
            raise MediaError(
                f"alsa:{self.device}: cannot open for capture: {e} (list devices with `arecord -L`)"
            ) from None
        info = self._pcm.info()
        if info.get("rate") != self.rate or info.get("channels") != self.channels:
            self._pcm.close()
            self._pcm = None
            raise MediaError(
                f"alsa:{self.device}: device gives {info.get('rate')} Hz x{info.get('channels')}, "
                f"config asks {self.rate} Hz x{self.channels}; use a plughw: device or change "
                "media.audio_rate / media.audio_channels"
            )

    def _close(self) -> None:
        if self._pcm is not None:
            self._pcm.close()
            self._pcm = None

    def _reopen(self) -> None:
        self._close()
        self._open()  # a MediaError here is retried by the worker's backoff
        log.info("alsa:%s: capture reopened", self.device)

    def _read(self) -> bytes | None:
        pcm = self._pcm
        if pcm is None:
            return None
        import alsaaudio

        try:
            n, data = pcm.read()
        except alsaaudio.ALSAAudioError as e:
            raise MediaError(f"alsa:{self.device}: capture failed: {e}") from None
        if n < 0:  # overrun (-EPIPE): ALSA re-prepares the stream; count and go on
            self.overruns += 1
            return b""
        return data[: n * 2 * self.channels]


class WavSource(AudioSource):
    """A sound file (WAV, or anything FFmpeg reads), decoded and resampled to the
    source's rate once at open; played once, then the source ends (`view --talk file:`)."""

    kind = "file"

    def __init__(self, path: str, rate: int = 48000, channels: int = 1):
        super().__init__(rate, channels)
        self.path = path
        self._pcm = b""
        self._at = 0

    def describe(self) -> dict:
        return {**super().describe(), "path": self.path}

    def _open(self) -> None:
        layout = "mono" if self.channels == 1 else "stereo"
        try:
            with av.open(self.path) as container:
                if not container.streams.audio:
                    raise MediaError(f"file:{self.path}: no audio stream in it")
                resampler = av.AudioResampler(format="s16", layout=layout, rate=self.rate)
                out = bytearray()
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
            return None
        chunk = self._pcm[self._at : self._at + size]
        self._at += size
        return chunk.ljust(size, b"\0")


class AudioTrack(MediaStreamTrack):
    """One viewer's audio: s16 frames from the shared source, a small bounded buffer
    (oldest dropped: for audio a gap is better than growing latency)."""

    kind = "audio"

    def __init__(self, hub: AudioHub, max_chunks: int = 25):
        super().__init__()
        self._hub = hub
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
        hub = self._hub
        frame = av.AudioFrame(
            format="s16",
            layout="mono" if hub.channels == 1 else "stereo",
            samples=len(data) // (2 * hub.channels),
        )
        frame.planes[0].update(data)
        frame.sample_rate = hub.rate
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, hub.rate)
        self.frames += 1
        return frame

    def stop(self) -> None:
        super().stop()
        self._hub.unsubscribe(self)
        self._ready.set()


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
        track = AudioTrack(self)
        self._tracks.add(track)
        return track

    def unsubscribe(self, track: AudioTrack) -> None:
        self._tracks.discard(track)
