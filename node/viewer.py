"""The remote-view client: `media-node view PEER --via file:DIR|manual`.

It signs a view-request (a recvonly audio+video offer gathered on this node's overlay
address only), sends it over the chosen transport, applies the signed answer, receives
for N seconds (recording H.264 as it arrived, never decoded, with --record) and returns
a summary: time to first frame, frames, bitrate, the selected candidate pair."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from aiortc import RTCPeerConnection

from .calls import CallManager, Receiver, ReceiverFactory
from .config import Config, load_config
from .errors import NodeError
from .home import Home
from .identity import Identity
from .links import LinkOpener, ReplayCache
from .overlay import OverlayProvider
from .peers import PeerStore
from .transports.base import VIA_FORMS, ClientTransport, client_transport

log = logging.getLogger(__name__)


def _receiver_factory(record: Path | None) -> ReceiverFactory:
    from .media import MediaReceiver

    def make(pc: RTCPeerConnection) -> Receiver:
        return MediaReceiver(pc, record_path=record)

    return make


def _number(values: Mapping[str, object], key: str) -> float:
    value = values.get(key)
    return value if isinstance(value, int | float) else 0


async def view(
    home: Home,
    peer_name: str,
    transport: ClientTransport,
    seconds: float,
    record: Path | None = None,
    *,
    config: Config | None = None,
    provider: OverlayProvider | None = None,
) -> dict[str, object]:
    """Watch `peer_name` for `seconds`; returns the summary (see `summary_fields`)."""
    identity = Identity.load(home.key_file)
    config = config or load_config(home.config_file)
    peers = PeerStore(home.peers_file)
    peer = peers.find(peer_name)
    if peer is None:
        raise NodeError(f"{peer_name!r} is not in this node's allowlist (media-node peers add NAME ID ...)")
    if provider is None:
        from .overlay import make_provider

        provider = make_provider(config.overlay)
    if record is not None:
        record = Path(record).expanduser().resolve()
        record.parent.mkdir(parents=True, exist_ok=True)
    replay = ReplayCache(home.replay_db, config.links.clock_skew)
    opener = LinkOpener(identity, peers, replay, skew=config.links.clock_skew)
    manager = CallManager(
        identity, config, peers, provider, None, opener, receiver_factory=_receiver_factory(record)
    )
    started = time.monotonic()
    try:
        call = await manager.view(peer, transport)
        log.info("view: %s answered; receiving for %.0f s", peer.name, seconds)
        ended_early = await call.wait(seconds)
        reason = call.ended_reason if ended_early else "duration"
        pair = call.selected_pair()
        connected_at = call.connected_at
        await call.end("viewer-done")
        receiver = call.receiver.summary() if call.receiver is not None else {}
        stats = call.stats()
    finally:
        await manager.close()
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
        "ok": bool(receiver.get("video_frames")),
    }


def format_summary(s: Mapping[str, object]) -> str:
    """A few lines for people."""
    lines = [
        f"viewed {s['peer']} for {s['seconds']} s over {s['overlay']} "
        f"({s['local_address']} -> {s['remote_address']})",
        f"first frame after {s['ttff_ms']} ms; {s['video_frames']} video frames "
        f"({s['video_keyframes']} keyframes), {s['audio_frames']} audio frames; {s['kbps']} kbit/s",
    ]
    if s.get("record"):
        lines.append(f"recorded {s['recorded_frames']} frames to {s['record']}")
    if s["ended"] != "duration":
        lines.append(f"the call ended early: {s['ended']}")
    return "\n".join(lines)


__all__ = ["VIA_FORMS", "client_transport", "format_summary", "view"]
