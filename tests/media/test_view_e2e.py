"""Done-when check: `media-node view` (node.viewer.view against a running daemon,
node.service.Service, handshake by signed file drop, loopback as the overlay) records a
file whose H.264 access units are byte-identical to what the camera's source produced,
for the file, rtsp and (fake) picamera2 sources."""

from __future__ import annotations

import pytest

from node.config import Config, load_config, render_default_config
from node.home import Home
from node.identity import Identity
from node.media import make_publisher, read_recorded_access_units
from node.peers import PeerStore, make_peer
from node.service import Service
from node.transports.filedrop import FileDropClient
from node.viewer import view

from .test_passthrough import SourceTap, assert_contiguous_run


def _make_home(path, name: str, address: str) -> tuple[Home, str]:
    """A node home on the loopback "overlay" (static provider), like the demo's."""
    home = Home(path)
    config = Config()
    config.node.name = name
    config.overlay.provider = "static"
    config.overlay.address = address
    config.overlay.cidr = "127.0.0.0/8"
    config.media.audio = "tone"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.config_file.write_text(render_default_config(config))
    home.create(name)
    return home, Identity.load(home.key_file).node_id


async def view_and_record(tmp_path, video: str):
    camera, camera_id = _make_home(tmp_path / "camera", "cam", "127.0.0.1")
    viewer, viewer_id = _make_home(tmp_path / "viewer", "viewer", "127.0.0.2")
    PeerStore(camera.peers_file).add(
        make_peer("viewer", viewer_id, "view", address="127.0.0.2"), replace=True
    )
    PeerStore(viewer.peers_file).add(
        make_peer("camera", camera_id, "view", address="127.0.0.1"), replace=True
    )
    config = load_config(camera.config_file)
    config.media.video = video
    config.media.width, config.media.height, config.media.fps = 320, 240, 30
    publisher = make_publisher(config.media)
    tap = SourceTap(publisher.video)
    service = Service(camera, config=config, publisher=publisher)
    await service.start()
    recording = tmp_path / "view.mkv"
    try:
        summary = await view(viewer, "camera", FileDropClient(camera.path), 2.5, recording)
    finally:
        await service.stop()
        await publisher.stop()
    return tap, summary, recording


@pytest.mark.parametrize("kind", ["file", "rtsp", "picamera2"])
async def test_view_records_the_source_access_units(kind, request, clip_dir, tmp_path):
    if kind == "file":
        video = f"file:{clip_dir / 'clip.mp4'}"
    elif kind == "rtsp":
        video = request.getfixturevalue("rtsp_server")
    else:
        request.getfixturevalue("fake_picamera2")
        video = "picamera2"
    tap, summary, recording = await view_and_record(tmp_path, video)
    assert summary["ok"] and summary["audio_frames"] > 0, summary
    recorded = read_recorded_access_units(recording)
    assert len(recorded) >= 30 and summary["recorded_frames"] == len(recorded)
    assert_contiguous_run(recorded, tap.aus)
