"""`media-node web` in one process, on loopback: a camera daemon (node.service), the web
node (node.web.server) and a stand-in page (an aiortc peer on the browser leg, talking
to the node's HTTP API exactly as app.js does). The real browsers are in
test_browsers.py; this covers the relay, the API and its gate quickly.

Addresses: camera overlay 127.0.0.1, viewer overlay 127.0.0.2, browser leg 127.0.0.3."""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass

import aiohttp
import pytest
from media.test_alsa import zero_crossings_per_second

from node.config import Config, load_config, render_default_config
from node.home import Home
from node.ice import IcePolicy, OverlayPeerConnection
from node.identity import Identity
from node.media import MediaReceiver, make_publisher
from node.media.audio import AudioHub, ToneSource
from node.media.hooks import prefer_h264
from node.peers import PeerStore, make_peer
from node.service import Service
from node.web.access import load_token
from node.web.server import WebNode

PAGE = "127.0.0.3"
RATE = 48000


def _home(path, name: str, address: str, **media) -> Home:
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


@dataclass
class Rig:
    camera: Home
    viewer: Home
    publisher: object
    service: Service
    web: WebNode
    url: str
    token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"


@pytest.fixture
async def rig(tmp_path, clip_dir, fake_speaker):
    camera = _home(tmp_path / "cam", "cam", "127.0.0.1", speaker="alsa:media_node_test_speaker")
    viewer = _home(tmp_path / "viewer", "viewer", "127.0.0.2")
    cam_id = Identity.load(camera.key_file).node_id
    viewer_id = Identity.load(viewer.key_file).node_id
    PeerStore(camera.peers_file).add(make_peer("viewer", viewer_id, "view,talk", address="127.0.0.2"))
    PeerStore(viewer.peers_file).add(
        make_peer("cam", cam_id, "view", address="127.0.0.1", via=f"file:{camera.path}")
    )
    config = load_config(camera.config_file)
    config.media.video, config.media.audio = f"file:{clip_dir / 'clip.h264'}", "tone"
    publisher = make_publisher(config.media, profile=None)
    service = Service(camera, config=config, publisher=publisher)
    await service.start()
    token = load_token(viewer.path)
    web = WebNode(viewer, load_config(viewer.config_file), token=token, port=0, host_addresses=[PAGE])
    url = await web.start()
    try:
        yield Rig(camera, viewer, publisher, service, web, url, token)
    finally:
        await web.stop()
        await service.stop()
        await publisher.stop()


class Page:
    """What app.js does, in aiortc: a recvonly video + sendrecv audio offer on the
    browser leg, posted to /api/sessions; the answer applied; frames counted."""

    def __init__(self, rig, http: aiohttp.ClientSession, address: str = PAGE):
        self.rig, self.http = rig, http  # rig: anything with .base and .token
        self.pc = OverlayPeerConnection(IcePolicy.make([address], [address]))
        self.hub = AudioHub(ToneSource(frequency=660.0))
        self.session = ""
        self.receiver: MediaReceiver | None = None

    async def open(self, peer: str = "cam", talk: bool = True, path: str = "/api/sessions") -> dict:
        await self.hub.start()
        prefer_h264(self.pc.addTransceiver("video", direction="recvonly"))
        self.pc.addTransceiver(self.hub.subscribe(), direction="sendrecv")
        self.receiver = MediaReceiver(self.pc, decode=True)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        reply = await self.post(path, {"peer": peer, "offer": self.pc.localDescription.sdp, "talk": talk})
        assert "answer" in reply, reply
        self.session = reply["session"]
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply["answer"], type="answer"))
        return reply

    async def post(self, path: str, body: dict) -> dict:
        async with self.http.post(self.rig.base + path, json=body, headers=self.auth()) as r:
            return await r.json()

    async def get(self, path: str) -> dict:
        async with self.http.get(self.rig.base + path, headers=self.auth()) as r:
            return await r.json()

    def auth(self) -> dict:
        return {"X-Media-Node-Token": self.rig.token}

    async def close(self) -> None:
        await self.pc.close()
        if self.receiver is not None:
            await self.receiver.close()
        await self.hub.stop()


@pytest.fixture
async def page(rig):
    async with aiohttp.ClientSession() as http:
        p = Page(rig, http)
        try:
            yield p
        finally:
            await p.close()


async def test_the_page_gets_the_cameras_video_and_audio_through_the_relay(rig, page):
    reply = await page.open()
    assert reply["talk"]["granted"] is True and reply["no_h264"] is False, reply
    # the answer for the page names only the browser leg's own address
    cands = [ln for ln in reply["answer"].splitlines() if ln.startswith("a=candidate:")]
    assert cands and all(f" {PAGE} " in c for c in cands), cands
    await page.receiver.wait_video_frames(30, timeout=30)
    for _ in range(100):
        if page.receiver.audio_frames >= 25:
            break
        await asyncio.sleep(0.1)
    summary = page.receiver.summary()
    assert summary["decoded_frames"] > 0 and summary["audio_frames"] >= 25, summary
    # the relay forwarded the camera's access units: the page decodes the source's size
    stats = await page.get(f"/api/sessions/{page.session}")
    assert stats["relayed"]["video"] >= 30 and stats["camera_leg"]["packets_received"] > 0, stats
    # the camera sees an ordinary view call from the viewer node
    (call,) = rig.service.manager.active()
    assert call.kind == "view" and call.peer.name == "viewer" and call.talk


async def test_push_to_talk_plays_the_pages_audio_on_the_camera_speaker(rig, page, fake_speaker):
    await page.open()
    await page.receiver.wait_video_frames(5, timeout=30)
    before = fake_speaker.stat().st_size if fake_speaker.exists() else 0
    await asyncio.sleep(1.0)  # not held: nothing is forwarded (not a timing assertion)
    idle = (fake_speaker.stat().st_size if fake_speaker.exists() else 0) - before
    assert idle == 0, f"{idle} bytes reached the speaker without push-to-talk"
    reply = await page.post(f"/api/sessions/{page.session}/talk", {"on": True})
    assert reply["talking"] is True
    for _ in range(100):
        if fake_speaker.stat().st_size - before > RATE * 2:  # a second of audio
            break
        await asyncio.sleep(0.1)
    await page.post(f"/api/sessions/{page.session}/talk", {"on": False})
    pcm = fake_speaker.read_bytes()[before:]
    hz = zero_crossings_per_second(pcm[RATE // 5 :], 1, RATE) / 2
    assert abs(hz - 660) < 15, f"the speaker played {hz:.0f} Hz, not the page's 660 Hz"
    values = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    assert max(abs(v) for v in values) > 3000


async def test_closing_the_session_ends_the_camera_call(rig, page):
    await page.open()
    await page.receiver.wait_video_frames(5, timeout=30)
    async with page.http.delete(f"{rig.base}/api/sessions/{page.session}", headers=page.auth()) as r:
        assert r.status == 200
    for _ in range(200):
        if not rig.service.manager.active():
            break
        await asyncio.sleep(0.05)
    assert rig.service.manager.active() == []
    assert rig.web.sessions == {}


async def test_the_gate_refuses_without_token_foreign_origin_or_host(rig):
    base = rig.base
    ok = {"X-Media-Node-Token": rig.token}
    # unsafe=True: aiohttp's jar otherwise ignores cookies from an IP address (browsers keep them)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:

        async def status(method: str, path: str, headers: dict, **kw) -> tuple[int, str]:
            async with http.request(method, base + path, headers=headers, **kw) as r:
                body = await r.text()
                code = json.loads(body)["error"]["code"] if r.status >= 400 else ""
                return r.status, code

        assert await status("GET", "/api/peers", {}) == (401, "bad-token")
        assert await status("GET", "/api/peers", {"X-Media-Node-Token": "x" * 43}) == (401, "bad-token")
        assert await status("GET", "/api/peers", ok) == (200, "")
        evil = {**ok, "Origin": "http://evil.example"}
        assert await status("POST", "/api/sessions", evil, json={}) == (403, "bad-origin")
        rebound = {**ok, "Host": f"evil.example:{rig.web.port}"}
        assert await status("GET", "/api/peers", rebound) == (421, "bad-host")
        # the page's own origin and the token in the first URL (then a cookie) are fine
        same = {**ok, "Origin": f"http://127.0.0.1:{rig.web.port}"}
        assert await status("GET", "/api/peers", same) == (200, "")
        async with http.get(rig.url) as r:
            assert r.status == 200 and "media-node" in await r.text()
            assert r.cookies["media_node_token"]["samesite"] == "Strict"
        assert await status("GET", "/api/peers", {}) == (200, "")  # the cookie from the page load
        assert await status("POST", "/api/sessions", ok, data="not json") == (400, "bad-request")
        assert await status("POST", "/api/sessions", ok, json={"peer": "nobody", "offer": "v=0"}) == (
            404,
            "unknown-peer",
        )
        bad = await status("POST", "/api/sessions", ok, json={"peer": "cam", "offer": "v=0"})
        assert bad[0] == 400 and bad[1] in ("bad-offer", "not-this-host"), bad
        assert rig.service.manager.active() == []  # refused before the camera was asked


def test_the_token_file_is_private_and_rotates(tmp_path):
    first = load_token(tmp_path)
    assert (tmp_path / "web.token").stat().st_mode & 0o777 == 0o600
    assert load_token(tmp_path) == first  # a bookmark survives a restart
    assert load_token(tmp_path, rotate=True) != first


def _listeners(port: int) -> list[str]:
    """Local addresses of listening TCP sockets on `port` (from /proc/net/tcp, tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                addr, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port:  # LISTEN
                    raw = bytes.fromhex(addr)
                    if len(raw) == 4:
                        found.append(".".join(str(b) for b in raw[::-1]))
                    else:
                        found.append(raw.hex())
    return found


async def test_it_listens_on_loopback_only(rig):
    assert _listeners(rig.web.port) == ["127.0.0.1"]
