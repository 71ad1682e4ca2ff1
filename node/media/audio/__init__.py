"""Audio in: a capture source (ALSA microphone or a tone) shared by all viewers through
a hub; each viewer gets its own track of av.AudioFrame (s16 PCM) that aiortc encodes to
Opus. Split like video: source (capture), hub (the fan-out), track (per viewer)."""

from __future__ import annotations

from .hub import AudioHub
from .source import AlsaSource, AudioInfo, AudioSource, PcmSink, ToneSource
from .track import AudioTrack
from .wavfile import WavSource

__all__ = [
    "AlsaSource",
    "AudioHub",
    "AudioInfo",
    "AudioSource",
    "AudioTrack",
    "PcmSink",
    "ToneSource",
    "WavSource",
]
