"""Figure 6: link sizes. A real view: the viewer node's CallManager signs its
view-request (recvonly audio+video offer), the camera node's CallManager answers with
the publisher's tracks; the transport in between records both link texts. Done once
plain and once sealed (links.seal)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from node.config import Config, MediaSection
from node.links import LinkOpener, ReplayCache
from node.media import MediaReceiver, make_publisher
from node.overlay.static import StaticProvider

from .homes import make_nodes

# Yggdrasil-shaped addresses (200::/7, full length) to show the size on an IPv6 overlay.
YGG = {
    "127.0.0.1": "200:1111:2222:3333:4444:5555:6666:7777",
    "127.0.0.10": "201:8888:9999:aaaa:bbbb:cccc:dddd:eeee",
}


def _readdress(text: str, node, other) -> int:
    """Length of the same link re-signed by `node` with IPv6 overlay addresses in its
    claims and SDP (IPv4 `c=IN IP4 x` becomes `c=IN IP6 y`)."""
    from node.links import LinkOpener, make_link

    sealed = not text.startswith("mnode:")
    opened = LinkOpener(other.identity, None).open(text)
    c = opened.claims
    sdp = c.sdp
    for v4, v6 in YGG.items():
        sdp = sdp.replace(f"IN IP4 {v4}\r", f"IN IP6 {v6}\r").replace(f" {v4} ", f" {v6} ")
    made = make_link(
        node.identity,
        c.kind,
        c.aud,
        sdp=sdp,
        addr=YGG.get(c.addr, c.addr),
        prov=c.prov,
        ofh=c.ofh,
        err=c.err,
        sealed=sealed,
        ttl=c.exp - c.iat,
    )
    return len(made.text)


class RecordingTransport:
    def __init__(self, manager):
        self.manager = manager
        self.sent: list[str] = []
        self.replies: list[str] = []

    async def request(self, peer, link_text: str, timeout: float) -> str:
        self.sent.append(link_text)
        reply: str | None = await asyncio.wait_for(self.manager.handle_link(link_text), timeout)
        if reply is None:
            raise RuntimeError("the camera sent no reply")
        self.replies.append(reply)
        return reply


def _manager(node, sealed: bool, publisher, receiver_factory=None):
    from node.calls import CallManager

    config = Config()
    config.links.seal = sealed
    opener = LinkOpener(node.identity, node.peers, ReplayCache(node.home.replay_db), skew=30)
    return CallManager(
        node.identity,
        config,
        node.peers,
        StaticProvider(address=node.address),
        publisher,
        opener,
        receiver_factory=receiver_factory,
    )


async def _measure(clip_h264: Path) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-links-") as tmp:
        cam, (viewer,) = make_nodes(Path(tmp), 1)
        publisher = make_publisher(MediaSection(video=f"file:{clip_h264}", audio="tone"))
        await publisher.start()
        try:
            for sealed in (False, True):
                key = "sealed" if sealed else "plain"
                # the viewer asks to watch: view-request (its offer) -> answer
                cam_mgr = _manager(cam, sealed, publisher)
                view_mgr = _manager(viewer, sealed, None, MediaReceiver)
                transport = RecordingTransport(cam_mgr)
                call = await asyncio.wait_for(view_mgr.view(viewer.peers.find("cam"), transport), 30)
                await call.end("bench")
                await view_mgr.close()
                # the camera calls the viewer (a two-way node, e.g. a doorbell's screen):
                # offer -> answer
                view_mgr = _manager(viewer, sealed, publisher, MediaReceiver)
                back = RecordingTransport(view_mgr)
                call = await asyncio.wait_for(cam_mgr.call(cam.peers.find("viewer0"), back), 30)
                await call.end("bench")
                await view_mgr.close()
                await cam_mgr.close()
                out[key] = {
                    "view_request_chars": len(transport.sent[0]),
                    "view_answer_chars": len(transport.replies[0]),
                    "call_offer_chars": len(back.sent[0]),
                    "call_answer_chars": len(back.replies[0]),
                }
                out[f"{key}_ipv6_overlay"] = {
                    "view_request_chars": _readdress(transport.sent[0], viewer, cam),
                    "view_answer_chars": _readdress(transport.replies[0], cam, viewer),
                    "call_offer_chars": _readdress(back.sent[0], cam, viewer),
                    "call_answer_chars": _readdress(back.replies[0], viewer, cam),
                }
        finally:
            await publisher.stop()
    out["note"] = (
        "characters of the whole link text (prefix included), audio+video, from a real view "
        "and a real call between two nodes on IPv4 loopback as the overlay; the IPv6 columns are "
        "the same links re-signed with full-length Yggdrasil-shaped addresses (200::/7) in the "
        "claims and the SDP"
    )
    return out


def measure(clip_h264: Path) -> dict:
    return asyncio.run(_measure(clip_h264))
