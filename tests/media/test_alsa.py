"""ALSA capture for real, through alsa-lib's `file` plugin reading a raw file (no sound
card needed): byte-exact capture, and an Opus round trip (encode + decode, and through
aiortc over loopback)."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import struct

import pytest

from node.media import MediaPublisher
from node.media.audio import AlsaSource
from node.media.filesource import FileSource
from node.media.source import MediaError

from .conftest import Collector

RATE = 48000
TONE_HZ = 1000


@pytest.fixture(scope="session")
def fake_mic(tmp_path_factory):
    """pcm.media_node_test_mic: captures the samples of input.raw (6 s, 1 kHz sine with a
    counter in the low bits so every chunk is distinct), s16le mono 48 kHz."""
    import alsaaudio  # noqa: F401  (a dependency: missing it is a failure, not a skip)

    d = tmp_path_factory.mktemp("alsa")
    samples = [
        int(12000 * math.sin(2 * math.pi * TONE_HZ * i / RATE)) & ~0xF | (i & 0xF) for i in range(RATE * 6)
    ]
    raw = struct.pack(f"<{len(samples)}h", *samples)
    (d / "input.raw").write_bytes(raw)
    conf = d / "fakemic.conf"
    conf.write_text(
        "pcm.media_node_test_mic {\n"
        "    type file\n"
        '    slave.pcm "null"\n'
        '    file "/dev/null"\n'
        f'    infile "{d / "input.raw"}"\n'
        '    format "raw"\n'
        "}\n"
    )
    old = os.environ.get("ALSA_CONFIG_PATH")
    # alsa.conf first (it defines "null"), then ours; read at the first PCM open
    os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{conf}"
    yield raw
    if old is None:
        os.environ.pop("ALSA_CONFIG_PATH", None)
    else:
        os.environ["ALSA_CONFIG_PATH"] = old


def test_alsa_capture_is_byte_exact(fake_mic):
    source = AlsaSource("media_node_test_mic", RATE, 1)
    sink = Collector()
    source.start(lambda data, pts: sink((data, pts)))
    try:
        chunks = sink.wait(50, timeout=20)  # one second
    finally:
        source.stop()
    data = b"".join(c for c, _ in chunks)
    assert len(data) >= 50 * 960 * 2
    assert data == fake_mic[: len(data)]
    assert [pts for _, pts in chunks[:3]] == [0, 960, 1920]


def test_alsa_errors_name_the_device():
    source = AlsaSource("no_such_device_xyz", RATE, 1)
    with pytest.raises(MediaError, match="no_such_device_xyz.*arecord -L"):
        source.start(lambda data, pts: None)


def zero_crossings_per_second(pcm: bytes, channels: int, rate: int) -> float:
    values = struct.unpack(f"<{len(pcm) // 2}h", pcm)[::channels]
    crossings = sum(1 for a, b in itertools.pairwise(values) if (a < 0) != (b < 0))
    return crossings * rate / len(values)


async def test_opus_round_trip(fake_mic):
    """ALSA frames → aiortc's Opus encoder → Opus decoder: still a 1 kHz tone."""
    from aiortc.codecs.opus import OpusDecoder, OpusEncoder
    from aiortc.jitterbuffer import JitterFrame

    from node.media.audio import AudioHub

    source = AlsaSource("media_node_test_mic", RATE, 1)
    hub = AudioHub(source)
    track = hub.subscribe()
    await hub.start()
    encoder, decoder = OpusEncoder(), OpusDecoder()
    decoded = b""
    try:
        for _ in range(50):
            frame = await asyncio.wait_for(track.recv(), 10)
            payloads, timestamp = encoder.encode(frame)
            for payload in payloads:
                for out in decoder.decode(JitterFrame(payload, timestamp)):
                    decoded += bytes(out.planes[0])[: out.samples * 4]  # s16 stereo, unpadded
    finally:
        await hub.stop()
    rate = zero_crossings_per_second(decoded[len(decoded) // 2 :], 2, 48000)
    assert abs(rate - 2 * TONE_HZ) < 50, f"decoded tone has {rate / 2:.0f} Hz, not {TONE_HZ}"


async def test_microphone_reaches_a_viewer_as_opus(fake_mic, clip_dir, sessions):
    publisher = MediaPublisher(FileSource(clip_dir / "clip.h264"), AlsaSource("media_node_test_mic", RATE, 1))
    await publisher.start()
    try:
        session = await sessions().connect(publisher)
        for _ in range(200):
            if session.receiver.audio_frames >= 25:
                break
            await asyncio.sleep(0.05)
        summary = session.receiver.summary()
    finally:
        await publisher.stop()
    assert summary["audio_frames"] >= 25 and summary["audio_peak"] > 0.2
