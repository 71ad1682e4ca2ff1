"""The daemon side of calls: a signed link in, a signed reply out.

A peer's view-request carries its recvonly offer; the node answers send-only with the
publisher's tracks. The one exception is talkback: a peer allowed `talk` may send one
audio track, played on the speaker (one talker at a time). Any other sending m-line
gets a signed `bad-offer` error: a viewer never sends video. An incoming offer (a peer
calls this node, permission `call`) is the only two-way kind: whatever the peer sends
is consumed by a receiver (without one, send-only). Trigger links go to
`trigger.serve_trigger`.

Every refusal is a signed error link with a fixed public message; the details stay in
this node's log."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiortc import RTCSessionDescription

from ..errors import NodeError
from ..ice import MalformedSdpError, PrivacyError, check_outgoing_sdp, filter_incoming_sdp
from ..links import LinkError
from ..links.claims import REPLY_KINDS
from ..links.link import OpenedLink
from ..peers import Peer
from .answer import apply_offer, no_candidate_message, plan_for
from .call import new_call_id, release
from .directions import set_directions, view_request_media
from .errors import SETUP_TIMEOUT, CallError, within
from .media import Attachment, Publisher, Receiver
from .talk import check_talk, open_talkback
from .trigger import serve_trigger

if TYPE_CHECKING:
    from .manager import CallManager

log = logging.getLogger(__name__)

_REFUSED = ("privacy", "this node refused to send an SDP that was not confined to the overlay (see its log)")
_UNAVAILABLE = ("unavailable", "this node cannot place the call on its overlay right now (see its log)")


async def serve_link(manager: CallManager, text: str) -> str | None:
    """A view-request, offer or trigger in, the signed answer (or error link) out.
    Links that fail verification raise LinkError (the transport records the reason)."""
    try:
        opened = manager.opener.open(text)
    except LinkError as e:
        manager.events.emit({"event": "rejected", "reason": e.reason})
        raise
    kind = opened.claims.kind
    if kind in REPLY_KINDS:
        raise LinkError(
            "wrong-offer",
            f"an unsolicited {kind}: this node is not waiting for one",
        )
    peer = opened.peer
    if peer is None:  # an opener without an allowlist is a programming error here
        raise LinkError("unknown-sender", "the daemon only answers allowlisted peers")
    if kind == "trigger":  # the opener checked the sender may `trigger`
        return await serve_trigger(manager, opened)
    if manager.closed:
        return manager.error_reply(opened, peer, "stopping", "this node is shutting down; try again shortly")
    if manager.busy():
        return manager.error_reply(
            opened,
            peer,
            "busy",
            f"this node already serves its maximum of "
            f"{manager.config.calls.max_calls} call(s); try again later",
        )
    publisher = manager.publisher
    if publisher is None:
        return manager.error_reply(opened, peer, "no-media", "this node has no camera or microphone to share")
    unavailable = getattr(publisher, "unavailable_reason", None)
    if callable(unavailable) and unavailable():  # the reason (paths, a camera's URL) stays in the log
        return manager.error_reply(
            opened,
            peer,
            "unavailable",
            "this node's camera is not available right now; it keeps retrying",
        )
    with manager.slot():
        try:
            return await manager.set_up(answer(manager, opened, peer, publisher))
        except CallError as e:
            return manager.error_reply(opened, peer, e.code, e.message)
        # A PrivacyError, or OverlayError and friends: the details stay in this node's log
        # (they may name addresses or paths, and a link never carries an address that is
        # not on the overlay, privacy rule 5); the log says what to fix.
        except NodeError as e:
            privacy = isinstance(e, PrivacyError)
            log.error("refusing to answer %s: %s" if privacy else "cannot answer %s: %s", peer.name, e)
            code, message = _REFUSED if privacy else _UNAVAILABLE
            return manager.error_reply(opened, peer, code, message)
        except Exception as e:
            log.exception("answering %s from %s failed", kind, peer.name)
            return manager.error_reply(
                opened, peer, "internal", f"the node failed to answer ({type(e).__name__})"
            )


async def answer(manager: CallManager, opened: OpenedLink, peer: Peer, publisher: Publisher) -> str:
    """Answer a verified view-request or offer: the call starts, the signed answer is
    returned (CallError and friends when it cannot be served; nothing is left behind)."""
    claims = opened.claims
    policy, local = await manager.policy(peer)
    try:
        offer_sdp = filter_incoming_sdp(claims.sdp, policy, reported=claims.addr)
    except MalformedSdpError as e:
        log.error("%s's offer: %s", peer.name, e)
        raise CallError("bad-offer", "the offer's SDP is malformed (see this node's log)") from None
    except PrivacyError as e:
        log.error("%s's offer: %s", peer.name, e)
        raise CallError("no-candidate", no_candidate_message(claims.sdp)) from None
    # Only an `offer` (permission `call`) may be two-way; a view-request asks to
    # receive, plus at most one audio track from a peer allowed `talk` (talkback).
    # The camera never takes video from a viewer.
    two_way = claims.kind == "offer"
    talk = False
    if not two_way:
        problem, talk = view_request_media(offer_sdp)
        if problem:
            log.error("%s's view-request: %s", peer.name, problem)
            raise CallError(
                "bad-offer",
                "a view-request must only ask to receive audio and video (recvonly "
                "m-lines), plus at most one audio track to talk",
            )
        if talk:
            check_talk(peer, publisher)
    plan = await plan_for(publisher, offer_sdp, peer.name)
    call_id = new_call_id()
    pc = manager.api.peer_connection(policy, answering=True)
    attachment: Attachment | None = None
    receiver: Receiver | None = None
    try:
        if talk:  # claims the speaker before any media flows (busy: told, not queued)
            receiver = open_talkback(publisher, pc, call_id)
        await apply_offer(pc, plan, peer.name, SETUP_TIMEOUT)
        if two_way:  # whatever the peer sends is consumed (never left to pile up)
            receiver = manager.receiver(pc)
        attachment = publisher.attach(pc)
        plan.state_codecs(pc)
        receive = {"audio"} if talk else ({"audio", "video"} if receiver is not None else set())
        set_directions(pc, receive=receive)
        created = await within(SETUP_TIMEOUT, "creating the answer", pc.createAnswer())
        shaped = RTCSessionDescription(sdp=plan.shape(created.sdp), type="answer")
        await within(
            SETUP_TIMEOUT,
            "gathering on the overlay address",
            pc.setLocalDescription(shaped),
        )
        sdp = pc.localDescription.sdp
        check_outgoing_sdp(sdp, policy)  # before signing, always
        reply = manager.sign(
            "answer",
            peer,
            sdp=sdp,
            addr=local,
            ofh=opened.digest,
            sealed=opened.sealed,
        )
    except BaseException:
        await release(pc, attachment, receiver)
        raise
    await manager.start(
        "view" if claims.kind == "view-request" else "incoming",
        peer,
        pc,
        policy,
        attachment,
        receiver,
        call_id=call_id,
        talk=talk,
    )
    return reply.sent


__all__ = ["answer", "serve_link"]
