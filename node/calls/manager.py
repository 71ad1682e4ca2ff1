"""The calls of one node: limits, the handshake steps, and the peer connections'
life cycle behind every signed link.

- A peer's view-request carries its recvonly offer; the node answers send-only with the
  publisher's tracks (`handle_link`). The one exception is talkback: a peer allowed
  `talk` may send one audio track, played on the speaker (one talker at a time). Any
  other sending m-line gets a signed `bad-offer` error: a viewer never sends video.
- An incoming offer (a peer calls this node, permission `call`) is the only two-way
  kind: whatever the peer sends is consumed by a receiver (without one, send-only).
- The node offers itself (`call`), or asks to view a peer (`view`, the viewer's side):
  it signs the offer, sends it over a transport and waits `answer_timeout` for the reply.

Every wait has a timeout; a call cut short releases what it had built."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from ..config import Config
from ..errors import NodeError
from ..ice import (
    IceApi,
    IcePolicy,
    MalformedSdpError,
    OverlayPeerConnection,
    PrivacyError,
    check_outgoing_sdp,
    filter_incoming_sdp,
)
from ..identity import Identity
from ..links import LinkError, LinkOpener, make_link
from ..links.link import Link, OpenedLink
from ..overlay import OverlayProvider
from ..peers import Peer, PeerStore
from ..transports.base import ClientTransport
from .answer import apply_offer, no_candidate_message, plan_for
from .call import CLOSE_TIMEOUT, Call, CallKind, new_call_id, release
from .directions import set_directions, view_request_media
from .errors import CallError, within
from .events import CallEvents, EventCallback
from .media import Attachment, Publisher, Receiver, ReceiverFactory
from .talk import check_talk, offer_talkback, open_talkback

log = logging.getLogger(__name__)

T = TypeVar("T")

SETUP_TIMEOUT = 10.0  # seconds for each local setup step (overlay lookup, gathering, SDP)


class CallManager:
    """All calls of one node (docs/architecture.md, "Calls")."""

    def __init__(
        self,
        identity: Identity,
        config: Config,
        peers: PeerStore,
        provider: OverlayProvider,
        publisher: Publisher | None,
        opener: LinkOpener,
        *,
        receiver_factory: ReceiverFactory | None = None,
    ):
        self.identity = identity
        self.config = config
        self.peers = peers
        self.provider = provider
        self.api = IceApi(provider)  # every peer connection of this node comes from here
        self.publisher = publisher
        self.opener = opener
        self.receiver_factory = receiver_factory
        self._calls: dict[str, Call] = {}
        self._pending = 0  # calls being set up (they hold a slot too)
        self.events = CallEvents()
        self._setups: set[asyncio.Future[Any]] = set()  # calls being set up: close() cancels them
        self._closed = False
        self._cancels: set[asyncio.Future[None]] = set()  # `cancelled` notices on their way

    # --- events & state ----------------------------------------------------------------

    def on_event(self, callback: EventCallback) -> None:
        self.events.subscribe(callback)

    def active(self) -> list[Call]:
        return list(self._calls.values())

    def _forget(self, call: Call) -> None:
        self._calls.pop(call.id, None)

    def _busy(self) -> bool:
        return len(self._calls) + self._pending >= self.config.calls.max_calls

    async def close(self) -> None:
        """End every call (SIGTERM): calls still being set up are cancelled (their peers
        get a `stopping` reply), then each call closes its sockets within CLOSE_TIMEOUT."""
        self._closed = True
        setups = list(self._setups)
        for task in setups:
            task.cancel()
        if setups:  # each releases its half-built peer connection as it unwinds
            await asyncio.wait(setups, timeout=2 * CLOSE_TIMEOUT)
        await asyncio.gather(*(c.end("node-stopping") for c in self.active()), return_exceptions=True)

    async def _set_up(self, coro: Awaitable[T]) -> T:
        """Run one call's setup as its own task, so close() can cancel it without
        cancelling the transport that asked; a setup cut short by close() is a
        CallError('stopping')."""
        task = asyncio.ensure_future(coro)
        self._setups.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if self._closed and task.cancelled() and not (me is not None and me.cancelling()):
                raise CallError("stopping", "this node is shutting down; try again shortly") from None
            raise
        finally:
            self._setups.discard(task)

    # --- shared steps --------------------------------------------------------------------

    async def _policy(self, peer: Peer) -> tuple[IcePolicy, str]:
        local = await within(
            SETUP_TIMEOUT,
            "finding this node's overlay address",
            self.provider.local_address(),
        )
        remote = await within(
            SETUP_TIMEOUT,
            f"resolving {peer.name}'s overlay address",
            self.provider.resolve(peer),
        )
        return self.api.policy(local, remote, label=peer.name), local

    def _receiver(self, pc: RTCPeerConnection) -> Receiver | None:
        factory = self.receiver_factory
        if factory is None:
            try:
                from ..media import MediaReceiver
            except ImportError:
                return None
            factory = MediaReceiver
        return factory(pc)

    def _sign(
        self,
        kind: str,
        peer: Peer,
        *,
        sdp: str = "",
        addr: str = "",
        ofh: str = "",
        err: dict[str, str] | None = None,
        sealed: bool = False,
    ) -> Link:
        return make_link(
            self.identity,
            kind,
            peer.node_id,
            ttl=self.config.links.ttl,
            sdp=sdp,
            addr=addr,
            prov=self.provider.name,
            ofh=ofh,
            err=err,
            sealed=sealed or self.config.links.seal,
        )

    def _error_reply(self, opened: OpenedLink, peer: Peer, code: str, message: str) -> str:
        self.events.emit(
            {
                "event": "rejected",
                "peer": peer.name,
                "peer_id": peer.node_id,
                "kind": opened.claims.kind,
                "code": code,
            }
        )
        log.warning("refused %s from %s: %s: %s", opened.claims.kind, peer.name, code, message)
        return self._sign(
            "error",
            peer,
            ofh=opened.digest,
            err={"code": code, "message": message},
            sealed=opened.sealed,
        ).text

    # --- daemon side: links in, replies out -------------------------------------------

    async def handle_link(self, text: str) -> str | None:
        """A view-request or offer in, the signed answer (or error link) out. Links that
        fail verification raise LinkError (the transport records the reason)."""
        try:
            opened = self.opener.open(text)
        except LinkError as e:
            self.events.emit({"event": "rejected", "reason": e.reason})
            raise
        kind = opened.claims.kind
        if kind in ("answer", "error"):
            raise LinkError(
                "wrong-offer",
                f"an unsolicited {kind}: this node is not waiting for one",
            )
        peer = opened.peer
        if peer is None:  # an opener without an allowlist is a programming error here
            raise LinkError("unknown-sender", "the daemon only answers allowlisted peers")
        if self._closed:
            return self._error_reply(
                opened, peer, "stopping", "this node is shutting down; try again shortly"
            )
        if self._busy():
            return self._error_reply(
                opened,
                peer,
                "busy",
                f"this node already serves its maximum of "
                f"{self.config.calls.max_calls} call(s); try again later",
            )
        publisher = self.publisher
        if publisher is None:
            return self._error_reply(
                opened, peer, "no-media", "this node has no camera or microphone to share"
            )
        unavailable = getattr(publisher, "unavailable_reason", None)
        if callable(unavailable) and unavailable():  # the reason (paths, a camera's URL) stays in the log
            return self._error_reply(
                opened,
                peer,
                "unavailable",
                "this node's camera is not available right now; it keeps retrying",
            )
        self._pending += 1
        try:
            return await self._set_up(self._answer(opened, peer, publisher))
        except CallError as e:
            return self._error_reply(opened, peer, e.code, e.message)
        # The details stay in this node's log: they may name addresses or paths, and a
        # link never carries an address that is not on the overlay (privacy rule 5).
        except PrivacyError as e:
            log.error("refusing to answer %s: %s", peer.name, e)
            return self._error_reply(
                opened,
                peer,
                "privacy",
                "this node refused to send an SDP that was not confined to the overlay (see its log)",
            )
        except NodeError as e:  # OverlayError and friends: the log says what to fix
            log.error("cannot answer %s: %s", peer.name, e)
            return self._error_reply(
                opened,
                peer,
                "unavailable",
                "this node cannot place the call on its overlay right now (see its log)",
            )
        except Exception as e:
            log.exception("answering %s from %s failed", kind, peer.name)
            return self._error_reply(
                opened, peer, "internal", f"the node failed to answer ({type(e).__name__})"
            )
        finally:
            self._pending -= 1

    async def _answer(self, opened: OpenedLink, peer: Peer, publisher: Publisher) -> str:
        claims = opened.claims
        policy, local = await self._policy(peer)
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
        pc = self.api.peer_connection(policy, answering=True)
        attachment: Attachment | None = None
        receiver: Receiver | None = None
        try:
            if talk:  # claims the speaker before any media flows (busy: told, not queued)
                receiver = open_talkback(publisher, pc, call_id)
            await apply_offer(pc, plan, peer.name, SETUP_TIMEOUT)
            if two_way:  # whatever the peer sends is consumed (never left to pile up)
                receiver = self._receiver(pc)
            attachment = publisher.attach(pc)
            plan.state_codecs(pc)
            receive = {"audio"} if talk else ({"audio", "video"} if receiver is not None else set())
            set_directions(pc, receive=receive)
            answer = await within(SETUP_TIMEOUT, "creating the answer", pc.createAnswer())
            shaped = RTCSessionDescription(sdp=plan.shape(answer.sdp), type="answer")
            await within(
                SETUP_TIMEOUT,
                "gathering on the overlay address",
                pc.setLocalDescription(shaped),
            )
            sdp = pc.localDescription.sdp
            check_outgoing_sdp(sdp, policy)  # before signing, always
            reply = self._sign(
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
        call = self._new_call(
            "view" if claims.kind == "view-request" else "incoming",
            peer,
            pc,
            policy,
            attachment,
            receiver,
            call_id=call_id,
            talk=talk,
        )
        await self._register(call)
        return reply.text

    def _new_call(
        self,
        kind: CallKind,
        peer: Peer,
        pc: OverlayPeerConnection,
        policy: IcePolicy,
        attachment: Attachment | None,
        receiver: Receiver | None,
        *,
        call_id: str = "",
        talk: bool = False,
    ) -> Call:
        return Call(
            kind,
            peer,
            pc,
            policy,
            self.config.calls,
            emit=self.events.emit,
            on_ended=self._forget,
            attachment=attachment,
            receiver=receiver,
            call_id=call_id,
            talk=talk,
        )

    async def _register(self, call: Call) -> None:
        if self._closed:  # set up while close() ran: end it now, never leave it behind
            await call.end("node-stopping")
            raise CallError("stopping", "this node is shutting down; try again shortly")
        self._calls[call.id] = call
        call.start_watch()
        log.debug("call %s: %s with %s started", call.id, call.kind, call.peer.name)
        self.events.emit({"event": "call-started", **call.describe()})

    # --- this node offers: outgoing calls and viewing ----------------------------------

    async def call(self, peer: Peer, transport: ClientTransport) -> Call:
        """Offer this node's tracks to `peer` (cmd/call); returns once the answer is set."""
        if not peer.may("call"):
            raise CallError(
                "no-permission",
                f"peer {peer.name!r} is not allowed 'call' in the allowlist",
            )
        if self.publisher is None:
            raise CallError("no-media", "this node has no publisher to call with")
        return await self._offer(peer, transport, "offer", "outgoing")

    async def view(
        self, peer: Peer, transport: ClientTransport, talk: MediaStreamTrack | None = None
    ) -> Call:
        """Ask `peer` to show its camera: a recvonly audio+video offer (the viewer).
        `talk`: an audio track to send to the peer's speaker (it needs `talk` there)."""
        return await self._offer(peer, transport, "view-request", "viewing", talk)

    async def _offer(
        self,
        peer: Peer,
        transport: ClientTransport,
        link_kind: str,
        call_kind: CallKind,
        talk: MediaStreamTrack | None = None,
    ) -> Call:
        if self._closed:
            raise CallError("stopping", "this node is shutting down")
        return await self._set_up(self._make_offer(peer, transport, link_kind, call_kind, talk))

    async def _make_offer(
        self,
        peer: Peer,
        transport: ClientTransport,
        link_kind: str,
        call_kind: CallKind,
        talk: MediaStreamTrack | None = None,
    ) -> Call:
        publisher = self.publisher
        if link_kind == "offer" and publisher is None:  # checked by call(); narrowed here
            raise CallError("no-media", "this node has no publisher to call with")
        if self._busy():
            raise CallError("busy", f"already {len(self._calls)} call(s) (calls.max_calls)")
        self._pending += 1
        pc: OverlayPeerConnection | None = None
        attachment: Attachment | None = None
        receiver: Receiver | None = None
        try:
            policy, local = await self._policy(peer)
            pc = self.api.peer_connection(policy)
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
                receiver = self._receiver(pc)
            offer = await within(SETUP_TIMEOUT, "creating the offer", pc.createOffer())
            await within(
                SETUP_TIMEOUT,
                "gathering on the overlay address",
                pc.setLocalDescription(offer),
            )
            sdp = pc.localDescription.sdp
            check_outgoing_sdp(sdp, policy)
            link = self._sign(link_kind, peer, sdp=sdp, addr=local)
            wait = self.config.calls.answer_timeout
            try:
                reply_text = await within(
                    wait + 1,
                    f"waiting for {peer.name}'s answer",
                    transport.request(peer, link.text, wait),
                )
            except asyncio.CancelledError:  # e.g. another callee answered first: tell this one
                self._tell_cancelled(peer, transport, link.digest)
                raise
            opened = self.opener.open(reply_text, expect_offer=link.digest)
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
        finally:
            self._pending -= 1
        call = self._new_call(call_kind, peer, pc, policy, attachment, receiver, call_id=call_id, talk=talks)
        await self._register(call)
        return call

    def _tell_cancelled(self, peer: Peer, transport: ClientTransport, offer_digest: str) -> None:
        """A signed `cancelled` error for an offer this node no longer waits on, sent
        without waiting (the peer may be ringing someone)."""
        text = self._sign(
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

        task = asyncio.ensure_future(send())
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def call_first(self, peers: list[Peer], transport: ClientTransport) -> Call:
        """Call several peers at once (a doorbell ringing a household): the first to
        answer wins; the others are cancelled and told so (a signed `cancelled`)."""
        tasks = [asyncio.ensure_future(self.call(p, transport)) for p in peers]
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


__all__ = ["CallManager"]
