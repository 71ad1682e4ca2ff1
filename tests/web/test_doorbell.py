"""The doorbell through a real mosquitto: `cmd/call` makes a camera daemon call viewer
nodes running `media-node web`; their open pages ring. Answered (the page decodes the
caller's video, with talk), no page open (declined `no-viewer`, and an event says so),
nobody answers (`no-answer` after web.ring_timeout), declined, and two callees (the
first to answer wins; the other's ring is cancelled and its page told).

Loopback is the overlay: camera 127.0.0.1, viewers 127.0.0.2 and 127.0.0.4; the pages'
legs are on 127.0.0.3 and 127.0.0.5."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

import aiohttp
import pytest
from transports.broker import Broker
from transports.test_mqtt import Watcher, wait_for

from node.config import Config, load_config, render_default_config
from node.service import Service
from node.web.access import load_token
from node.web.server import WebNode

from .test_relay import Page

pytestmark = pytest.mark.timeout(180)

ADDRESSES = {"camera": "127.0.0.1", "alice": "127.0.0.2", "bob": "127.0.0.4"}
PAGES = {"alice": "127.0.0.3", "bob": "127.0.0.5"}
RING_TIMEOUT = 3.0


def _configure(node, broker: Broker, **media: str) -> None:
    config = Config()
    config.node.name = node.name
    config.overlay.address = ADDRESSES[node.name]
    config.overlay.cidr = "127.0.0.0/8"
    config.filedrop.enabled = False
    config.mqtt = broker.config_for(node.node_id)
    config.web.ring_timeout = RING_TIMEOUT
    for key, value in media.items():
        setattr(config.media, key, value)
    node.home.config_file.write_text(render_default_config(config))


@dataclass
class Viewer:
    name: str
    web: WebNode
    token: str
    events: list[dict] = field(default_factory=list)
    listening: asyncio.Task | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"

    async def listen(self, http: aiohttp.ClientSession) -> None:
        """An open page: the event stream, collected."""
        connected = asyncio.Event()

        async def run() -> None:
            async with http.get(f"{self.base}/api/events", headers={"X-Media-Node-Token": self.token}) as r:
                connected.set()
                async for line in r.content:
                    if line.startswith(b"data: "):
                        self.events.append(json.loads(line[6:]))

        self.listening = asyncio.ensure_future(run())
        await asyncio.wait_for(connected.wait(), 10)
        await wait_for(lambda: self.web.open_pages() == 1, what=f"{self.name}'s page on the event stream")

    async def close_page(self) -> None:
        if self.listening is not None:
            self.listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.listening
            self.listening = None

    def rings(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "ring"]

    def ended(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "ring-ended"]


@pytest.fixture
async def house(make_node, tmp_path, clip_dir, fake_speaker):
    camera, alice, bob = make_node("camera"), make_node("alice"), make_node("bob")
    for viewer in (alice, bob):
        camera.trust(viewer, "view,talk,call", address=ADDRESSES[viewer.name])
        viewer.trust(camera, "view,call", address=ADDRESSES["camera"])
    # alice may read the camera's status (the role's `views`); bob may not
    broker = Broker(
        tmp_path / "broker",
        nodes=[camera, alice, bob],
        controllers=["controller"],
        views={alice.node_id: [camera.node_id]},
    )
    broker.start()
    _configure(
        camera,
        broker,
        video=f"file:{clip_dir / 'clip.h264'}",
        audio="tone",
        speaker="alsa:media_node_test_speaker",
    )
    viewers = {}
    for node in (alice, bob):
        _configure(node, broker)
        token = load_token(node.home.path)
        web = WebNode(
            node.home,
            load_config(node.home.config_file),
            token=token,
            port=0,
            host_addresses=[PAGES[node.name]],
        )
        viewers[node.name] = Viewer(node.name, web, token)
    service = Service(camera.home)
    ctl = Watcher(broker, "controller")
    try:
        await service.start()
        for v in viewers.values():
            await v.web.start()
        assert await ctl.connected()
        for topic in ("media-node/controller/reply/#", f"media-node/{camera.node_id}/events"):
            ctl.c.subscribe(topic, qos=1)
        await wait_for(lambda: len(ctl.suback) == 2, what="SUBACKs")
        await wait_for(
            lambda: (
                all(t.connected for t in service.transports if hasattr(t, "connected"))
                and all(t.connected for v in viewers.values() for t in v.web.transports)
            ),
            what="everyone on the broker",
        )
        async with aiohttp.ClientSession() as http:
            yield camera, viewers, service, ctl, http
    finally:
        for v in viewers.values():
            await v.close_page()
            await v.web.stop()
        await service.stop()
        ctl.close()
        broker.stop()


def _ring(ctl: Watcher, camera, payload: bytes, tag: str) -> str:
    replies = f"media-node/controller/reply/{tag}"
    ctl.publish(f"media-node/{camera.node_id}/cmd/call", payload, response_topic=replies, corr=tag.encode())
    return replies


async def _reply(ctl: Watcher, replies: str, timeout: float = 60) -> dict:
    await wait_for(lambda: ctl.on(replies), timeout=timeout, what="the cmd/call reply")
    return json.loads(ctl.on(replies)[0].payload)


def _camera_events(ctl: Watcher, camera) -> list[dict]:
    return [json.loads(m.payload) for m in ctl.on(f"media-node/{camera.node_id}/events")]


async def test_an_answered_ring_shows_the_caller_live_with_talk(house):
    camera, viewers, service, ctl, http = house
    alice = viewers["alice"]
    await alice.listen(http)
    replies = _ring(ctl, camera, b"alice", "answered")
    await wait_for(alice.rings, timeout=30, what="the ring on alice's page")
    ring = alice.rings()[0]
    assert ring["peer"] == "camera"
    page = Page(alice, http, PAGES["alice"])
    try:
        reply = await page.open(path=f"/api/rings/{ring['ring']}/answer")
        assert reply["talk"]["granted"] is True, reply  # the camera lets alice talk back
        await page.receiver.wait_video_frames(30, timeout=30)
        result = await _reply(ctl, replies)
        assert result["ok"] is True and result["peer"] == "alice", result
        [call] = service.manager.active()
        assert call.kind == "outgoing" and call.talk
        assert [e["reason"] for e in alice.ended()] == ["answered"]
    finally:
        await page.close()


async def test_a_ring_with_no_page_open_is_declined_and_an_event_says_so(house):
    camera, viewers, _, ctl, _ = house
    events = []
    viewers["alice"].web.manager.on_event(events.append)
    result = await _reply(ctl, _ring(ctl, camera, b"alice", "nopage"))
    assert result["ok"] is False and result["reason"] == "no-viewer", result
    assert any(e["event"] == "ring-declined" and e["reason"] == "no-page" for e in events), events
    await wait_for(
        lambda: any(e.get("reason") == "no-viewer" for e in _camera_events(ctl, camera)),
        what="the camera's event",
    )


async def test_a_ring_nobody_answers_times_out(house):
    camera, viewers, _, ctl, http = house
    alice = viewers["alice"]
    await alice.listen(http)
    result = await _reply(ctl, _ring(ctl, camera, b"alice", "timeout"))
    assert result["ok"] is False and result["reason"] == "no-answer", result
    assert len(alice.rings()) == 1 and [e["reason"] for e in alice.ended()] == ["no-answer"]


async def test_a_declined_ring(house):
    camera, viewers, _, ctl, http = house
    alice = viewers["alice"]
    await alice.listen(http)
    replies = _ring(ctl, camera, b"alice", "decline")
    await wait_for(alice.rings, timeout=30, what="the ring")
    ring = alice.rings()[0]["ring"]
    async with http.post(
        f"{alice.base}/api/rings/{ring}/decline", json={}, headers={"X-Media-Node-Token": alice.token}
    ) as r:
        assert r.status == 200
    result = await _reply(ctl, replies)
    assert result["ok"] is False and result["reason"] == "declined", result
    assert [e["reason"] for e in alice.ended()] == ["declined"]


async def test_two_callees_the_first_to_answer_wins_the_other_is_told(house):
    camera, viewers, service, ctl, http = house
    alice, bob = viewers["alice"], viewers["bob"]
    await alice.listen(http)
    await bob.listen(http)
    replies = _ring(ctl, camera, json.dumps({"peers": ["alice", "bob"]}).encode(), "both")
    await wait_for(lambda: alice.rings() and bob.rings(), timeout=30, what="both pages ringing")
    page = Page(bob, http, PAGES["bob"])
    try:
        reply = await page.open(path=f"/api/rings/{bob.rings()[0]['ring']}/answer")
        assert "answer" in reply
        result = await _reply(ctl, replies)
        assert result["ok"] is True and result["peer"] == "bob", result
        await page.receiver.wait_video_frames(10, timeout=30)
        # alice's ring was cancelled by the camera's signed `cancelled`, and her page told
        await wait_for(alice.ended, timeout=30, what="alice's ring ended")
        assert [e["reason"] for e in alice.ended()] == ["cancelled"], alice.events
        assert [c.peer.name for c in service.manager.active()] == ["bob"]
    finally:
        await page.close()


async def test_the_page_lists_the_camera_online_where_the_acl_lets_it_read_the_status(house):
    camera, viewers, service, _, http = house

    async def listed(viewer: Viewer) -> dict:
        async with http.get(f"{viewer.base}/api/peers", headers={"X-Media-Node-Token": viewer.token}) as r:
            return {p["name"]: p for p in (await r.json())["peers"]}

    await wait_for(
        lambda: viewers["alice"].web.presence.online(camera.node_id) is not None, what="the status"
    )
    assert (await listed(viewers["alice"]))["camera"]["online"] is True
    # bob's ACL has no `views`: the broker never delivers the status, so it stays unknown
    assert (await listed(viewers["bob"]))["camera"]["online"] is None
    await service.stop()  # the camera goes away: its status says offline
    await wait_for(lambda: viewers["alice"].web.presence.online(camera.node_id) is False, what="offline")
