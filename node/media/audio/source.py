"""Audio capture sources: an ALSA microphone (pyalsaaudio, on its own thread) or a
tone for tests; each delivers 20 ms chunks of s16 PCM to one sink."""

from __future__ import annotations

import logging
import math
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Protocol

from ..source import Backoff, MediaError, WorkerThread
from .alsa import open_pcm

log = logging.getLogger(__name__)

PcmSink = Callable[[bytes, int], None]  # (s16 interleaved samples, pts in samples)


@dataclass(frozen=True)
class AudioInfo:
    """What an audio source delivers (the audio side of VideoInfo)."""

    kind: str
    rate: int
    channels: int
    codec: str = "opus"  # what aiortc encodes it to on the wire
    device: str | None = None  # ALSA only

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}


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

    def info(self) -> AudioInfo:
        return AudioInfo(kind=self.kind, rate=self.rate, channels=self.channels)

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


class _Pcm(Protocol):
    """What AlsaSource uses of pyalsaaudio's PCM."""

    def read(self) -> tuple[int, bytes]: ...
    def info(self) -> dict[str, object]: ...
    def close(self) -> None: ...


class AlsaSource(AudioSource):
    """An ALSA capture device (e.g. `default`, `hw:1,0`, `plughw:CARD=Device`)."""

    kind = "alsa"

    def __init__(self, device: str = "default", rate: int = 48000, channels: int = 1):
        super().__init__(rate, channels)
        self.device = device
        self._pcm: _Pcm | None = None
        self.overruns = 0

    def info(self) -> AudioInfo:
        return replace(super().info(), device=self.device)

    def _open(self) -> None:
        self._pcm = open_pcm(
            self.device, playback=False, rate=self.rate, channels=self.channels, period=self.period
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


__all__ = ["AlsaSource", "AudioInfo", "AudioSource", "PcmSink", "ToneSource"]
