"""The doorbell: a camera calling this viewer node rings every open page.

A call arrives as a signed `offer` (the camera was asked over MQTT `cmd/call`; it needs
permission `call` here). What happens to it:

- no page is open: declined at once with `no-viewer` (and a `ring-declined` event);
- pages are open: each shows the ring (a notification and a sound); the first page to
  answer gets the caller live (the page's offer goes to POST /api/rings/ID/answer), the
  others see the ring end; `decline` ends it for all with `declined`;
- nobody answers within `web.ring_timeout` seconds: `no-answer`;
- the caller gives up (it rang several viewers and another answered first): its signed
  `cancelled` error ends the ring, and the pages are told why.

Answering is an ordinary incoming call on the overlay: this node answers the camera's
offer (video and audio received; its audio two-way when the camera offered that, i.e.
it lets this viewer talk) and relays it to the page like a view."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription

from ..calls import Call, CallError, CallManager
from ..calls.errors import SETUP_TIMEOUT, within
from ..ice import MalformedSdpError, PrivacyError, check_outgoing_sdp, filter_incoming_sdp
from ..links import LinkError
from ..links.link import OpenedLink

log = logging.getLogger(__name__)


class Ring:
    """One incoming call waiting for a page. `reply` resolves to the signed link the
    caller gets (an answer or an error)."""

    def __init__(self, opened: OpenedLink):
        assert opened.peer is not None
        self.id = os.urandom(6).hex()
        self.opened = opened
        self.peer = opened.peer
        self.started = time.monotonic()
        self.reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.taken = False  # a page is answering: later answers are refused

    def describe(self) -> dict[str, Any]:
        return {"ring": self.id, "peer": self.peer.name, "peer_id": self.peer.node_id}


class ViewerCalls(CallManager):
    """The viewer node's CallManager: it has no camera, so an incoming offer is only
    answered by `accept` (from a page), never by handle_link itself."""

    async def accept(self, ring: Ring, talk: MediaStreamTrack | None) -> Call:
        """Answer the ringing offer: receive its media (a packet receiver, for the relay),
        send `talk` back when the caller's audio is two-way. Resolves `ring.reply`."""
        opened = ring.opened
        peer, claims = ring.peer, opened.claims
        try:
            parsed = SessionDescription.parse(claims.sdp)
        except Exception:
            raise CallError("bad-offer", "the caller's offer cannot be parsed") from None
        if talk is not None and not any(
            m.kind == "audio" and m.direction == "sendrecv" for m in parsed.media
        ):
            raise CallError("no-talk", "the caller does not let this viewer talk")
        policy, local = await self.policy(peer)
        try:
            offer_sdp = filter_incoming_sdp(claims.sdp, policy, reported=claims.addr)
        except (MalformedSdpError, PrivacyError) as e:
            log.error("%s's call: %s", peer.name, e)
            raise CallError("no-candidate", "the call's offer has no candidate on the overlay") from None
        pc = self.api.peer_connection(policy, answering=True)
        receiver = self.receiver(pc)
        try:
            await within(
                SETUP_TIMEOUT,
                "applying the offer",
                pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer")),
            )
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "audio" and talk is not None:
                    transceiver.sender.replaceTrack(talk)
                    transceiver.direction = "sendrecv"
                else:
                    transceiver.direction = "recvonly"
            answer = await within(SETUP_TIMEOUT, "creating the answer", pc.createAnswer())
            await within(SETUP_TIMEOUT, "gathering on the overlay address", pc.setLocalDescription(answer))
            sdp = pc.localDescription.sdp
            check_outgoing_sdp(sdp, policy)
            reply = self.sign("answer", peer, sdp=sdp, addr=local, ofh=opened.digest, sealed=opened.sealed)
        except BaseException:
            from ..calls.call import release

            await release(pc, None, receiver)
            raise
        call = await self.start("incoming", peer, pc, policy, None, receiver, talk=talk is not None)
        if not ring.reply.done():
            ring.reply.set_result(reply.text)
        return call

    def refuse(self, opened: OpenedLink, code: str, message: str) -> str:
        assert opened.peer is not None
        return self.error_reply(opened, opened.peer, code, message)


class Doorbell:
    """Turns incoming links into rings for the open pages (`emit` reaches them)."""

    def __init__(
        self,
        calls: ViewerCalls,
        emit: Callable[[dict[str, Any]], None],
        pages: Callable[[], int],
        timeout: float,
    ):
        self.calls = calls
        self.emit = emit
        self.pages = pages
        self.timeout = timeout
        self.rings: dict[str, Ring] = {}

    def _end(self, ring: Ring, reason: str) -> None:
        if self.rings.pop(ring.id, None) is not None:
            self.emit({"event": "ring-ended", **ring.describe(), "reason": reason})
            self.calls.events.emit({"event": "ring-ended", **ring.describe(), "reason": reason})

    async def handle_link(self, text: str) -> str | None:
        """What the transports call with each incoming link; the reply to send, if any."""
        try:
            opened = self.calls.opener.open(text)
        except LinkError as e:
            self.calls.events.emit({"event": "rejected", "reason": e.reason})
            raise
        claims = opened.claims
        if claims.kind == "error":
            ring = next((r for r in self.rings.values() if r.opened.digest == claims.ofh), None)
            if ring is None or ring.peer.node_id != claims.iss:
                raise LinkError("wrong-offer", "an error for no call this node is ringing")
            code = (claims.err or {}).get("code", "cancelled")
            log.info("%s stopped calling (%s)", ring.peer.name, code)
            if not ring.reply.done():
                ring.reply.cancel()
            self._end(ring, code)
            return None
        if claims.kind == "answer":
            raise LinkError("wrong-offer", "an unsolicited answer: this node is not waiting for one")
        if claims.kind != "offer":
            return self.calls.refuse(opened, "no-media", "this node is a viewer: it has no camera to share")
        ring = Ring(opened)
        if self.pages() == 0:
            event = {"event": "ring-declined", **ring.describe(), "reason": "no-page"}
            self.calls.events.emit(event)
            log.info("%s called, but no page is open: declined", ring.peer.name)
            return self.calls.refuse(opened, "no-viewer", "nobody has this node's viewer page open")
        self.rings[ring.id] = ring
        self.emit({"event": "ring", **ring.describe(), "timeout": self.timeout})
        self.calls.events.emit({"event": "ring", **ring.describe()})
        try:
            return await asyncio.wait_for(asyncio.shield(ring.reply), self.timeout)
        except TimeoutError:
            if ring.taken:  # a page is setting up the answer: give it the setup time
                try:
                    return await asyncio.wait_for(asyncio.shield(ring.reply), 2 * SETUP_TIMEOUT)
                except (TimeoutError, asyncio.CancelledError):
                    pass
            self._end(ring, "no-answer")
            return self.calls.refuse(opened, "no-answer", "nobody answered the call in time")
        except asyncio.CancelledError:
            if ring.reply.cancelled():  # declined, or the caller gave up
                reason = "declined" if ring.id in self.rings else "cancelled"
                self._end(ring, reason)
                if reason == "cancelled":
                    return None
                return self.calls.refuse(opened, "declined", "the call was declined")
            raise
        finally:
            if ring.reply.done() and not ring.reply.cancelled():
                self._end(ring, "answered")

    def take(self, ring_id: str) -> Ring:
        """The ring a page answers (each ring once)."""
        ring = self.rings.get(ring_id)
        if ring is None or ring.taken:
            raise CallError("no-ring", "this call is no longer ringing (answered elsewhere, or it ended)")
        ring.taken = True
        return ring

    def decline(self, ring_id: str) -> None:
        ring = self.rings.get(ring_id)
        if ring is None:
            raise CallError("no-ring", "this call is no longer ringing")
        ring.reply.cancel()  # handle_link replies `declined` and ends the ring


__all__ = ["Doorbell", "Ring", "ViewerCalls"]
