"""Talkback for real: a viewer allowed `talk` sends a tone with its view-request
(`view --talk tone`); the camera daemon decodes the Opus and plays it on its speaker,
an ALSA `file` plugin device whose output file is then measured (the tone's frequency,
no timing). A peer without `talk` is refused with a reason, a second talker is told
the speaker is busy, and the microphone sends silence while someone talks."""

from __future__ import annotations

import asyncio
import struct

import pytest

from node.config import Config, load_config, render_default_config
from node.home import Home
from node.identity import Identity
from node.media import make_publisher
from node.peers import PeerStore, make_peer
from node.service import Service
from node.transports.filedrop import FileDropClient
from node.viewer import view

from .test_alsa import zero_crossings_per_second

RATE = 48000
TONE_HZ = 440  # ToneSource's default: what `--talk tone` sends


def _home(path, name: str, address: str, **media) -> tuple[Home, str]:
    home = Home(path)
    config = Config()
    config.node.name = name
    config.overlay.provider = "static"
    config.overlay.address = address
    config.overlay.cidr = "127.0.0.0/8"
    config.media.audio = "tone"
    for key, value in media.items():
        setattr(config.media, key, value)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.config_file.write_text(render_default_config(config))
    home.create(name)
    return home, Identity.load(home.key_file).node_id


@pytest.fixture
async def camera(tmp_path, clip_dir, fake_speaker):
    """A camera daemon with a speaker, and a viewer home; the camera grants `talk` to
    `talker` only (`viewer` may just view)."""
    cam, cam_id = _home(tmp_path / "cam", "cam", "127.0.0.1", speaker="alsa:media_node_test_speaker")
    homes = {}
    for name, addr, allow in (("talker", "127.0.0.2", "view,talk"), ("viewer", "127.0.0.3", "view")):
        home, node_id = _home(tmp_path / name, name, addr)
        PeerStore(cam.peers_file).add(make_peer(name, node_id, allow, address=addr))
        PeerStore(home.peers_file).add(make_peer("cam", cam_id, "view", address="127.0.0.1"))
        homes[name] = home
    config = load_config(cam.config_file)
    config.media.video = f"file:{clip_dir / 'clip.h264'}"
    publisher = make_publisher(config.media, profile=None)
    service = Service(cam, config=config, publisher=publisher)
    await service.start()
    try:
        yield cam, homes, publisher
    finally:
        await service.stop()
        await publisher.stop()


def _speaker_pcm(path) -> bytes:
    return path.read_bytes() if path.exists() else b""


async def test_a_tone_sent_with_talk_plays_on_the_camera_speaker(camera, fake_speaker):
    cam, homes, publisher = camera
    summary = await view(homes["talker"], "cam", FileDropClient(cam.path), 3.0, talk="tone")
    assert summary["ok"], summary
    assert summary["talk_frames"] > 50, summary
    pcm = _speaker_pcm(fake_speaker)
    assert len(pcm) > RATE * 2 // 2, f"only {len(pcm)} bytes reached the speaker"
    # skip Opus' first frames, measure the rest
    hz = zero_crossings_per_second(pcm[RATE // 5 :], 1, RATE) / 2
    print(f"speaker: {len(pcm) / (2 * RATE):.2f} s of audio at {hz:.1f} Hz")
    assert abs(hz - TONE_HZ) < 15, f"the speaker played {hz:.0f} Hz, not {TONE_HZ}"
    values = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    assert max(abs(v) for v in values) > 3000  # not silence
    # the microphone sent silence while the speaker played (talk_mutes_mic): most of it
    assert publisher.audio_hub.muted_chunks > 50, publisher.audio_hub.muted_chunks
    assert summary["audio_frames"] > 0
    # the camera notices the viewer left (DTLS close, else idle_timeout) and frees it
    for _ in range(300):
        if publisher.speaker.owner is None:
            break
        await asyncio.sleep(0.05)
    assert publisher.speaker.owner is None
    assert publisher.audio_hub.muted is False  # the microphone is heard again


async def test_talk_without_the_permission_is_refused_with_a_reason(camera):
    cam, homes, _ = camera
    with pytest.raises(Exception) as err:
        await view(homes["viewer"], "cam", FileDropClient(cam.path), 1.0, talk="tone")
    assert getattr(err.value, "code", "") == "no-talk", err.value
    assert "talk" in str(err.value)


async def test_a_second_talker_is_told_the_speaker_is_busy(camera):
    cam, homes, publisher = camera
    first = asyncio.ensure_future(view(homes["talker"], "cam", FileDropClient(cam.path), 4.0, talk="tone"))
    for _ in range(200):
        if publisher.speaker.owner is not None:
            break
        await asyncio.sleep(0.05)
    assert publisher.speaker.owner is not None
    owner = publisher.speaker.owner
    try:
        # the same peer again (a second window): the speaker stays with the first call
        with pytest.raises(Exception) as err:
            await view(homes["talker"], "cam", FileDropClient(cam.path), 1.0, talk="tone")
        assert getattr(err.value, "code", "") == "talk-busy", err.value
        assert publisher.speaker.owner == owner
    finally:
        summary = await first
    assert summary["ok"] and summary["ended"] == "duration", summary
