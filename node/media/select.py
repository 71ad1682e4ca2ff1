"""Choosing sources: parse `--video` / `--audio` strings and build the publisher from
config.media plus the board profile's defaults and bounds."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .audio import AlsaSource, AudioSource, ToneSource, WavSource
from .availability import GuardedSource, UnconfiguredSource
from .publisher import MediaPolicy, MediaPublisher
from .source import EncodedVideoSource, MediaError

if TYPE_CHECKING:
    from ..config import MediaSection
    from ..profiles import BoardProfile

log = logging.getLogger(__name__)

VIDEO_FORMS = "testsrc, file:PATH, rtsp://..., picamera2, v4l2:/dev/videoN"
AUDIO_FORMS = "tone, alsa:DEVICE, none"
TALK_FORMS = "tone, alsa:DEVICE, file:PATH.wav"
SPEAKER_FORMS = "alsa:DEVICE or none"


@dataclass(frozen=True)
class VideoSpec:
    kind: str  # testsrc | file | rtsp | picamera2 | v4l2
    target: str = ""  # path, URL or device


@dataclass(frozen=True)
class AudioSpec:
    kind: str  # tone | alsa | none
    device: str = ""


def parse_video(text: str) -> VideoSpec:
    t = text.strip()
    if t == "testsrc":
        return VideoSpec("testsrc")
    if t == "picamera2":
        return VideoSpec("picamera2")
    if t.startswith("file:") and len(t) > 5:
        return VideoSpec("file", t[5:])
    if t.startswith(("rtsp://", "rtsps://")):
        check_rtsp_url(t)
        return VideoSpec("rtsp", t)
    if t.startswith("v4l2:") and t[5:].startswith("/dev/"):
        return VideoSpec("v4l2", t[5:])
    raise MediaError(f"video source {text!r} not understood; use one of: {VIDEO_FORMS}")


def check_rtsp_url(url: str) -> None:
    """An rtsp(s):// URL must name its camera by IP address: a host name would make
    FFmpeg resolve it, and the node makes no DNS lookups (it sends no DNS, STUN or mDNS packet, ever)."""
    from .rtsp import redact_urls  # error messages never show the camera's password

    shown = redact_urls(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError as e:
        raise MediaError(
            f"video source {shown!r}: not a valid URL ({e}); use rtsp://USER:PASS@192.0.2.10:554/STREAM"
        ) from None
    if not host:
        raise MediaError(
            f"video source {shown!r} has no camera address; use rtsp://USER:PASS@192.0.2.10:554/STREAM"
        )
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise MediaError(
            f"video source {shown!r}: {host!r} is a host name, and the node makes no DNS "
            "lookups: give the camera's IP (e.g. rtsp://USER:PASS@192.0.2.10:554/STREAM, "
            "IPv6 in brackets: rtsp://[fd00::10]/STREAM)"
        ) from None


def parse_audio(text: str) -> AudioSpec:
    t = text.strip()
    if t in ("tone", "none"):
        return AudioSpec(t)
    if t.startswith("alsa:") and len(t) > 5:
        return AudioSpec("alsa", t[5:])
    raise MediaError(f"audio source {text!r} not understood; use one of: {AUDIO_FORMS}")


def parse_talk(text: str) -> AudioSpec:
    """`view --talk`: what the viewer sends to the camera's speaker."""
    t = text.strip()
    if t.startswith("file:") and len(t) > 5:
        return AudioSpec("file", t[5:])
    if t != "none":
        with contextlib.suppress(MediaError):
            return parse_audio(t)
    raise MediaError(f"talk source {text!r} not understood; use one of: {TALK_FORMS}")


def parse_speaker(text: str) -> str:
    """`media.speaker` / `run --speaker`: the ALSA playback device, or "" for none."""
    t = text.strip()
    if t in ("", "none"):
        return ""
    if t.startswith("alsa:") and len(t) > 5:
        return t[5:]
    raise MediaError(f"speaker {text!r} not understood; use {SPEAKER_FORMS}")


@dataclass(frozen=True)
class VideoSettings:
    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate: int = 1_500_000
    iperiod: int = 30


def apply_overrides(
    media_config: MediaSection,
    video: str | None = None,
    audio: str | None = None,
    speaker: str | None = None,
) -> None:
    """`--video` / `--audio` / `--speaker` from the command line onto config.media,
    validated first so a typo is an error naming the accepted forms."""
    if speaker:
        parse_speaker(speaker)
        media_config.speaker = speaker
    if video:
        parse_video(video)
        media_config.video = video
    if audio:
        parse_audio(audio)
        media_config.audio = audio


def make_video_source(spec: VideoSpec, s: VideoSettings) -> EncodedVideoSource:
    if spec.kind == "testsrc":
        from .testsrc import TestPatternSource

        # The pattern is encoded once at start-up: keep it small so that takes a moment.
        return TestPatternSource(
            min(s.width, 640), min(s.height, 480), min(s.fps, 30), gop=min(s.iperiod, 60) or 30
        )
    if spec.kind == "file":
        from .filesource import FileSource

        return FileSource(spec.target)
    if spec.kind == "rtsp":
        from .rtsp import RtspSource

        return RtspSource(spec.target)
    if spec.kind == "picamera2":
        from .picamera2 import Picamera2Source

        return Picamera2Source(s.width, s.height, s.fps, s.bitrate, s.iperiod)
    if spec.kind == "v4l2":
        from .v4l2 import V4l2Source

        return V4l2Source(spec.target, s.width, s.height, s.fps, s.bitrate, s.iperiod)
    raise MediaError(f"unknown video source kind {spec.kind}")


def make_guarded_video(
    configured: str, profile_default: str, settings: VideoSettings, profile: BoardProfile | None = None
) -> GuardedSource:
    """The video source, wrapped so that one that is absent or fails is an error state
    (retried with backoff), never replaced: the test pattern only when configured."""
    text = configured or profile_default
    if not text:
        name = profile.name if profile is not None else "(none)"
        inner: EncodedVideoSource = UnconfiguredSource(
            f"no video source: board profile {name} has none by default; set media.video "
            f"in config.toml ({VIDEO_FORMS})"
        )
    else:
        inner = make_video_source(parse_video(text), settings)
    return GuardedSource(inner)


def make_audio_source(spec: AudioSpec, rate: int = 48000, channels: int = 1) -> AudioSource | None:
    if spec.kind == "none":
        return None
    if spec.kind == "tone":
        return ToneSource(rate, channels)
    if spec.kind == "file":
        return WavSource(spec.device, rate, channels)
    return AlsaSource(spec.device, rate, channels)


def _board_profile(media_config: MediaSection) -> BoardProfile | None:
    """The matching board profile's video/audio tables, or None without profiles."""
    try:
        from ..profiles import Machine, match_profile
    except ImportError:
        return None
    try:
        return match_profile(Machine.probe(), media_config.profile, media_config.video).profile
    except Exception as e:  # a broken profile must not stop explicit sources from working
        log.warning("board profile not used: %s", e)
        return None


def make_publisher(media_config: MediaSection, *, profile: BoardProfile | None = None) -> MediaPublisher:
    """config.media (+ the board profile: defaults for empty/0 fields, bitrate bounds)
    -> an unstarted MediaPublisher. Without a video source (none configured, none in the
    profile) the video is unavailable, never a test pattern; audio falls back to a tone."""
    profile = profile if profile is not None else _board_profile(media_config)
    pv = profile.video if profile is not None else None
    settings = VideoSettings(
        width=media_config.width or (pv.width if pv else 1280),
        height=media_config.height or (pv.height if pv else 720),
        fps=media_config.fps or (pv.fps if pv else 30),
        bitrate=media_config.bitrate or (pv.bitrate if pv else 1_500_000),
        iperiod=media_config.iperiod or (pv.iperiod if pv else 30),
    )
    policy = MediaPolicy(
        start_bitrate=settings.bitrate,
        min_bitrate=pv.min_bitrate if pv else 250_000,
        max_bitrate=pv.max_bitrate if pv else max(4_000_000, settings.bitrate),
    )
    video = make_guarded_video(media_config.video, pv.source if pv else "", settings, profile)
    audio_text = media_config.audio
    optional = not audio_text
    if not audio_text:
        audio_text = (profile.audio.source if profile is not None else "") or "tone"
    audio = make_audio_source(parse_audio(audio_text), media_config.audio_rate, media_config.audio_channels)
    speaker = None
    device = parse_speaker(media_config.speaker)
    if device:
        from .speaker import Speaker

        speaker = Speaker(
            device, volume=media_config.speaker_volume, max_latency_ms=media_config.talk_latency_ms
        )
    return MediaPublisher(
        video,
        audio,
        policy,
        audio_optional=optional,
        speaker=speaker,
        talk_mutes_mic=media_config.talk_mutes_mic,
    )
