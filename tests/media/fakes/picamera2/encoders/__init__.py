"""Fake picamera2.encoders: Encoder, H264Encoder (the VideoCore encoder), LibavH264Encoder."""

import threading
import time

import av

from ..outputs import Output


class Encoder:
    def __init__(self):
        self._output = []
        self._output_lock = threading.Lock()
        self._running = False

    @property
    def output(self):
        return self._output

    @output.setter
    def output(self, value):
        if not isinstance(value, list):
            value = [value]
        for out in value:
            if not isinstance(out, Output):
                raise RuntimeError("Must pass Output")
        self._output = value

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        # 0.3.38 fans out with five positional arguments
        with self._output_lock:
            for out in self._output:
                out.outputframe(frame, keyframe, timestamp, packet, audio)


def _clip_access_units(path):
    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        return [bytes(p) for p in container.demux(stream) if p.size]
    finally:
        container.close()


class H264Encoder(Encoder):
    """Stands in for the V4L2 hardware encoder: a poll thread delivering one access unit
    per camera frame, SPS/PPS inline on IDRs (the clip has them: repeat=True)."""

    def __init__(self, bitrate=None, repeat=True, iperiod=None, framerate=None,
                 enable_sps_framerate=False, qp=None, profile=None):
        super().__init__()
        self.bitrate = bitrate
        self.repeat = repeat
        self.iperiod = iperiod
        self.profile = profile
        self.vd = None
        self._key_frames_requested = 0
        self.forced = 0
        self.thread = None

    def force_key_frame(self):
        self._key_frames_requested += 1

    def _start(self, clip, fps):
        self.vd = open("/dev/null", "rb+", buffering=0)  # the real one opens /dev/video11
        self._aus = _clip_access_units(clip)
        self._fps = fps
        self._running = True
        self.thread = threading.Thread(target=self.thread_poll, daemon=True, name="fake-v4l2-poll")
        self.thread.start()

    def _stop(self):
        self._running = False
        if self.thread is not None:
            self.thread.join(5)
        if self.vd is not None:
            self.vd.close()

    @staticmethod
    def _is_idr(au):
        return any((au[i + 3] & 0x1F) == 5 for i in range(len(au) - 3)
                   if au[i:i + 3] == b"\x00\x00\x01")

    def thread_poll(self):
        idr = [i for i, au in enumerate(self._aus) if self._is_idr(au)]
        i, n = idr[0], 0
        t0 = time.monotonic()
        while self._running:
            if self._key_frames_requested:
                self._key_frames_requested = 0
                if i not in idr:  # the hardware makes the next frame an IDR
                    i = next((j for j in idr if j >= i), idr[0])
                    self.forced += 1
            delay = t0 + n / self._fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            au = self._aus[i]
            self.outputframe(au, self._is_idr(au), int(n * 1_000_000 / self._fps))
            n += 1
            i = (i + 1) % len(self._aus)


class LibavH264Encoder(Encoder):
    """picamera2's software encoder (what H264Encoder becomes on a Pi 5)."""

    def __init__(self, bitrate=None, repeat=True, iperiod=30, framerate=30, qp=None, profile=None):
        super().__init__()


# Like the real package: H264Encoder is the hardware class on VC4 boards.
__all__ = ["Encoder", "H264Encoder", "LibavH264Encoder"]
