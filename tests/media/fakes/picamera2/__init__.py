"""A fake `picamera2` for machines without a Raspberry Pi camera. It follows the 0.3.38
contract the node relies on — Picamera2 configure/start_recording/stop_recording/close,
H264Encoder(bitrate, repeat, iperiod, ..., profile) with force_key_frame() and a `vd`
device file, an `Output` base class whose outputframe() is called with FIVE positional
arguments (frame, keyframe, timestamp, packet, audio) from the encoder's own thread,
platform.get_platform() — and feeds real H.264 access units read from a clip.

Test knobs (class attributes): Picamera2.clip = path of a raw Annex-B .h264 clip."""

from .picamera2 import Picamera2

__all__ = ["Picamera2"]
