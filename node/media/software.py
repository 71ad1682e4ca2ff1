"""The labelled software H.264 fallback (PyAV libx264, constrained baseline, ultrafast,
zerolatency, SPS/PPS on every IDR). Used only where no hardware encoder exists (Pi 5,
a UVC camera without H.264) — the source says so in its info().label."""

from __future__ import annotations

import fractions
import threading
from typing import cast

import av
from av.video.codeccontext import VideoCodecContext

from .annexb import ParameterSetCache

MICROSECONDS = fractions.Fraction(1, 1_000_000)


class SoftwareH264Encoder:
    """Raw frames in, canonical Annex-B access units out. Thread-safe requests:
    request_keyframe() marks the next frame I (an IDR with x264's settings here);
    set_bitrate() re-opens the encoder at the next frame (x264 ignores a bitrate change
    on an open context), which also starts on an IDR."""

    def __init__(self, width: int, height: int, fps: int, bitrate: int, iperiod: int, codec: str = "libx264"):
        self.width, self.height, self.fps = width, height, fps
        self.iperiod = iperiod or fps
        self.codec = codec
        self._bitrate = bitrate
        self._ctx: VideoCodecContext | None = None
        self._lock = threading.Lock()
        self._keyframe = False
        self._reopen = True
        self.opened = 0
        # h264_v4l2m2m emits SPS/PPS once (or only as extradata): put them before every IDR
        self.parameter_sets = ParameterSetCache()

    def request_keyframe(self) -> None:
        with self._lock:
            self._keyframe = True

    def set_bitrate(self, bps: int) -> None:
        with self._lock:
            if abs(bps - self._bitrate) >= 0.1 * self._bitrate:
                self._bitrate = int(bps)
                self._reopen = True

    def _open(self) -> None:
        ctx = cast(VideoCodecContext, av.CodecContext.create(self.codec, "w"))
        ctx.width, ctx.height = self.width, self.height
        ctx.pix_fmt = "yuv420p"
        ctx.framerate = fractions.Fraction(self.fps)
        ctx.time_base = MICROSECONDS
        ctx.gop_size = self.iperiod
        ctx.bit_rate = self._bitrate
        ctx.max_b_frames = 0
        ctx.profile = "Constrained Baseline"
        if self.codec == "libx264":
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "forced-idr": "1",
                "x264-params": f"keyint={self.iperiod}:scenecut=0:repeat-headers=1",
            }
        ctx.open()
        if ctx.extradata:
            self.parameter_sets.learn(ctx.extradata)
        self._ctx = ctx
        self.opened += 1

    def encode(self, frame: av.VideoFrame, pts_us: int) -> list[bytes]:
        with self._lock:
            force, self._keyframe = self._keyframe, False
            reopen, self._reopen = self._reopen, False
        if reopen:
            self._ctx = None
            self._open()
        if frame.format.name != "yuv420p" or frame.width != self.width or frame.height != self.height:
            frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        frame.pts, frame.time_base = pts_us, MICROSECONDS
        frame.pict_type = av.video.frame.PictureType.I if force else av.video.frame.PictureType.NONE
        ctx = self._ctx
        if ctx is None:
            raise RuntimeError("the software encoder is closed")
        return [self.parameter_sets.prepare(bytes(p)) for p in ctx.encode(frame)]

    def close(self) -> None:
        self._ctx = None
