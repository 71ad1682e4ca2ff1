"""Typed node configuration: config.toml in the home, validated on load.

The model is the single source of truth: `render_default_config()` writes config.toml
from the fields' defaults and descriptions, so every field is documented in the file
the user edits, and docs/configuration.md is generated the same way.

The sections are plain dataclasses checked by the small validator in
node/settings.py rather than pydantic: a daemon on a 512 MB board carried 8 MiB of
pydantic for these ~40 scalar fields, and every short CLI command paid ~100 ms to
import it."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Literal

from .errors import NodeError
from .settings import Field, Section, ValidationError, field_validator


class NodeSection(Section):
    name: str = Field("media-node", description="Human name shown in status, events and logs.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level: debug, info, warning or error."
    )


class OverlaySection(Section):
    provider: Literal["static", "yggdrasil", "staex", "wireguard", "nebula", "tailscale"] = Field(
        "static",
        description="Overlay provider: static (an address or interface you name), yggdrasil "
        "(admin socket), staex (mcc / loopback HTTP helper), wireguard (peer table exported from "
        "the interface), nebula (certificates checked against Nebula's CA) or tailscale "
        "(tailscaled's local API). docs/overlays.md says what each binds and trusts.",
    )
    address: str = Field(
        "", description="static: this node's overlay address (takes precedence over interface)."
    )
    interface: str = Field(
        "", description="static: take this node's overlay address from this interface (e.g. nebula1)."
    )
    cidr: str = Field(
        "",
        description="static: the overlay's prefix (e.g. 100.64.0.0/10); with interface, the address "
        "must lie in it; peers' addresses must lie in it too.",
    )
    yggdrasil_admin: str = Field(
        "unix:///run/yggdrasil/yggdrasil.sock",
        description="yggdrasil: admin endpoint (unix:///path or tcp://127.0.0.1:9001). Debian's "
        "yggdrasil unit can only write /run/yggdrasil/; the node's user must be in group yggdrasil.",
    )
    staex_command: str = Field(
        "mcc", description="staex: the mcc command (may include arguments, e.g. 'docker exec mcc mcc')."
    )
    staex_http: str = Field(
        "",
        description="staex: a loopback HTTP helper (http://127.0.0.1:9377) with /id and "
        "/resolve?node-id=; empty to use staex_command.",
    )
    wireguard_interface: str = Field(
        "wg0", description="wireguard: the WireGuard interface; this node's address is its address."
    )
    wireguard_peers: str = Field(
        "/run/media-node-wireguard/wg0.peers",
        description="wireguard: the peer table (public keys and allowed IPs, never a private key) "
        "that `media-node wireguard export` writes as root; the service only reads it.",
    )
    nebula_config: str = Field(
        "/etc/nebula/config.yml",
        description="nebula: Nebula's own config; its pki.ca (the CA trusted), pki.cert (this "
        "node's certificate), pki.blocklist and tun.dev are read, nothing else.",
    )
    nebula_certs: str = Field(
        "/etc/nebula/peers",
        description="nebula: directory of the peers' certificates (*.crt, public); each is "
        "verified against the CA before its address is used.",
    )
    nebula_cert_command: str = Field(
        "nebula-cert", description="nebula: the nebula-cert program that verifies and prints certificates."
    )
    tailscale_socket: str = Field(
        "/var/run/tailscale/tailscaled.sock",
        description="tailscale: tailscaled's local API socket (read: GET /localapi/v0/status).",
    )


class MediaSection(Section):
    profile: str = Field(
        "auto", description="Board profile from firmware_config/ (auto = detect this board)."
    )
    video: str = Field(
        "",
        description="Video source: testsrc, file:PATH, rtsp://..., picamera2, v4l2:/dev/videoN "
        "(empty = the board profile's default). A camera that is absent or fails is reported "
        "unavailable and retried, never replaced: the test pattern only when set to testsrc.",
    )
    audio: str = Field(
        "", description="Audio source: tone, alsa:DEVICE or none (empty = the board profile's default)."
    )
    width: int = Field(0, ge=0, description="Video width in pixels (0 = the profile's).")
    height: int = Field(0, ge=0, description="Video height in pixels (0 = the profile's).")
    fps: int = Field(0, ge=0, le=120, description="Frames per second (0 = the profile's).")
    bitrate: int = Field(0, ge=0, description="Start bitrate in bit/s (0 = the profile's).")
    iperiod: int = Field(0, ge=0, description="Frames between IDRs (0 = the profile's).")
    audio_rate: int = Field(48000, ge=8000, le=192000, description="ALSA capture rate in Hz.")
    audio_channels: int = Field(1, ge=1, le=2, description="ALSA capture channels (1 or 2).")
    speaker: str = Field(
        "",
        description="Talkback speaker: alsa:DEVICE, or empty for none (no peer can talk). "
        "`media-node profile show` names the board's usual device.",
    )
    speaker_volume: float = Field(
        1.0, ge=0.0, le=4.0, description="Talkback gain (1.0 = as sent; above 1 amplifies, clipped)."
    )
    talk_latency_ms: int = Field(
        200,
        ge=20,
        le=2000,
        description="Most talkback audio queued for the speaker; older audio is dropped, not delayed.",
    )
    talk_mutes_mic: bool = Field(
        True,
        description="Send silence instead of the microphone while a peer talks (else viewers "
        "hear the talker's voice echo back from the speaker).",
    )

    @field_validator("speaker")
    @classmethod
    def _speaker_form(cls, value: str) -> str:
        if value.strip() in ("", "none") or (value.startswith("alsa:") and len(value) > 5):
            return value.strip()
        raise ValueError(f"{value!r}: use alsa:DEVICE (e.g. alsa:plughw:CARD=Headphones) or leave it empty")


class CallsSection(Section):
    max_calls: int = Field(
        4, ge=1, le=64, description="Concurrent calls; one more is answered with a 'busy' error link."
    )
    answer_timeout: float = Field(
        30.0, gt=0, description="Seconds an outgoing call waits for the peer's answer."
    )
    connect_timeout: float = Field(
        15.0, gt=0, description="Seconds from handshake to connected media before a call is dropped."
    )
    idle_timeout: float = Field(
        10.0, gt=0, le=60, description="A call whose peer goes silent this many seconds is ended."
    )


class LinksSection(Section):
    ttl: int = Field(120, ge=10, le=86400, description="Seconds a link this node signs stays valid.")
    clock_skew: int = Field(
        30, ge=0, le=600, description="Seconds of clock difference tolerated on incoming links."
    )
    seal: bool = Field(
        False, description="Seal outgoing links to the recipient (NaCl sealed box) by default."
    )


class FiledropSection(Section):
    enabled: bool = Field(True, description="Watch the home's inbox/ for link files.")
    group: str = Field(
        "",
        description="A group whose members may also write the inbox (a local drop by another "
        "service): the inbox may then be group-writable for this group only. Empty: only this "
        "node's user (the node refuses to start on an inbox others can write).",
    )
    settle: float = Field(
        0.3,
        gt=0,
        le=60,
        description="Seconds a file written in place must stay unchanged (and closed) before it is taken.",
    )
    max_open: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Seconds a file its writer keeps open is waited for; then it is taken and "
        "refused as still-open (kept in rejected/ with its reason).",
    )
    empty_grace: float = Field(
        10.0, gt=0, le=3600, description="Seconds an empty file may stay empty before it is refused."
    )
    rescan: float = Field(
        5.0, gt=0, le=3600, description="Seconds between full inbox scans (the safety net behind inotify)."
    )


class MqttSection(Section):
    enabled: bool = Field(False, description="Connect to an MQTT broker for links, commands and status.")
    host: str = Field(
        "127.0.0.1",
        description="Broker IP address (loopback or an overlay address). Not a name: the node "
        "never makes a DNS lookup. With TLS the broker's certificate must name this IP.",
    )
    port: int = Field(8883, ge=1, le=65535, description="Broker port (8883 with TLS, 1883 without).")
    prefix: str = Field(
        "media-node", description="Topic prefix: topics are <prefix>/<node id>/inbox, status, ..."
    )
    tls: bool = Field(True, description="Use TLS to the broker.")
    ca_file: str = Field("", description="CA certificate for the broker (empty = system CAs).")
    cert_file: str = Field("", description="Client certificate (optional).")
    key_file: str = Field("", description="Client certificate key (optional).")
    username: str = Field("", description="Username (empty = this node's id).")
    password_file: str = Field("", description="File holding the password (never put it in config).")
    keepalive: int = Field(30, ge=5, le=3600, description="MQTT keepalive in seconds.")
    session_expiry: int = Field(
        86400,
        ge=0,
        le=2592000,
        description="Seconds the broker keeps this node's session (and queues its links) "
        "while it is offline.",
    )
    reconnect_min: int = Field(
        1, ge=1, le=60, description="First reconnect delay in seconds (doubles up to reconnect_max)."
    )
    reconnect_max: int = Field(60, ge=1, le=3600, description="Longest reconnect delay in seconds.")
    home_assistant: bool = Field(False, description="Publish Home Assistant MQTT discovery.")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant discovery prefix.")
    controllers: list[str] = Field(
        default_factory=list,
        description="Broker usernames of the controllers (scripts, Home Assistant) whose commands "
        "this node takes: each on <prefix>/<node id>/cmd/<command>/<username>, a topic the broker's "
        "ACL lets that user alone write; replies go under <prefix>/<username>/reply/<node id>/.",
    )
    home_assistant_user: str = Field(
        "homeassistant",
        description="The broker username Home Assistant connects as: its buttons publish to "
        "cmd/call/<this user> (a controller, with mqtt.home_assistant on).",
    )

    @field_validator("host")
    @classmethod
    def _ip_literal(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value.strip("[]")))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address; the node makes no DNS lookups, "
                "so give the broker's IP (e.g. 127.0.0.1 or its overlay address)"
            ) from None


class WebSection(Section):
    port: int = Field(
        8765,
        ge=0,
        le=65535,
        description="`media-node web` listens on 127.0.0.1 at this port (0 = any free port).",
    )
    ring_timeout: float = Field(
        20.0,
        gt=0,
        le=120,
        description="Seconds a doorbell call rings the open pages before it is declined "
        "(keep it below the caller's calls.answer_timeout).",
    )


class DoorbellSection(Section):
    """A push button on a GPIO line rings: a `ring` event, an optional snapshot, calls."""

    gpio: str = Field(
        "",
        description="The button's GPIO line by name (e.g. GPIO17), 'auto' for the board profile's "
        "pin, or empty for no button. Read through libgpiod; the user needs group gpio.",
    )
    chip: str = Field(
        "", description="The gpiochip holding the line (e.g. /dev/gpiochip0); empty = find it by name."
    )
    active_low: bool = Field(
        True, description="The button connects the pin to ground (pressed = low), with the pull-up on."
    )
    debounce_ms: int = Field(
        30,
        ge=1,
        le=1000,
        description="Milliseconds a contact may bounce: edges closer than this are one press.",
    )
    hold_off: float = Field(
        3.0,
        ge=0,
        le=600,
        description="Seconds after a ring in which further presses (or cmd/ring) do not ring again.",
    )
    call: list[str] = Field(
        default_factory=list,
        description="Peers (names from peers.toml, each allowed 'call') this node calls when it rings.",
    )

    @field_validator("gpio")
    @classmethod
    def _line_name(cls, value: str) -> str:
        value = value.strip()
        if value and not all(c.isalnum() or c in "_-." for c in value):
            raise ValueError(f"{value!r} is not a GPIO line name (e.g. GPIO17) or offset")
        return value


class SnapshotSection(Section):
    """Still pictures for Home Assistant: one keyframe decoded to JPEG, only when asked."""

    enabled: bool = Field(
        False,
        description="Allow snapshots (cmd/snapshot, on ring). Off by default: a picture on the broker "
        "is a privacy choice.",
    )
    on_ring: bool = Field(True, description="Take a snapshot when the doorbell rings (if enabled).")
    min_interval: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="Seconds between two decodes at most once: a request sooner gets the last picture again.",
    )
    every: int = Field(
        0, ge=0, le=86400, description="Also take one every this many seconds (0 = only when asked)."
    )
    max_bytes: int = Field(
        240_000,
        ge=20_000,
        le=4_000_000,
        description="Largest JPEG sent (the broker's packet limit): the quality steps down until it fits.",
    )


class Config(Section):
    node: NodeSection = Field(default_factory=NodeSection)
    overlay: OverlaySection = Field(default_factory=OverlaySection)
    media: MediaSection = Field(default_factory=MediaSection)
    calls: CallsSection = Field(default_factory=CallsSection)
    links: LinksSection = Field(default_factory=LinksSection)
    filedrop: FiledropSection = Field(default_factory=FiledropSection)
    mqtt: MqttSection = Field(default_factory=MqttSection)
    web: WebSection = Field(default_factory=WebSection)
    doorbell: DoorbellSection = Field(default_factory=DoorbellSection)
    snapshot: SnapshotSection = Field(default_factory=SnapshotSection)


def load_config(path: Path) -> Config:
    """config.toml -> Config; a missing file means all defaults; errors name the field."""
    if not path.exists():
        return Config()
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise NodeError(f"{path}: not valid TOML: {e}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(loc)}: {msg}" for loc, msg in e.problems)
        raise NodeError(f"{path}: {problems}") from None


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def render_default_config(config: Config | None = None) -> str:
    """config.toml text: every field with its description as a comment above it."""
    config = config or Config()
    lines = [
        "# media-node configuration. Every field is optional; shown values are the defaults.",
        "# Unknown keys are rejected, so a typo is an error rather than a silent default.",
        "",
    ]
    for section_name in Config.model_fields:
        section = getattr(config, section_name)
        doc = (type(section).__doc__ or "").strip()
        lines.append(f"[{section_name}]")
        if doc and not doc.startswith("Usage docs"):
            lines.append(f"# {doc}")
        for name, field in type(section).model_fields.items():
            lines.append(f"# {field.description}")
            lines.append(f"{name} = {_toml_value(getattr(section, name))}")
        lines.append("")
    return "\n".join(lines)


def render_markdown() -> str:
    """docs/configuration.md: every section and field, from the model itself."""
    lines = [
        "# Configuration: config.toml",
        "",
        "`media-node init` writes `config.toml` into the home with every field below, commented.",
        "Every field is optional; unknown keys are errors (a typo never falls back to a default).",
        "Generated from `node/config.py` by `python -m node.config`; a test keeps it current.",
        "",
    ]
    for section_name in Config.model_fields:
        section = getattr(Config(), section_name)
        lines += [f"## [{section_name}]", "", "| field | default | meaning |", "|---|---|---|"]
        for name, field in type(section).model_fields.items():
            default = _toml_value(getattr(section, name)).replace("|", "\\|")
            lines.append(f"| `{name}` | `{default}` | {field.description} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(), end="")
