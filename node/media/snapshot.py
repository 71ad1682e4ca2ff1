"""Snapshots: one still JPEG of the current picture, made only when asked.

The media path never decodes: access units go to the wire as they came. A snapshot is
the one exception, and a bounded one: it takes the next keyframe from the fan-out (as a
short-lived viewer, which asks the encoder for an IDR), decodes that single access unit
with PyAV's H.264 decoder and encodes it as a JPEG at the source's own size. Requests
closer together than `min_interval` get the last picture again, so nobody can make the
node decode continuously. The decode runs in a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import av

from .fanout import Fanout
from .source import MediaError

log = logging.getLogger(__name__)

# mjpeg quantiser steps (2 = best, 31 = worst): tried in order until the JPEG fits.
QUALITY_STEPS = (3, 5, 8, 12, 18, 25, 31)
KEYFRAME_WAIT = 6.0  # seconds: a source that cannot be asked for an IDR sends one per GOP


class SnapshotError(MediaError):
    """A snapshot could not be made (or is not allowed): a family of the error tree, its
    fixed texts are what a cmd/snapshot reply says; the detail stays in the log."""

    family = "snapshot"
    REASONS: ClassVar[Mapping[str, str]] = {
        "snapshots-off": "snapshots are off on this node ([snapshot] enabled = false in its config)",
        "unavailable": "the camera gave no picture in time; see the node's log",
        "decode-failed": "the camera's keyframe could not be decoded; see the node's log",
        "too-large": "the picture does not fit the node's [snapshot] max_bytes; see its log",
    }

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail, reason=reason)


@dataclass(frozen=True)
class Snapshot:
    jpeg: bytes
    width: int
    height: int
    taken_at: float  # time.time()
    quality: int  # the mjpeg quantiser used (lower is better)

    def describe(self) -> dict[str, int | float]:
        return {
            "bytes": len(self.jpeg),
            "width": self.width,
            "height": self.height,
            "at": int(self.taken_at),
        }


def keyframe_to_jpeg(access_unit: bytes, max_bytes: int) -> Snapshot:
    """Decode one IDR access unit (Annex-B, SPS/PPS in front) and encode it as a JPEG of
    at most `max_bytes`, stepping the quality down until it fits."""
    decoder = av.CodecContext.create("h264", "r")
    try:
        frames = decoder.decode(av.Packet(access_unit)) + decoder.decode(None)
    except av.FFmpegError as e:
        raise SnapshotError("decode-failed", f"the keyframe does not decode: {e}") from None
    if not frames:
        raise SnapshotError("decode-failed", "the keyframe decoded to no picture")
    picture = frames[-1].reformat(format="yuvj420p")
    for quality in QUALITY_STEPS:
        jpeg = _encode_jpeg(picture, quality)
        if len(jpeg) <= max_bytes:
            return Snapshot(jpeg, picture.width, picture.height, time.time(), quality)
    raise SnapshotError(
        "too-large",
        f"a {picture.width}x{picture.height} JPEG does not fit in {max_bytes} bytes "
        "(raise [snapshot] max_bytes and the broker's packet limit together)",
    )


def _encode_jpeg(picture: av.VideoFrame, quality: int) -> bytes:
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = picture.width, picture.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = fractions.Fraction(1, 1)
    # A fixed quantiser (qmin = qmax) is mjpeg's quality knob; bitexact leaves the
    # encoder's version string out of the file.
    encoder.options = {"qmin": str(quality), "qmax": str(quality), "flags": "+bitexact"}
    packets = encoder.encode(picture) + encoder.encode(None)
    return b"".join(bytes(p) for p in packets)


class Snapshotter:
    """Makes snapshots from the publisher's fan-out, rate limited. `take()` returns the
    new picture, or the last one when asked again within `min_interval` seconds."""

    def __init__(
        self,
        fanout: Fanout,
        *,
        min_interval: float = 5.0,
        max_bytes: int = 240_000,
        keyframe_wait: float = KEYFRAME_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.fanout = fanout
        self.min_interval = min_interval
        self.max_bytes = max_bytes
        self.keyframe_wait = keyframe_wait
        self._clock = clock
        self._last: Snapshot | None = None
        self._last_at = float("-inf")
        self._lock = asyncio.Lock()
        self.decodes = 0  # keyframes decoded (the cost the rate limit bounds)

    @property
    def last(self) -> Snapshot | None:
        return self._last

    async def take(self) -> Snapshot:
        async with self._lock:  # concurrent requests share one decode
            if self._last is not None and self._clock() - self._last_at < self.min_interval:
                return self._last
            access_unit = await self._next_keyframe()
            snapshot = await asyncio.to_thread(keyframe_to_jpeg, access_unit, self.max_bytes)
            self.decodes += 1
            self._last, self._last_at = snapshot, self._clock()
            log.info(
                "snapshot: %dx%d JPEG, %d bytes (quantiser %d)",
                snapshot.width,
                snapshot.height,
                len(snapshot.jpeg),
                snapshot.quality,
            )
            return snapshot

    async def _next_keyframe(self) -> bytes:
        """A viewer of its own starts on an IDR and asks the encoder for one on joining."""
        viewer = self.fanout.join("snapshot")
        try:
            au = await asyncio.wait_for(viewer.get(), self.keyframe_wait)
        except TimeoutError:
            raise SnapshotError(
                "unavailable", f"no keyframe from the camera within {self.keyframe_wait:.0f} s"
            ) from None
        finally:
            viewer.close()
        if au is None or not au.keyframe:
            raise SnapshotError("unavailable", "the camera stopped before a keyframe arrived")
        return au.data
