"""Helpers for the transport tests: a link handler built on the real links code (what
CallManager.handle_link does at the handshake level), and requests made by a peer."""

from __future__ import annotations

import asyncio
from collections import Counter

from node.links import LinkOpener, ReplayCache, make_link

SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 101\r\n"
    "c=IN IP4 100.64.0.1\r\na=recvonly\r\n"
)


class Responder:
    """Opens each link with the node's allowlist and persistent replay cache and answers
    view-requests and offers with a signed answer bound to them. `delay` keeps a link
    in hand for a while (crash tests); `handled` counts how often each nonce got through."""

    def __init__(self, node, delay: float = 0.0):
        self.node = node
        self.replay = ReplayCache(node.home.replay_db)
        self.opener = LinkOpener(node.identity, node.peers, self.replay, skew=30)
        self.delay = delay
        self.handled: Counter[str] = Counter()

    async def __call__(self, text: str) -> str | None:
        opened = self.opener.open(text)
        self.handled[opened.claims.nonce] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if opened.claims.kind in ("view-request", "offer"):
            return make_link(self.node.identity, "answer", opened.claims.iss, sdp=SDP, ofh=opened.digest).sent
        return None

    def close(self) -> None:
        self.replay.close()


def view_request(sender, receiver, **kw):
    return make_link(sender.identity, "view-request", receiver.node_id, sdp=SDP, **kw)


def check_answer(sender, request, reply_text: str):
    """The reply must be an answer signed by a trusted peer and bound to `request`."""
    opened = LinkOpener(sender.identity, sender.peers, None).open(reply_text, expect_offer=request.digest)
    assert opened.claims.kind == "answer"
    return opened
