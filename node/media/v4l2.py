"""`v4l2:/dev/videoN` — a V4L2 camera through PyAV.

A camera that encodes H.264 itself (many UVC webcams) is demuxed and passed through.
Otherwise raw frames go to the V4L2 M2M hardware encoder (`h264_v4l2m2m`), which emits
SPS/PPS only once: they are cached and put before every IDR. Without an M2M encoder
the labelled libx264 software fallback is used."""

from __future__ import annotations

import logging
import threading
import time

import av
from av.container import InputContainer

from .annexb import ParameterSetCache
from .software import SoftwareH264Encoder
from .source import (
    HARDWARE,
    PASSTHROUGH,
    SOFTWARE_FALLBACK,
    Backoff,
    EncodedVideoSource,
    MediaError,
    WorkerThread,
)

log = logging.getLogger(__name__)


class V4l2Source(EncodedVideoSource):
    kind = "v4l2"

    def __init__(
        self,
        device: str,
        width: int = 1280,
        height: int = 720,
        fps: int = 30,
        bitrate: int = 2_000_000,
        iperiod: int = 30,
        encoder: str = "h264_v4l2m2m",
    ):
        super().__init__()
        self.device = device
        self.width, self.height, self.fps = width, height, fps
        self.bitrate = bitrate
        self.iperiod = iperiod or fps
        self.encoder_name = encoder
        self._encoder: SoftwareH264Encoder | None = None
        self._input_format: str | None = "h264"  # what the last start opened
        self._worker: WorkerThread | None = None
        self._container: InputContainer | None = None
        self._info.fps = float(fps)

    def _open(self, input_format: str | None) -> InputContainer:
        options = {"video_size": f"{self.width}x{self.height}", "framerate": str(self.fps)}
        if input_format:
            options["input_format"] = input_format
        return av.open(self.device, format="v4l2", options=options, timeout=10)

    def _start(self) -> None:
        # a restart decides afresh: the camera may give H.264 now where it gave raw before
        self._encoder = None
        self._input_format = "h264"
        try:
            self._container = self._open("h264")
            self._info.label = PASSTHROUGH
            self._info.note = "the camera's own H.264, demuxed and passed through"
        except av.FFmpegError:
            try:
                self._container = self._open(None)
            except av.FFmpegError as e:
                raise MediaError(f"v4l2:{self.device}: cannot open the camera: {e}") from None
            self._input_format = None
            self._encoder = self._make_encoder()
        self._worker = WorkerThread("v4l2-source", self._run, restart=Backoff())
        self._worker.start()

    def _make_encoder(self) -> SoftwareH264Encoder:
        encoder = SoftwareH264Encoder(
            self.width, self.height, self.fps, self.bitrate, self.iperiod, codec=self.encoder_name
        )
        try:
            encoder.encode(av.VideoFrame(self.width, self.height, "yuv420p"), 0)
            encoder.request_keyframe()
            self._info.label = HARDWARE
            self._info.note = f"V4L2 M2M hardware encoder ({self.encoder_name})"
        except (av.FFmpegError, ValueError) as e:
            log.warning(
                "v4l2: no hardware encoder (%s: %s); encoding in software with libx264", self.encoder_name, e
            )
            encoder = SoftwareH264Encoder(self.width, self.height, self.fps, self.bitrate, self.iperiod)
            self._info.label = SOFTWARE_FALLBACK
            self._info.note = "camera gives raw frames and no M2M encoder exists: libx264"
        return encoder

    def _run(self, stop: threading.Event) -> None:
        container = self._container
        if container is None:  # restarted after a failure: the last run closed it
            container = self._container = self._open(self._input_format)
        stream = container.streams.video[0]
        encoder = self._encoder  # _stop() clears the attribute
        t0 = time.monotonic()
        try:
            if encoder is None:
                cache = ParameterSetCache(stream.codec_context.extradata)
                for packet in container.demux(stream):
                    if stop.is_set():
                        return
                    if packet.size:
                        pts_us = int((time.monotonic() - t0) * 1_000_000)
                        self._emit(cache.prepare(bytes(packet)), pts_us)
            else:
                for frame in container.decode(stream):  # raw/MJPEG unpacking, not encoding
                    if stop.is_set():
                        return
                    pts_us = int((time.monotonic() - t0) * 1_000_000)
                    for au in encoder.encode(frame, pts_us):
                        self._emit(au, pts_us)
        finally:
            self._container = None
            container.close()

    def _stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        self._encoder = None

    def request_keyframe(self) -> None:
        if self._encoder is not None:
            self._encoder.request_keyframe()

    def set_bitrate(self, bps: int) -> None:
        self.bitrate = int(bps)
        if self._encoder is not None:
            self._encoder.set_bitrate(bps)
