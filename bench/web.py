"""The browser viewer's relay and talkback, measured on loopback (`python -m bench.web`).

One process: a camera node (node.service with a looping H.264 clip and a tone), a
`media-node web` node, and a page stand-in (an aiortc peer on the browser leg, which
does not decode: it counts access units, as the camera leg does). Same clock for all, so:

- time to first frame: page offer posted -> first access unit at the page, through the
  relay, beside a direct `view` of the same camera;
- relay latency: each access unit's arrival at the page minus its arrival at the web
  node's camera leg (the hop the relay adds: depacketize, copy, packetize, loopback);
- relay CPU: the process's CPU seconds per wall second while relaying, minus the same
  with the page's leg closed (the camera leg alone);
- talkback: a tone burst from the page -> the first non-silent chunk written to the
  camera's ALSA device (the ALSA `null` slave does not pace writes, so this is the path
  to the device, without a sound card's own buffer), and the queue bound.

Prints JSON. Figures are from this machine; they go to docs/benchmarks.md by hand."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCSessionDescription

from node.config import Config, load_config, render_default_config
from node.home import Home
from node.ice import IcePolicy, OverlayPeerConnection
from node.identity import Identity
from node.media import make_publisher
from node.media.audio import AudioHub, ToneSource
from node.media.hooks import prefer_h264
from node.media.testsrc import encode_pattern
from node.peers import PeerStore, make_peer
from node.service import Service
from node.transports.filedrop import FileDropClient
from node.viewer import view
from node.web.access import load_token
from node.web.relay import PacketReceiver
from node.web.server import WebNode

PAGE = "127.0.0.3"


def _home(path: Path, name: str, address: str, **media: object) -> Home:
    home = Home(path)
    config = Config()
    config.node.name = name
    config.overlay.address = address
    config.overlay.cidr = "127.0.0.0/8"
    for key, value in media.items():
        setattr(config.media, key, value)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.config_file.write_text(render_default_config(config))
    home.create(name)
    return home


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Stamps:
    """Arrival times of access units by content (each leg has its own RTP clock; the
    clip loops, so one AU may arrive several times: every arrival is kept)."""

    def __init__(self) -> None:
        self.at: dict[bytes, list[float]] = {}

    def sink(self, inner: Any) -> Any:
        def take(packet: Any) -> None:
            self.at.setdefault(bytes(packet)[:64] + bytes(packet)[-64:], []).append(time.monotonic())
            if inner is not None:
                inner(packet)

        return take

    def gaps_after(self, earlier: Stamps) -> list[float]:
        """For each arrival here, ms since the latest arrival of the same AU in `earlier`."""
        gaps = []
        for key, times in self.at.items():
            before = earlier.at.get(key, [])
            for t in times:
                prior = [b for b in before if b <= t]
                if prior:
                    gaps.append((t - max(prior)) * 1000)
        return gaps


async def run(workdir: Path, seconds: float = 8.0) -> dict[str, Any]:
    clip = workdir / "clip.h264"
    clip.write_bytes(b"".join(encode_pattern(640, 480, 30, seconds=4.0, gop=30, bitrate=800_000)))
    speaker_raw = workdir / "speaker.raw"
    conf = workdir / "speaker.conf"
    conf.write_text(
        f'pcm.bench_speaker {{\n type file\n slave.pcm "null"\n file "{speaker_raw}"\n format "raw"\n}}\n'
    )
    os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{conf}"
    camera = _home(workdir / "cam", "cam", "127.0.0.1", speaker="alsa:bench_speaker")
    viewer = _home(workdir / "viewer", "viewer", "127.0.0.2")
    cam_id, viewer_id = (Identity.load(h.key_file).node_id for h in (camera, viewer))
    PeerStore(camera.peers_file).add(make_peer("viewer", viewer_id, "view,talk", address="127.0.0.2"))
    PeerStore(viewer.peers_file).add(
        make_peer("cam", cam_id, "view", address="127.0.0.1", via=f"file:{camera.path}")
    )
    config = load_config(camera.config_file)
    config.media.video, config.media.audio = f"file:{clip}", "tone"
    publisher = make_publisher(config.media, profile=None)
    service = Service(camera, config=config, publisher=publisher)
    await service.start()
    out: dict[str, Any] = {}
    try:
        direct = await view(viewer, "cam", FileDropClient(camera.path), 2.0)
        out["ttff_direct_view_ms"] = direct["ttff_ms"]
        token = load_token(viewer.path)
        web = WebNode(viewer, load_config(viewer.config_file), token=token, port=0, host_addresses=[PAGE])
        await web.start()
        try:
            out.update(await _relay(web, token, publisher, speaker_raw, seconds))
        finally:
            await web.stop()
    finally:
        await service.stop()
        await publisher.stop()
    return out


async def _relay(
    web: WebNode, token: str, publisher: Any, speaker_raw: Path, seconds: float
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{web.port}"
    headers = {"X-Media-Node-Token": token}
    pc = OverlayPeerConnection(IcePolicy.make([PAGE], [PAGE]))
    tone = AudioHub(ToneSource(frequency=660.0))
    await tone.start()
    talk_track = tone.subscribe()
    prefer_h264(pc.addTransceiver("video", direction="recvonly"))
    pc.addTransceiver(talk_track, direction="sendrecv")
    page = PacketReceiver(pc)
    at_page, at_node = Stamps(), Stamps()
    first = asyncio.get_running_loop().create_future()

    def page_video(packet: Any) -> None:
        if not first.done():
            first.set_result(time.monotonic())

    page.video_sink = at_page.sink(page_video)
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        await pc.setLocalDescription(await pc.createOffer())
        posted = time.monotonic()
        async with http.post(
            f"{base}/api/sessions", json={"peer": "cam", "offer": pc.localDescription.sdp}, headers=headers
        ) as r:
            reply = await r.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["answer"], type="answer"))
        session = web.sessions[reply["session"]]
        camera_leg = session.call.receiver if session.call is not None else None
        assert isinstance(camera_leg, PacketReceiver)
        camera_leg.video_sink = at_node.sink(camera_leg.video_sink)
        out["ttff_through_relay_ms"] = round((await asyncio.wait_for(first, 30) - posted) * 1000, 1)
        cpu0, t0 = _cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        relaying = (_cpu() - cpu0) / (time.monotonic() - t0)
        gaps = at_page.gaps_after(at_node)
        out["relay_latency_ms"] = {
            "median": round(statistics.median(gaps), 2),
            "p95": round(sorted(gaps)[int(len(gaps) * 0.95)], 2),
            "samples": len(gaps),
        }
        # talkback: the tone from the page, pressed now -> first sound at the device
        before = speaker_raw.stat().st_size if speaker_raw.exists() else 0
        pressed = time.monotonic()
        async with http.post(
            f"{base}/api/sessions/{reply['session']}/talk", json={"on": True}, headers=headers
        ):
            pass
        while True:
            data = speaker_raw.read_bytes()[before:] if speaker_raw.exists() else b""
            if any(
                abs(int.from_bytes(data[i : i + 2], "little", signed=True)) > 1000
                for i in range(0, len(data) - 1, 2)
            ):
                break
            if time.monotonic() - pressed > 10:
                break
            await asyncio.sleep(0.005)
        out["talk_press_to_speaker_ms"] = round((time.monotonic() - pressed) * 1000, 1)
        out["talk_queue_bound_ms"] = publisher.speaker.max_latency_ms
        out["talk_late_dropped"] = publisher.speaker.late_dropped
        # the relay's own CPU: the same process with the page's leg closed
        await pc.close()
        await asyncio.sleep(1.0)
        cpu1, t1 = _cpu(), time.monotonic()
        await asyncio.sleep(min(seconds, 3.0))
        baseline = (_cpu() - cpu1) / (time.monotonic() - t1)
        out["process_cpu_while_relaying"] = round(relaying, 3)
        out["process_cpu_after_page_left"] = round(baseline, 3)
    await page.close()
    await tone.stop()
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mnbench-web") as d:
        result = asyncio.run(run(Path(d), float(sys.argv[1]) if len(sys.argv) > 1 else 8.0))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
