"""config.toml's sections for what the node captures and does: media, calls, the doorbell
and snapshots (node/config.py composes them with node/config_network.py's)."""

from typing import Annotated

from msgspec import Meta, Struct


class MediaSection(Struct, forbid_unknown_fields=True):
    profile: Annotated[
        str, Meta(description="Board profile from firmware_config/ (auto = detect this board).")
    ] = "auto"
    video: Annotated[
        str,
        Meta(
            description="Video source: testsrc, file:PATH, rtsp://..., picamera2, v4l2:/dev/videoN "
            "(empty = the board profile's default). A camera that is absent or fails is reported "
            "unavailable and retried, never replaced: the test pattern only when set to testsrc."
        ),
    ] = ""
    audio: Annotated[
        str,
        Meta(description="Audio source: tone, alsa:DEVICE or none (empty = the board profile's default)."),
    ] = ""
    width: Annotated[int, Meta(ge=0, description="Video width in pixels (0 = the profile's).")] = 0
    height: Annotated[int, Meta(ge=0, description="Video height in pixels (0 = the profile's).")] = 0
    fps: Annotated[int, Meta(ge=0, le=120, description="Frames per second (0 = the profile's).")] = 0
    bitrate: Annotated[int, Meta(ge=0, description="Start bitrate in bit/s (0 = the profile's).")] = 0
    iperiod: Annotated[int, Meta(ge=0, description="Frames between IDRs (0 = the profile's).")] = 0
    audio_rate: Annotated[int, Meta(ge=8000, le=192000, description="ALSA capture rate in Hz.")] = 48000
    audio_channels: Annotated[int, Meta(ge=1, le=2, description="ALSA capture channels (1 or 2).")] = 1
    speaker: Annotated[
        str,
        Meta(
            description="Talkback speaker: alsa:DEVICE, or empty for none (no peer can talk). "
            "`media-node profile show` names the board's usual device."
        ),
    ] = ""
    speaker_volume: Annotated[
        float, Meta(ge=0.0, le=4.0, description="Talkback gain (1.0 = as sent; above 1 amplifies, clipped).")
    ] = 1.0
    talk_latency_ms: Annotated[
        int,
        Meta(
            ge=20,
            le=2000,
            description="Most talkback audio queued for the speaker; older audio is dropped, not delayed.",
        ),
    ] = 200
    talk_mutes_mic: Annotated[
        bool,
        Meta(
            description="Send silence instead of the microphone while a peer talks (else viewers "
            "hear the talker's voice echo back from the speaker)."
        ),
    ] = True

    def __post_init__(self) -> None:
        speaker = self.speaker.strip()
        if speaker not in ("", "none") and not (speaker.startswith("alsa:") and len(speaker) > 5):
            raise ValueError(
                f"speaker: {self.speaker!r}: use alsa:DEVICE (e.g. alsa:plughw:CARD=Headphones) "
                "or leave it empty"
            )
        self.speaker = speaker


class CallsSection(Struct, forbid_unknown_fields=True):
    max_calls: Annotated[
        int, Meta(ge=1, le=64, description="Concurrent calls; one more is answered with a 'busy' error link.")
    ] = 4
    answer_timeout: Annotated[
        float, Meta(gt=0, description="Seconds an outgoing call waits for the peer's answer.")
    ] = 30.0
    connect_timeout: Annotated[
        float, Meta(gt=0, description="Seconds from handshake to connected media before a call is dropped.")
    ] = 15.0
    idle_timeout: Annotated[
        float, Meta(gt=0, le=60, description="A call whose peer goes silent this many seconds is ended.")
    ] = 10.0


class DoorbellSection(Struct, forbid_unknown_fields=True):
    """A push button on a GPIO line rings: a `ring` event, an optional snapshot, calls."""

    gpio: Annotated[
        str,
        Meta(
            description="The button's GPIO line by name (e.g. GPIO17), 'auto' for the board profile's "
            "pin, or empty for no button. Read through libgpiod; the user needs group gpio."
        ),
    ] = ""
    chip: Annotated[
        str, Meta(description="The gpiochip holding the line (e.g. /dev/gpiochip0); empty = find it by name.")
    ] = ""
    active_low: Annotated[
        bool, Meta(description="The button connects the pin to ground (pressed = low), with the pull-up on.")
    ] = True
    debounce_ms: Annotated[
        int,
        Meta(
            ge=1,
            le=1000,
            description="Milliseconds a contact may bounce: edges closer than this are one press.",
        ),
    ] = 30
    hold_off: Annotated[
        float,
        Meta(
            ge=0,
            le=600,
            description="Seconds after a ring in which further presses (or cmd/ring) do not ring again.",
        ),
    ] = 3.0
    call: Annotated[
        list[str],
        Meta(description="Peers (names from peers.toml, each allowed 'call') this node calls when it rings."),
    ] = []

    def __post_init__(self) -> None:
        self.gpio = self.gpio.strip()
        if self.gpio and not all(c.isalnum() or c in "_-." for c in self.gpio):
            raise ValueError(f"gpio: {self.gpio!r} is not a GPIO line name (e.g. GPIO17) or offset")


class SnapshotSection(Struct, forbid_unknown_fields=True):
    """Still pictures for Home Assistant: one keyframe decoded to JPEG, only when asked."""

    enabled: Annotated[
        bool,
        Meta(
            description="Allow snapshots (cmd/snapshot, on ring). Off by default: a picture on the broker "
            "is a privacy choice."
        ),
    ] = False
    on_ring: Annotated[bool, Meta(description="Take a snapshot when the doorbell rings (if enabled).")] = True
    min_interval: Annotated[
        float,
        Meta(
            ge=0,
            le=3600,
            description="Seconds between two decodes at most once: a request sooner gets the last "
            "picture again.",
        ),
    ] = 5.0
    every: Annotated[
        int, Meta(ge=0, le=86400, description="Also take one every this many seconds (0 = only when asked).")
    ] = 0
    max_bytes: Annotated[
        int,
        Meta(
            ge=20_000,
            le=4_000_000,
            description="Largest JPEG sent (the broker's packet limit): the quality steps down "
            "until it fits.",
        ),
    ] = 240_000
