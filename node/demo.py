"""`media-node demo`: two nodes on this machine, end to end, in one process.

A camera node (test pattern + tone) and a viewer node get fresh homes that trust each
other; loopback is their embedded overlay (static provider: camera 127.0.0.1, viewer
127.0.0.2). The viewer drops a signed view-request into the camera's inbox, the camera
daemon answers through its outbox, video and audio flow over ICE confined to those two
addresses, and the viewer records what arrived. Everything real but the camera itself."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import Config, render_default_config
from .home import Home
from .identity import Identity
from .peers import PeerStore, make_peer
from .service import Service
from .viewer import view

log = logging.getLogger(__name__)

CAMERA_ADDRESS = "127.0.0.1"
VIEWER_ADDRESS = "127.0.0.2"


def _make_home(path: Path, name: str, address: str, video: str = "", audio: str = "") -> tuple[Home, str]:
    home = Home(path)
    config = Config()
    config.node.name = name
    config.overlay.provider = "static"
    config.overlay.address = address
    config.overlay.cidr = "127.0.0.0/8"  # loopback is the overlay here, and only here
    if video:
        config.media.video = video
        config.media.audio = audio or "none"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.config_file.write_text(render_default_config(config))
    home.create(name)
    return home, Identity.load(home.key_file).node_id


def describe_source(describe: Mapping[str, Any]) -> str:  # publisher.describe()'s JSON
    """What the camera streams, in plain words (never claims hardware it does not use)."""
    video = describe.get("video") or {}
    audio = describe.get("audio") or {}
    parts = []
    if video:
        how = {
            "hardware": "encoded by the hardware encoder",
            "passthrough": "passed through as the source encoded it",
            "software-fallback": "encoded in software",
        }.get(video.get("label", ""), video.get("label", ""))
        size = f"{video.get('width')}x{video.get('height')}" if video.get("width") else "size from the stream"
        parts.append(
            f"video: {video.get('note') or video.get('kind')} ({how}; H.264 "
            f"{video.get('profile') or ''} {size} @ {video.get('fps')} fps; the access units "
            "are packetized as they are, not re-encoded per viewer)"
        )
    else:
        parts.append("video: none")
    if audio:
        what = "a generated 440 Hz tone" if audio.get("kind") == "tone" else f"ALSA {audio.get('device', '')}"
        parts.append(f"audio: {what}, encoded to Opus by aiortc")
    else:
        parts.append("audio: none")
    return "; ".join(parts)


async def run_demo(
    seconds: float = 5.0, workdir: Path | None = None, video: str = "testsrc", audio: str = "tone"
) -> dict[str, Any]:
    """Run both nodes for `seconds` of streaming; returns the viewer's summary plus
    `source` (what was streamed) and `demo_dir` (the homes and the recording, kept)."""
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="media-node-demo-"))
    camera, camera_id = _make_home(root / "camera", "demo-camera", CAMERA_ADDRESS, video, audio)
    viewer, viewer_id = _make_home(root / "viewer", "demo-viewer", VIEWER_ADDRESS)
    PeerStore(camera.peers_file).add(
        make_peer("viewer", viewer_id, "view", address=VIEWER_ADDRESS), replace=True
    )
    PeerStore(viewer.peers_file).add(
        make_peer("camera", camera_id, "view", address=CAMERA_ADDRESS), replace=True
    )

    from .transports.filedrop import FileDropClient

    service = Service(camera)
    try:  # a start that fails halfway has still opened things (publisher, replay cache)
        await service.start()
        describe = getattr(service.publisher, "describe", None)
        source = describe() if callable(describe) else {}
        recording = viewer.recordings / "demo.mkv"
        summary = await view(viewer, "camera", FileDropClient(camera.path), seconds, recording)
    finally:
        await service.stop()
    summary["source"] = describe_source(source)
    summary["handshake"] = f"signed view-request and answer through {camera.path}/inbox and outbox"
    summary["demo_dir"] = str(root)
    return summary


def format_demo(summary: Mapping[str, Any]) -> str:
    from .viewer import format_summary

    return "\n".join(
        [
            "media-node demo: a camera node and a viewer node on this machine, loopback as the overlay",
            f"camera streamed {summary['source']}",
            f"handshake: {summary['handshake']}",
            format_summary(summary),
            f"homes and recording kept in {summary['demo_dir']}",
            "result: OK" if summary.get("ok") else "result: FAILED (no video arrived)",
        ]
    )


__all__ = ["describe_source", "format_demo", "run_demo"]
