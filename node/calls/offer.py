"""This node offers: an outgoing call (`call`, permission `call` at the peer), viewing a
peer's camera (`view`, a recvonly offer, optionally with a talkback track), and ringing
several peers at once (`call_first`). The offer is signed, sent over a transport, and
the reply waited for `calls.answer_timeout`; a call cut short releases what it built."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from ..ice import OverlayPeerConnection, check_outgoing_sdp, filter_incoming_sdp
from ..peers import Peer
from ..transports.base import ClientTransport
from .call import Call, CallKind, new_call_id, release
from .errors import SETUP_TIMEOUT, CallError, within
from .media import Attachment, Receiver
from .talk import offer_talkback

if TYPE_CHECKING:
    from .manager import CallManager


async def call(manager: CallManager, peer: Peer, transport: ClientTransport) -> Call:
    """Offer this node's tracks to `peer` (cmd/call); returns once the answer is set."""
    if not peer.may("call"):
        raise CallError(
            "no-permission",
            f"peer {peer.name!r} is not allowed 'call' in the allowlist",
        )
    if manager.publisher is None:
        raise CallError("no-media", "this node has no publisher to call with")
    return await manager.set_up(_offer(manager, peer, transport, "offer", "outgoing"))


async def view(
    manager: CallManager, peer: Peer, transport: ClientTransport, talk: MediaStreamTrack | None = None
) -> Call:
    """Ask `peer` to show its camera: a recvonly audio+video offer (the viewer).
    `talk`: an audio track to send to the peer's speaker (it needs `talk` there)."""
    return await manager.set_up(_offer(manager, peer, transport, "view-request", "viewing", talk))


async def call_first(manager: CallManager, peers: list[Peer], transport: ClientTransport) -> Call:
    """Call several peers at once (a doorbell ringing a household): the first to
    answer wins; the others are cancelled and told so (a signed `cancelled`)."""
    tasks = [asyncio.ensure_future(manager.call(p, transport)) for p in peers]
    errors: list[BaseException] = []
    try:
        for next_done in asyncio.as_completed(tasks):
            try:
                return await next_done
            except CallError as e:
                errors.append(e)
        raise errors[0] if errors else CallError("no-answer", "nobody answered")
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _offer(
    manager: CallManager,
    peer: Peer,
    transport: ClientTransport,
    link_kind: str,
    call_kind: CallKind,
    talk: MediaStreamTrack | None = None,
) -> Call:
    publisher = manager.publisher
    if link_kind == "offer" and publisher is None:  # checked by call(); narrowed here
        raise CallError("no-media", "this node has no publisher to call with")
    if manager.busy():
        raise CallError("busy", f"already {len(manager.active())} call(s) (calls.max_calls)")
    pc: OverlayPeerConnection | None = None
    attachment: Attachment | None = None
    receiver: Receiver | None = None
    with manager.slot():
        try:
            policy, local = await manager.policy(peer)
            pc = manager.api.peer_connection(policy)
            call_id = new_call_id()
            if publisher is not None and link_kind == "offer":
                attachment = publisher.attach(pc)
                receiver = offer_talkback(peer, publisher, pc, call_id)  # a doorbell: talk back
                talks = receiver is not None
            else:
                # Audio first, then video: the order of link format v1's SDP template.
                talks = talk is not None
                if talk is not None:
                    pc.addTransceiver(talk, direction="sendrecv")
                else:
                    pc.addTransceiver("audio", direction="recvonly")
                video = pc.addTransceiver("video", direction="recvonly")
                from ..media.hooks import prefer_h264_receive  # cameras send H.264 as encoded

                prefer_h264_receive(video)
                receiver = manager.receiver(pc)
            offer = await within(SETUP_TIMEOUT, "creating the offer", pc.createOffer())
            await within(
                SETUP_TIMEOUT,
                "gathering on the overlay address",
                pc.setLocalDescription(offer),
            )
            sdp = pc.localDescription.sdp
            check_outgoing_sdp(sdp, policy)
            link = manager.sign(link_kind, peer, sdp=sdp, addr=local)
            wait = manager.config.calls.answer_timeout
            try:
                reply_text = await within(
                    wait + 1,
                    f"waiting for {peer.name}'s answer",
                    transport.request(peer, link.text, wait),
                )
            except asyncio.CancelledError:  # e.g. another callee answered first: tell this one
                _tell_cancelled(manager, peer, transport, link.digest)
                raise
            opened = manager.opener.open(reply_text, expect_offer=link.digest)
            if opened.peer is None or opened.peer.node_id != peer.node_id:
                raise CallError("wrong-peer", "the reply was not signed by the peer that was asked")
            if opened.claims.kind == "error":
                err = opened.claims.err
                raise CallError(
                    err.get("code", "error"),
                    err.get("message", "") or "the peer refused",
                )
            if opened.claims.kind != "answer":
                raise CallError("bad-reply", f"expected an answer, got a {opened.claims.kind}")
            answer_sdp = filter_incoming_sdp(opened.claims.sdp, policy, reported=opened.claims.addr)
            await within(
                SETUP_TIMEOUT,
                "applying the answer",
                pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer")),
            )
        except BaseException:
            if pc is not None:
                await release(pc, attachment, receiver)
            raise
    return await manager.start(call_kind, peer, pc, policy, attachment, receiver, call_id=call_id, talk=talks)


def _tell_cancelled(manager: CallManager, peer: Peer, transport: ClientTransport, offer_digest: str) -> None:
    """A signed `cancelled` error for an offer this node no longer waits on, sent
    without waiting (the peer may be ringing someone)."""
    text = manager.sign(
        "error",
        peer,
        ofh=offer_digest,
        err={"code": "cancelled", "message": "the caller stopped calling (answered elsewhere)"},
    ).text

    async def send() -> None:
        try:
            await transport.request(peer, text, 5)
        except Exception:  # nothing to answer to a cancel: a timeout is expected
            pass

    manager.keep(asyncio.ensure_future(send()))


__all__ = ["call", "call_first", "view"]
