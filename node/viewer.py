"""The remote-view client: `media-node view PEER --via file:DIR|manual`.

It signs a view-request (a recvonly audio+video offer gathered on this node's overlay
address only), sends it over the chosen transport, applies the signed answer, receives
for N seconds (recording H.264 as it arrived, never decoded, with --record) and returns
a summary: time to first frame, frames, bitrate, the selected candidate pair."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from aiortc import RTCPeerConnection

from .calls import Call, CallManager, Receiver, ReceiverFactory
from .config import Config, load_config
from .errors import NodeError
from .home import Home
from .identity import Identity
from .links import LinkOpener, ReplayCache
from .overlay import OverlayProvider
from .peers import PeerStore
from .transports.base import VIA_FORMS, ClientTransport, client_transport

log = logging.getLogger(__name__)


def _receiver_factory(record: Path | BinaryIO | None) -> ReceiverFactory:
    from .media import MediaReceiver

    live = record is not None and not isinstance(record, Path)

    def make(pc: RTCPeerConnection) -> Receiver:  # a live pipe carries the audio too (AAC)
        return MediaReceiver(pc, record_path=record, record_audio=live)

    return make


PLAYERS = (
    ("mpv", ["mpv", "--really-quiet", "--profile=low-latency", "--cache=no", "-"]),
    ("ffplay", ["ffplay", "-loglevel", "error", "-fflags", "nobuffer", "-flags", "low_delay", "-i", "-"]),
    ("gst-play-1.0", ["gst-play-1.0", "-q", "fd://0"]),
)


def start_player() -> subprocess.Popen[bytes]:
    """The first of mpv, ffplay, gst-play-1.0 found on PATH, reading MPEG-TS on stdin."""
    for name, argv in PLAYERS:
        if shutil.which(name):
            log.info("playing with %s", name)
            return subprocess.Popen(argv, stdin=subprocess.PIPE)
    raise NodeError(
        "--play needs a player: install mpv, ffplay (ffmpeg) or gst-play-1.0 "
        "(gstreamer1.0-tools), or pipe `--record -` into one yourself"
    )


def _number(values: Mapping[str, object], key: str) -> float:
    value = values.get(key)
    return value if isinstance(value, int | float) else 0


async def view(
    home: Home,
    peer_name: str,
    transport: ClientTransport,
    seconds: float,
    record: Path | BinaryIO | None = None,
    *,
    config: Config | None = None,
    provider: OverlayProvider | None = None,
    talk: str | None = None,
    until: Callable[[], bool] | None = None,
) -> dict[str, object]:
    """Watch `peer_name` for `seconds`; returns the summary (see `summary_fields`).
    `talk` (tone, alsa:DEVICE, file:PATH.wav): also send that audio to the peer's
    speaker (the peer must allow this node `talk`). `record`: a file (.mkv/.mp4/.ts) or
    a binary stream (live MPEG-TS with audio); `until`: stop early once it is true
    (a player that was closed)."""
    identity = Identity.load(home.key_file)
    config = config or load_config(home.config_file)
    peers = PeerStore(home.peers_file)
    peer = peers.find(peer_name)
    if peer is None:
        raise NodeError(f"{peer_name!r} is not in this node's allowlist (media-node peers add NAME ID ...)")
    if provider is None:
        from .overlay import make_provider

        provider = make_provider(config.overlay)
    if isinstance(record, Path):
        record = record.expanduser().resolve()
        record.parent.mkdir(parents=True, exist_ok=True)
    replay = ReplayCache(home.replay_db, config.links.clock_skew)
    opener = LinkOpener(identity, peers, replay, skew=config.links.clock_skew)
    manager = CallManager(
        identity, config, peers, provider, None, opener, receiver_factory=_receiver_factory(record)
    )
    hub = None
    if talk:
        from .media.audio import AudioHub
        from .media.select import make_audio_source, parse_talk

        source = make_audio_source(parse_talk(talk))
        if source is None:
            raise NodeError(f"--talk {talk!r}: nothing to send")
        hub = AudioHub(source)
    started = time.monotonic()
    talked = 0
    try:
        talk_track = None
        if hub is not None:
            await hub.start()
            talk_track = hub.subscribe()
        call = await manager.view(peer, transport, talk=talk_track)
        log.info("view: %s answered; receiving for %.0f s", peer.name, seconds)
        reason = await _watch(call, seconds, until)
        pair = call.selected_pair()
        connected_at = call.connected_at
        await call.end("viewer-done")
        receiver = call.receiver.summary() if call.receiver is not None else {}
        stats = call.stats()
        talked = talk_track.frames if talk_track is not None else 0
    finally:
        await manager.close()
        if hub is not None:
            await hub.stop()
        replay.close()
    finished = time.monotonic()
    window = max(1e-3, finished - (connected_at or started))
    ttff = receiver.get("ttff")
    return {
        "peer": peer.name,
        "peer_id": peer.node_id,
        "ttff_ms": None if ttff is None else round(_number(receiver, "ttff") * 1000, 1),
        "video_frames": receiver.get("video_frames", 0),
        "video_keyframes": receiver.get("video_keyframes", 0),
        "audio_frames": receiver.get("audio_frames", 0),
        "audio_peak": receiver.get("audio_peak"),
        "kbps": round(_number(stats, "bytes_received") * 8 / 1000 / window, 1),
        "video_kbps": round(_number(receiver, "video_bytes") * 8 / 1000 / window, 1),
        "bytes_received": stats["bytes_received"],
        "packets_received": stats["packets_received"],
        "packets_lost": stats["packets_lost"],
        "rtt_ms": stats["rtt_ms"],
        "seconds": round(finished - started, 2),
        "local_address": pair[0] if pair else None,
        "remote_address": pair[1] if pair else None,
        "overlay": provider.name,
        "record": receiver.get("record_path"),
        "recorded_frames": receiver.get("recorded_frames", 0),
        "ended": reason,
        "talk": talk,
        "talk_frames": talked,
        "ok": bool(receiver.get("video_frames")),
    }


async def _watch(call: Call, seconds: float, until: Callable[[], bool] | None) -> str:
    """Why viewing stopped: the call ended, `until` became true, or the duration passed."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if await call.wait(min(left, 0.5)):
            return call.ended_reason or "ended"
        if until is not None and until():
            return "player-closed"
    return "duration"


def format_summary(s: Mapping[str, object]) -> str:
    """A few lines for people."""
    lines = [
        f"viewed {s['peer']} for {s['seconds']} s over {s['overlay']} "
        f"({s['local_address']} -> {s['remote_address']})",
        f"first frame after {s['ttff_ms']} ms; {s['video_frames']} video frames "
        f"({s['video_keyframes']} keyframes), {s['audio_frames']} audio frames; {s['kbps']} kbit/s",
    ]
    if s.get("talk"):
        lines.append(f"talked ({s['talk']}): {s['talk_frames']} audio frames sent")
    if s.get("record"):
        lines.append(f"recorded {s['recorded_frames']} frames to {s['record']}")
    if s["ended"] != "duration":
        lines.append(f"the call ended early: {s['ended']}")
    return "\n".join(lines)


__all__ = ["PLAYERS", "VIA_FORMS", "client_transport", "format_summary", "start_player", "view"]
