"""Talkback: the node's speaker, and the one viewer allowed to talk through it.

A viewer with the `talk` permission may send one Opus track in its view-request.
aiortc decodes it (48 kHz); `Talkback` converts each frame to the speaker's format,
applies the volume and hands it to `Speaker`, whose own thread writes to ALSA.

Latency is bounded, never queued up: between the event loop and the playback thread at
most `max_latency_ms` of audio waits (default 200 ms); a chunk that arrives when that is
full pushes the oldest one out (counted in `late_dropped`). Below that sit aiortc's audio
jitter buffer (4 packets = 80 ms before playout starts) and ALSA's own buffer (4 periods
of 20 ms). One talker at a time: `claim()` fails while another call holds the speaker.

While someone talks, the camera's microphone hears the speaker, so every viewer (the
talker too) would hear the talker's own voice come back about one round trip later.
`media.talk_mutes_mic` (on by default) sends silence on the microphone's tracks while
the speaker plays (from its first chunk until HOLD seconds after its last): the
simplest remedy, half duplex. A talker that holds the speaker but sends nothing (the web
page's push-to-talk released) does not mute the camera."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack

from .audio.alsa import open_pcm
from .incoming import each_track, received
from .source import MediaError

log = logging.getLogger(__name__)

PERIOD_MS = 20
HOLD = 0.4  # seconds after the last talkback chunk before the microphone is heard again


class TalkBusy(MediaError):
    """Another call holds the speaker."""


class Speaker:
    """An ALSA playback device, opened while a talker holds it, fed by its own thread."""

    def __init__(
        self,
        device: str,
        *,
        rate: int = 48000,
        channels: int = 1,
        volume: float = 1.0,
        max_latency_ms: int = 200,
    ):
        self.device = device
        self.rate = rate
        self.channels = channels
        self.volume = volume
        self.period = rate * PERIOD_MS // 1000  # samples per channel per chunk
        self.max_chunks = max(1, max_latency_ms // PERIOD_MS)
        self.max_latency_ms = self.max_chunks * PERIOD_MS
        self._chunks: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._owner: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._listeners: list[Callable[[bool], None]] = []
        self._playing = False  # audio arrived within HOLD: listeners were told True
        self._last_play = 0.0
        self.late_dropped = 0
        self.written = 0  # chunks written to ALSA, over the node's life
        self.underruns = 0

    def describe(self) -> dict[str, object]:
        return {
            "device": self.device,
            "volume": self.volume,
            "max_latency_ms": self.max_latency_ms,
            "talker": self._owner is not None,
        }

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """`listener(True)` when talkback audio starts playing, `(False)` when it has been
        quiet for HOLD seconds or the talker released the speaker. Called from the event
        loop or the playback thread: keep it to setting a flag."""
        self._listeners.append(listener)

    @property
    def owner(self) -> str | None:
        return self._owner

    def claim(self, owner: str) -> None:
        """Take the speaker for `owner` (a call id); TalkBusy if someone else has it.
        Opens the ALSA device (MediaError naming it if that fails)."""
        if self._owner is not None:
            raise TalkBusy("another peer is talking on this node's speaker")
        pcm = self._open()
        self._owner = owner
        self._stop.clear()
        with self._cond:
            self._chunks.clear()
        self._thread = threading.Thread(target=self._run, args=(pcm,), name="speaker", daemon=True)
        self._thread.start()

    def release(self, owner: str) -> None:
        if self._owner != owner:
            return
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._owner = None
        self._set_playing(False)

    def _set_playing(self, playing: bool) -> None:
        if playing != self._playing:
            self._playing = playing
            self._notify(playing)

    def _notify(self, active: bool) -> None:
        for listener in list(self._listeners):
            try:
                listener(active)
            except Exception:
                log.exception("speaker listener failed")

    def play(self, pcm: bytes) -> None:
        """Queue one chunk of s16 PCM (any length); the oldest waiting chunk is dropped
        when `max_latency_ms` is already queued: late audio is worth nothing."""
        with self._cond:
            if len(self._chunks) >= self.max_chunks:
                self._chunks.popleft()
                self.late_dropped += 1
            self._chunks.append(pcm)
            self._last_play = time.monotonic()
            self._cond.notify()
        self._set_playing(True)

    def queued_ms(self) -> int:
        with self._cond:
            return sum(len(c) for c in self._chunks) * 1000 // (2 * self.channels * self.rate)

    def _open(self) -> Any:
        return open_pcm(
            self.device, playback=True, rate=self.rate, channels=self.channels, period=self.period
        )

    def _run(self, pcm: Any) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    while not self._chunks and not self._stop.is_set():
                        self._cond.wait(HOLD / 4)
                        if self._playing and time.monotonic() - self._last_play > HOLD:
                            self._set_playing(False)  # the talker went quiet
                    if self._stop.is_set():
                        return
                    chunk = self._chunks.popleft()
                try:
                    n = pcm.write(chunk)  # blocks on a real card: the card paces playback
                except Exception as e:
                    log.error("speaker alsa:%s: playback failed: %s", self.device, e)
                    return
                if n is not None and n < 0:
                    self.underruns += 1  # -EPIPE: ALSA re-prepares; a gap, not an error
                self.written += 1
        finally:
            with contextlib.suppress(Exception):
                pcm.close()


class Talkback:
    """Plays one call's incoming audio track on the speaker; close() releases it.
    Created before setRemoteDescription (it listens for the `track` event)."""

    def __init__(self, pc: RTCPeerConnection, speaker: Speaker, owner: str):
        self.speaker = speaker
        self.owner = owner
        speaker.claim(owner)
        self.audio_frames = 0
        self.audio_peak = 0.0
        self._resampler = av.AudioResampler(
            format="s16", layout="mono" if speaker.channels == 1 else "stereo", rate=speaker.rate
        )
        self._task: asyncio.Task[None] | None = None
        each_track(pc, self._on_track)

    def _on_track(self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None) -> None:
        if track.kind == "audio" and self._task is None:
            self._task = asyncio.ensure_future(self._pump(track))

    async def _pump(self, track: MediaStreamTrack) -> None:
        async for frame in received(track):
            if not isinstance(frame, av.AudioFrame):
                continue
            self.audio_frames += 1
            for out in self._resampler.resample(frame):
                data = bytes(out.planes[0])[: out.samples * 2 * self.speaker.channels]
                data = _scaled(data, self.speaker.volume)
                if self.audio_frames % 10 == 1:
                    samples = memoryview(data).cast("h")
                    peak = max((abs(s) for s in samples), default=0) / 32768
                    self.audio_peak = max(self.audio_peak, peak)
                self.speaker.play(data)

    def summary(self) -> dict[str, object]:
        return {
            "talk_frames": self.audio_frames,
            "talk_peak": round(self.audio_peak, 3),
            "late_dropped": self.speaker.late_dropped,
        }

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await asyncio.get_running_loop().run_in_executor(None, self.speaker.release, self.owner)


def _scaled(data: bytes, volume: float) -> bytes:
    if volume == 1.0:
        return data
    samples = array("h", data)
    for i, s in enumerate(samples):
        samples[i] = max(-32768, min(32767, int(s * volume)))
    return samples.tobytes()


__all__ = ["Speaker", "TalkBusy", "Talkback"]
