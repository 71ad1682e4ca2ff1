"""An ALSA device opened for 20 ms periods of s16 PCM at exactly the rate and channel
count asked (the microphone in AlsaSource, the speaker in Speaker), or a MediaError
that names the device and what to change."""

from __future__ import annotations

from typing import Any

from ..source import MediaError


def open_pcm(device: str, *, playback: bool, rate: int, channels: int, period: int) -> Any:
    """The opened pyalsaaudio PCM (capture, or playback)."""
    who = "speaker" if playback else "alsa"
    label = f"speaker alsa:{device}" if playback else f"alsa:{device}"
    try:
        import alsaaudio
    except ImportError:
        raise MediaError(
            f"{who}: pyalsaaudio is not installed (pip install pyalsaaudio; needs libasound2-dev)"
        ) from None
    what, lister = ("playback", "aplay -L") if playback else ("capture", "arecord -L")
    try:
        pcm = alsaaudio.PCM(
            type=alsaaudio.PCM_PLAYBACK if playback else alsaaudio.PCM_CAPTURE,
            mode=alsaaudio.PCM_NORMAL,
            device=device,
            rate=rate,
            channels=channels,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=period,
            periods=4,
        )
    except alsaaudio.ALSAAudioError as e:
        raise MediaError(f"{label}: cannot open for {what}: {e} (list devices with `{lister}`)") from None
    info = pcm.info()
    if info.get("rate") != rate or info.get("channels") != channels:
        pcm.close()
        fix = "" if playback else " or change media.audio_rate / media.audio_channels"
        verb = "plays" if playback else "gives"
        raise MediaError(
            f"{label}: device {verb} {info.get('rate')} Hz x{info.get('channels')}, not "
            f"{rate} Hz x{channels}; use a plughw: device{fix}"
        )
    return pcm


__all__ = ["open_pcm"]
