"""`picamera2` — the Raspberry Pi camera through picamera2 (0.3.38 contract).

VC4 boards (Zero 2 W, 3, 4, CM4): picamera2's H264Encoder drives the VideoCore V4L2
encoder (/dev/video11); an `Output` subclass with the five-argument outputframe()
receives each access unit (Annex-B, SPS/PPS inline with repeat=True) on the encoder's
thread. IDR: force_key_frame(). Bitrate at runtime: VIDIOC_S_CTRL(BITRATE) on the
encoder's fd (encoder.vd) — picamera2 reads its `bitrate` only at start.

Pi 5 (no H.264 block): picamera2 silently swaps in its libx264 encoder, whose
force_key_frame() breaks with PyAV >= 14. This source says so, captures raw YUV420 from
picamera2 and encodes with the labelled software fallback (software.py) instead."""

from __future__ import annotations

import fcntl
import logging
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import av

from .annexb import normalize
from .software import SoftwareH264Encoder
from .source import HARDWARE, SOFTWARE_FALLBACK, Backoff, EncodedVideoSource, MediaError, WorkerThread

log = logging.getLogger(__name__)

# linux/videodev2.h (v4l2-controls.h): struct v4l2_control { __u32 id; __s32 value; }
VIDIOC_S_CTRL = 0xC008561A  # _IOWR('V', 26, struct v4l2_control)
V4L2_CID_MPEG_VIDEO_BITRATE = 0x009909CF  # V4L2_CID_CODEC_BASE + 207


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


Ioctl_fd = int | _HasFileno
IoctlFn = Callable[[Ioctl_fd, int, bytearray], object]


def v4l2_set_control(fd: Ioctl_fd, control_id: int, value: int, ioctl: IoctlFn = fcntl.ioctl) -> None:
    """VIDIOC_S_CTRL on an open V4L2 device (file object or descriptor)."""
    ioctl(fd, VIDIOC_S_CTRL, bytearray(struct.pack("=Ii", control_id, int(value))))


def _import_picamera2() -> tuple[Any, Any, Any, Any]:  # picamera2 has no type information
    try:
        import picamera2
        from picamera2 import Picamera2, encoders
        from picamera2.outputs import Output
    except ImportError as e:
        raise MediaError(
            f"picamera2: cannot import it ({e}). On Raspberry Pi OS: "
            "`sudo apt install python3-picamera2` and a venv with --system-site-packages"
        ) from None
    return picamera2, Picamera2, encoders, Output


def _is_pi5(picamera2_module: object) -> bool:
    try:
        from picamera2.platform import Platform, get_platform

        return bool(get_platform() == Platform.PISP)
    except Exception:
        return False


class Picamera2Source(EncodedVideoSource):
    kind = "picamera2"

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: int = 30,
        bitrate: int = 2_000_000,
        iperiod: int = 30,
        camera: int = 0,
        ioctl: IoctlFn = fcntl.ioctl,
    ):
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.bitrate = bitrate
        self.iperiod = iperiod or fps
        self.camera = camera
        self._ioctl = ioctl
        self._picam2: Any = None  # picamera2 objects (untyped library)
        self._encoder: Any = None
        self._software: SoftwareH264Encoder | None = None
        self._worker: WorkerThread | None = None
        self._lock = threading.Lock()
        self._info.fps = float(fps)
        self._info.width, self._info.height = width, height

    # --- lifecycle ----------------------------------------------------------------------

    def _start(self) -> None:
        picamera2, Picamera2, encoders, Output = _import_picamera2()
        hw_class = getattr(encoders, "H264Encoder", None)
        software_class = getattr(encoders, "LibavH264Encoder", None)
        hardware = hw_class is not None and hw_class is not software_class and not _is_pi5(picamera2)
        try:
            self._picam2 = Picamera2(self.camera)
        except (RuntimeError, IndexError) as e:
            raise MediaError(
                f"picamera2: no camera {self.camera}: {e} (check the ribbon cable "
                "and `rpicam-hello --list-cameras`)"
            ) from None
        config = self._picam2.create_video_configuration(
            main={"size": (self.width, self.height), "format": "YUV420"},
            controls={"FrameRate": self.fps},
        )
        self._picam2.configure(config)
        if hardware:
            self._start_hardware(hw_class, Output)
        else:
            self._start_software()

    def _start_hardware(self, H264Encoder: Any, Output: Any) -> None:
        source = self

        class _Sink(Output):  # type: ignore[misc]  # picamera2 is untyped
            # picamera2 >= 0.3.23 calls outputframe(frame, keyframe, timestamp, packet, audio)
            def outputframe(
                self,
                frame: bytes | None,
                keyframe: bool = True,
                timestamp: int | None = None,
                packet: object = None,
                audio: bool = False,
            ) -> None:
                if audio or frame is None:
                    return
                source._emit(normalize(bytes(frame)), int(timestamp or 0))

        try:
            self._encoder = H264Encoder(
                bitrate=self.bitrate, repeat=True, iperiod=self.iperiod, profile="constrained baseline"
            )
        except TypeError:
            # picamera2 before `profile` existed: the driver's default is High profile,
            # which WebRTC peers negotiating 42e01f may refuse to decode
            log.warning(
                "picamera2: this version cannot select the H.264 profile; the stream "
                "may be High profile (upgrade picamera2 to 0.3.38)"
            )
            self._encoder = H264Encoder(bitrate=self.bitrate, repeat=True, iperiod=self.iperiod)
        self._info.label = HARDWARE
        self._info.note = "VideoCore H.264 encoder via picamera2; the CPU does not encode"
        self._picam2.start_recording(self._encoder, _Sink())

    def _start_software(self) -> None:
        log.warning(
            "picamera2: this board has no H.264 hardware encoder (Raspberry Pi 5); "
            "encoding in software with libx264 (more CPU, labelled software-fallback)"
        )
        self._info.label = SOFTWARE_FALLBACK
        self._info.note = "no H.264 hardware encoder on this board (Pi 5): libx264 software fallback"
        self._software = SoftwareH264Encoder(self.width, self.height, self.fps, self.bitrate, self.iperiod)
        self._picam2.start()
        self._worker = WorkerThread("picamera2-software", self._run_software, restart=Backoff())
        self._worker.start()

    def _run_software(self, stop: threading.Event) -> None:
        t0 = time.monotonic()
        stride = self._stride()
        while not stop.is_set():
            buffer = self._picam2.capture_buffer("main")
            pts_us = int((time.monotonic() - t0) * 1_000_000)
            frame = self._yuv420_frame(bytes(buffer), stride)
            software = self._software
            if software is None:  # stopped meanwhile
                return
            for au in software.encode(frame, pts_us):
                self._emit(au, pts_us)

    def _stride(self) -> int:
        try:
            return int(self._picam2.camera_configuration()["main"]["stride"])
        except Exception:
            return self.width

    def _yuv420_frame(self, data: bytes, stride: int) -> av.VideoFrame:
        w, h = self.width, self.height
        frame = av.VideoFrame(w, h, "yuv420p")
        offset = 0
        for plane, (pw, ph, ps) in zip(
            frame.planes,
            ((w, h, stride), (w // 2, h // 2, stride // 2), (w // 2, h // 2, stride // 2)),
            strict=True,
        ):
            rows = bytearray()
            for y in range(ph):
                rows += data[offset + y * ps : offset + y * ps + pw]
                rows += bytes(plane.line_size - pw)
            plane.update(bytes(rows))
            offset += ph * ps
        return frame

    def _stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._picam2 is not None:
            try:
                if self._encoder is not None:
                    self._picam2.stop_recording()
                else:
                    self._picam2.stop()
            finally:
                self._picam2.close()
                self._picam2 = None
                self._encoder = None
                self._software = None

    # --- control ------------------------------------------------------------------------

    def request_keyframe(self) -> None:
        if self._encoder is not None:
            self._encoder.force_key_frame()
        elif self._software is not None:
            self._software.request_keyframe()

    def set_bitrate(self, bps: int) -> None:
        self.bitrate = int(bps)
        if self._software is not None:
            self._software.set_bitrate(bps)
            return
        vd = getattr(self._encoder, "vd", None)
        if vd is None:
            return  # not started: used as the start bitrate
        try:
            v4l2_set_control(vd, V4L2_CID_MPEG_VIDEO_BITRATE, bps, self._ioctl)
        except OSError as e:
            log.warning("picamera2: cannot change the encoder bitrate to %d: %s", bps, e)
