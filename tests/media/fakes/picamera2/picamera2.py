"""Fake picamera2.Picamera2."""

import time

from .encoders import H264Encoder


class Picamera2:
    clip = None  # raw Annex-B .h264 the fake "camera + encoder" plays
    instances = []

    def __init__(self, camera_num=0):
        if Picamera2.clip is None:
            raise RuntimeError(f"No camera number {camera_num} found")
        self.camera_num = camera_num
        self.config = None
        self.encoder = None
        self.started = False
        self.closed = False
        self._t0 = None
        Picamera2.instances.append(self)

    @staticmethod
    def global_camera_info():
        """0.3.38: one dict per camera libcamera sees (Model, Location, Rotation, Id, Num),
        without opening any; none when the fake has no clip (no camera attached)."""
        if Picamera2.clip is None:
            return []
        return [
            {
                "Model": "imx708",
                "Location": 2,
                "Rotation": 180,
                "Id": "/base/soc/i2c0mux/i2c@1/imx708@1a",
                "Num": 0,
            }
        ]

    def create_video_configuration(self, main=None, controls=None, **kwargs):
        main = dict(main or {})
        main.setdefault("size", (1280, 720))
        main.setdefault("format", "XBGR8888")
        main["stride"] = main["size"][0]
        return {"main": main, "controls": dict(controls or {}), "buffer_count": 6}

    def configure(self, config):
        self.config = config

    def camera_configuration(self):
        return self.config

    def _fps(self):
        return float(self.config["controls"].get("FrameRate", 30))

    def start(self):
        self.started = True
        self._t0 = time.monotonic()

    def stop(self):
        self.started = False

    def start_encoder(self, encoder, output=None):
        if output is not None:
            encoder.output = output
        for out in encoder.output:
            out.start()
        self.encoder = encoder
        encoder._start(Picamera2.clip, self._fps())

    def stop_encoder(self):
        if self.encoder is not None:
            self.encoder._stop()
            for out in self.encoder.output:
                out.stop()
            self.encoder = None

    def start_recording(self, encoder, output, **kwargs):
        if not isinstance(encoder, H264Encoder):
            raise TypeError("the fake only implements the hardware H264Encoder")
        self.start_encoder(encoder, output)
        self.start()

    def stop_recording(self):
        self.stop()
        self.stop_encoder()

    def capture_buffer(self, name="main"):
        """One YUV420 frame (stride = width), paced at the configured frame rate."""
        w, h = self.config["main"]["size"]
        n = getattr(self, "_n", 0)
        self._n = n + 1
        delay = self._t0 + n / self._fps() - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        luma = bytes(((x + y + n * 4) & 0xFF) for y in range(h) for x in range(w))
        return luma + bytes([128]) * (w * h // 2)

    def close(self):
        self.closed = True
