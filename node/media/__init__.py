"""Media: encoded video sources (hardware/passthrough H.264), audio, the fan-out to
viewers, the send-side publisher and the receive-side recorder.

Interface (docs/architecture.md "Media"):
  make_publisher(config.media) -> MediaPublisher: start(), stop(), attach(pc) -> Attachment,
  describe(); MediaReceiver(pc, record_path=None): summary(), close()."""

from .publisher import Attachment, MediaPolicy, MediaPublisher
from .receiver import MediaReceiver, Recorder, read_recorded_access_units
from .select import apply_overrides, make_publisher, parse_audio, parse_video
from .source import AccessUnit, EncodedVideoSource, MediaError, VideoInfo

__all__ = [
    "AccessUnit",
    "Attachment",
    "EncodedVideoSource",
    "MediaError",
    "MediaPolicy",
    "MediaPublisher",
    "MediaReceiver",
    "Recorder",
    "VideoInfo",
    "apply_overrides",
    "make_publisher",
    "parse_audio",
    "parse_video",
    "read_recorded_access_units",
]
