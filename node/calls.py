"""Calls: the RTCPeerConnection life cycle behind every signed handshake.

- A peer's view-request carries its recvonly offer; the node answers send-only with the
  publisher's tracks (`handle_link`). A view-request whose m-lines are not all recvonly
  (or inactive) gets a signed `bad-offer` error: a viewer never sends media in.
- An incoming offer (a peer calls this node, permission `call`) is the only two-way
  kind: whatever the peer sends is consumed by a receiver (without one, send-only).
- The node offers itself (`call`), or asks to view a peer (`view`, the viewer's side):
  it signs the offer, sends it over a transport and waits `answer_timeout` for the reply.

Every wait has a timeout. A call ends when its connection fails or closes, when it does
not connect within `connect_timeout`, or when nothing has arrived from the peer for
`idle_timeout` seconds (RTCP receiver reports flow every 0.5-1.5 s, so a live peer is
never silent that long); ending releases the peer connection's sockets, tasks and the
media attachment. Events and stats never carry an address (privacy: no underlay address ever leaves the node)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription

from .config import Config
from .errors import NodeError
from .ice import (
    IcePolicy,
    MalformedSdpError,
    OverlayPeerConnection,
    PrivacyError,
    check_outgoing_sdp,
    filter_incoming_sdp,
    ice_connections,
    selected_pair,
)
from .identity import Identity
from .links import LinkError, LinkOpener, make_link
from .links.link import OpenedLink
from .peers import Peer, PeerStore

log = logging.getLogger(__name__)

SETUP_TIMEOUT = 10.0  # seconds for each local setup step (overlay lookup, gathering, SDP)
CLOSE_TIMEOUT = 5.0
POLL = 0.5  # seconds between liveness/stats polls


class CallError(NodeError):
    """A call could not be made or was refused: `code` is stable (busy, timeout, ...)."""

    exit_code = 5

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class Publisher(Protocol):  # node.media.MediaPublisher
    def attach(self, pc: Any) -> Any: ...


class Transport(Protocol):  # client side of node.transports
    async def request(self, peer: Peer, link_text: str, timeout: float) -> str: ...


ReceiverFactory = Callable[[Any], Any]  # pc -> an object with summary() (node.media.MediaReceiver)
EventCallback = Callable[[dict], Any]


def _new_id() -> str:
    return os.urandom(6).hex()


async def _within(seconds: float, what: str, aw: Awaitable):
    try:
        return await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        raise CallError("timeout", f"{what} took longer than {seconds:.0f} s") from None


@dataclass
class CallStats:
    bytes_sent: int = 0
    bytes_received: int = 0
    packets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    rtt_ms: float | None = None
    frames_sent: int | None = None
    frames_received: int | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Call:
    """One peer connection with one peer. `kind`: view (the node serves a viewer),
    incoming (a peer called the node), outgoing (the node called a peer), viewing (this
    node watches a peer)."""

    def __init__(
        self,
        manager: CallManager,
        kind: str,
        peer: Peer,
        pc: OverlayPeerConnection,
        policy: IcePolicy,
        attachment: Any = None,
        receiver: Any = None,
    ):
        self.id = _new_id()
        self.manager = manager
        self.kind = kind
        self.peer = peer
        self.pc = pc
        self.policy = policy
        self.attachment = attachment
        self.receiver = receiver
        self.started = time.monotonic()
        self.connected_at: float | None = None
        self.ended_reason: str | None = None
        self.ended = asyncio.Event()
        self._stats = CallStats()
        self._pair: tuple[str, str] | None = None
        self._watch: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._closing: asyncio.Task | None = None

        @pc.on("connectionstatechange")
        def _changed() -> None:
            self._wake.set()

    # --- views -----------------------------------------------------------------------

    @property
    def state(self) -> str:
        if self.ended.is_set():
            return "ended"
        return "connected" if self.connected_at is not None else "connecting"

    def stats(self) -> dict:
        """The latest stats snapshot (refreshed every POLL seconds while the call runs)."""
        out = self._stats.as_dict()
        out["duration_s"] = round(time.monotonic() - self.started, 3)
        return out

    def selected_pair(self) -> tuple[str, str] | None:
        """(local, remote) overlay addresses of the selected candidate pair."""
        return self._pair or selected_pair(self.pc)

    def describe(self) -> dict:
        """For events, status and logs: never an address."""
        return {
            "call": self.id,
            "kind": self.kind,
            "peer": self.peer.name,
            "peer_id": self.peer.node_id,
            "state": self.state,
        }

    # --- life cycle --------------------------------------------------------------------

    def start_watch(self) -> None:
        self._watch = asyncio.create_task(self._run_watch(), name=f"call-{self.id}-watch")

    async def _run_watch(self) -> None:
        cfg = self.manager.config.calls
        # Threshold such that a silent peer is noticed within idle_timeout of its last
        # packet even though activity is only sampled every POLL seconds.
        idle_limit = max(POLL, cfg.idle_timeout - 2 * POLL)
        last_rx = -1
        last_activity = time.monotonic()
        reason = "ended"
        try:
            while True:
                try:
                    await asyncio.wait_for(self._wake.wait(), POLL)
                except TimeoutError:
                    pass
                self._wake.clear()
                now = time.monotonic()
                state = self.pc.connectionState
                if state in ("failed", "closed"):
                    reason = f"connection-{state}"
                    break
                if self.connected_at is None:
                    if state == "connected":
                        self.connected_at = now
                        last_activity = now
                        self._pair = selected_pair(self.pc)
                        self.manager._emit({"event": "call-connected", **self.describe()})
                    elif now - self.started > cfg.connect_timeout:
                        reason = "connect-timeout"
                        break
                    continue
                rx = await self._refresh_stats()
                if rx is not None:  # RTP/RTCP bytes, plus the peer's ICE consent checks
                    rx += sum(getattr(c, "checks_received", 0) for c in ice_connections(self.pc))
                if rx is not None and rx != last_rx:
                    last_rx = rx
                    last_activity = now
                elif now - last_activity >= idle_limit:
                    reason = "peer-silent"
                    break
        except asyncio.CancelledError:
            return
        except Exception as e:  # a stats or state bug must still end the call
            log.exception("call %s: watcher failed", self.id)
            reason = f"error: {type(e).__name__}"
        self._watch = None  # ending must not cancel the task it runs in
        await self.end(reason)

    async def _refresh_stats(self) -> int | None:
        """Update the snapshot from getStats; returns transport bytes received."""
        try:
            report = await asyncio.wait_for(self.pc.getStats(), 4 * POLL)
        except Exception:
            return None
        s = CallStats()
        rtts = []
        rx = None
        transports = {}
        for item in report.values():
            kind = getattr(item, "type", "")
            if kind == "transport":
                transports[item.id] = item
            elif kind == "outbound-rtp":
                s.packets_sent += item.packetsSent or 0
            elif kind == "inbound-rtp":
                s.packets_received += item.packetsReceived or 0
                s.packets_lost += max(0, item.packetsLost or 0)
            elif kind == "remote-inbound-rtp":
                s.packets_lost += max(0, item.packetsLost or 0)
                if item.roundTripTime is not None:
                    rtts.append(item.roundTripTime)
        for t in transports.values():
            s.bytes_sent += t.bytesSent or 0
            s.bytes_received += t.bytesReceived or 0
            rx = (rx or 0) + (t.bytesReceived or 0)
        if not s.packets_sent and not s.packets_received:
            s.packets_sent = sum(t.packetsSent or 0 for t in transports.values())
            s.packets_received = sum(t.packetsReceived or 0 for t in transports.values())
        if rtts:
            s.rtt_ms = round(1000 * max(rtts), 2)
        s.frames_sent = _sent_frames(self.attachment)
        s.frames_received = _frames(self.receiver, "video_frames")
        self._stats = s
        return rx

    async def end(self, reason: str = "ended") -> None:
        """Idempotent: stop media, close the peer connection (sockets), forget the call."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._end(reason), name=f"call-{self.id}-end")
        await asyncio.shield(self._closing)

    async def _end(self, reason: str) -> None:
        self.ended_reason = reason
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        try:
            await self._refresh_stats()
        except Exception:
            pass
        await _release(self.pc, self.attachment, self.receiver)
        self.ended.set()
        self.manager._forget(self)
        log.debug("call %s with %s ended: %s", self.id, self.peer.name, reason)
        self.manager._emit(
            {"event": "call-ended", **self.describe(), "reason": reason, "stats": self.stats()}
        )

    async def wait(self, timeout: float) -> bool:
        """True if the call ended within `timeout` seconds."""
        try:
            await asyncio.wait_for(self.ended.wait(), timeout)
            return True
        except TimeoutError:
            return False


def _sent_frames(attachment: Any) -> int | None:
    """Video access units handed to this call's sender (node.media: the fan-out viewer)."""
    delivered = getattr(getattr(attachment, "viewer", None), "delivered", None)
    return delivered if isinstance(delivered, int) else _frames(attachment, "frames_sent")


def _frames(part: Any, name: str) -> int | None:
    if part is None:
        return None
    value = getattr(part, name, None)
    if isinstance(value, int):
        return value
    summary = getattr(part, "summary", None) or getattr(part, "stats", None)
    if callable(summary):
        try:
            data = summary()
        except Exception:
            return None
        if isinstance(data, dict) and isinstance(data.get(name), int):
            return data[name]
    return None


class CallManager:
    """All calls of one node (docs/architecture.md, "Calls")."""

    def __init__(
        self,
        identity: Identity,
        config: Config,
        peers: PeerStore,
        provider: Any,
        publisher: Publisher | None,
        opener: LinkOpener,
        *,
        receiver_factory: ReceiverFactory | None = None,
    ):
        self.identity = identity
        self.config = config
        self.peers = peers
        self.provider = provider
        self.publisher = publisher
        self.opener = opener
        self.receiver_factory = receiver_factory
        self._calls: dict[str, Call] = {}
        self._pending = 0  # calls being set up (they hold a slot too)
        self._callbacks: list[EventCallback] = []
        self._callback_tasks: set[asyncio.Task] = set()  # referenced until done (else GC may drop them)
        self._setups: set[asyncio.Task] = set()  # calls being set up: close() cancels them
        self._closed = False

    # --- events & state ----------------------------------------------------------------

    def on_event(self, callback: EventCallback) -> None:
        self._callbacks.append(callback)

    def _emit(self, event: dict) -> None:
        event.setdefault("at", int(time.time()))
        for cb in list(self._callbacks):
            try:
                result = cb(event)
                if asyncio.iscoroutine(result):
                    task = asyncio.ensure_future(result)
                    self._callback_tasks.add(task)
                    task.add_done_callback(self._callback_tasks.discard)
            except Exception:
                log.exception("event callback failed")

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

    async def _set_up(self, coro: Awaitable):
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
        local = await _within(
            SETUP_TIMEOUT, "finding this node's overlay address", self.provider.local_address()
        )
        remote = await _within(
            SETUP_TIMEOUT, f"resolving {peer.name}'s overlay address", self.provider.resolve(peer)
        )
        # Defence in depth: the provider must vouch for both ends being on its overlay.
        if not (self.provider.is_overlay(local) and self.provider.is_overlay(remote)):
            raise PrivacyError(f"the {self.provider.name} overlay does not vouch for this call's addresses")
        policy = IcePolicy.make(
            [local], [remote], rewrite_remote=self.provider.name == "staex", label=peer.name
        )
        return policy, local

    def _receiver(self, pc: Any) -> Any:
        factory = self.receiver_factory
        if factory is None:
            try:
                from .media import MediaReceiver
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
        err: dict | None = None,
        sealed: bool = False,
    ) -> Any:
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

    def _error_reply(self, opened: OpenedLink, code: str, message: str) -> str:
        peer = opened.peer
        self._emit(
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
            "error", peer, ofh=opened.digest, err={"code": code, "message": message}, sealed=opened.sealed
        ).text

    # --- daemon side: links in, replies out -------------------------------------------

    async def handle_link(self, text: str) -> str | None:
        """A view-request or offer in, the signed answer (or error link) out. Links that
        fail verification raise LinkError (the transport records the reason)."""
        try:
            opened = self.opener.open(text)
        except LinkError as e:
            self._emit({"event": "rejected", "reason": e.reason})
            raise
        kind = opened.claims.kind
        if kind in ("answer", "error"):
            raise LinkError("wrong-offer", f"an unsolicited {kind}: this node is not waiting for one")
        if opened.peer is None:  # an opener without an allowlist is a programming error here
            raise LinkError("unknown-sender", "the daemon only answers allowlisted peers")
        if self._closed:
            return self._error_reply(opened, "stopping", "this node is shutting down; try again shortly")
        if self._busy():
            return self._error_reply(
                opened,
                "busy",
                f"this node already serves its maximum of "
                f"{self.config.calls.max_calls} call(s); try again later",
            )
        if self.publisher is None:
            return self._error_reply(opened, "no-media", "this node has no camera or microphone to share")
        unavailable = getattr(self.publisher, "unavailable_reason", None)
        if callable(unavailable) and unavailable():  # the reason (paths, a camera's URL) stays in the log
            return self._error_reply(
                opened, "unavailable", "this node's camera is not available right now; it keeps retrying"
            )
        self._pending += 1
        try:
            return await self._set_up(self._answer(opened))
        except CallError as e:
            return self._error_reply(opened, e.code, e.message)
        # The details stay in this node's log: they may name addresses or paths, and a
        # link never carries an address that is not on the overlay (privacy rule 5).
        except PrivacyError as e:
            log.error("refusing to answer %s: %s", opened.peer.name, e)
            return self._error_reply(
                opened,
                "privacy",
                "this node refused to send an SDP that was not confined to the overlay (see its log)",
            )
        except NodeError as e:  # OverlayError and friends: the log says what to fix
            log.error("cannot answer %s: %s", opened.peer.name, e)
            return self._error_reply(
                opened,
                "unavailable",
                "this node cannot place the call on its overlay right now (see its log)",
            )
        except Exception as e:
            log.exception("answering %s from %s failed", kind, opened.peer.name)
            return self._error_reply(opened, "internal", f"the node failed to answer ({type(e).__name__})")
        finally:
            self._pending -= 1

    async def _answer(self, opened: OpenedLink) -> str:
        peer, claims = opened.peer, opened.claims
        policy, local = await self._policy(peer)
        try:
            offer_sdp = filter_incoming_sdp(claims.sdp, policy, reported=claims.addr)
        except MalformedSdpError as e:
            log.error("%s's offer: %s", peer.name, e)
            raise CallError("bad-offer", "the offer's SDP is malformed (see this node's log)") from None
        except PrivacyError as e:
            log.error("%s's offer: %s", peer.name, e)
            raise CallError(
                "no-candidate",
                "the offer has no candidate on the overlay address this "
                "node resolves for you (check both allowlists' overlay bindings)",
            ) from None
        # Only an `offer` (permission `call`) may be two-way; a view-request asks to
        # receive and nothing else, so the camera never takes media from a viewer.
        two_way = claims.kind == "offer"
        if not two_way:
            problem = _not_receive_only(offer_sdp)
            if problem:
                log.error("%s's view-request: %s", peer.name, problem)
                raise CallError(
                    "bad-offer", "a view-request must only ask to receive audio and video (recvonly m-lines)"
                )
        pc = policy.peer_connection()
        attachment = receiver = None
        try:
            await _within(
                SETUP_TIMEOUT,
                "applying the offer",
                pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer")),
            )
            if two_way:  # whatever the peer sends is consumed (never left to pile up)
                receiver = self._receiver(pc)
            attachment = self.publisher.attach(pc)
            _set_directions(pc, receive=receiver is not None)
            answer = await _within(SETUP_TIMEOUT, "creating the answer", pc.createAnswer())
            await _within(SETUP_TIMEOUT, "gathering on the overlay address", pc.setLocalDescription(answer))
            sdp = pc.localDescription.sdp
            check_outgoing_sdp(sdp, policy)  # before signing, always
            reply = self._sign("answer", peer, sdp=sdp, addr=local, ofh=opened.digest, sealed=opened.sealed)
        except BaseException:
            await _discard(pc, attachment, receiver)
            raise
        call = Call(
            self,
            "view" if claims.kind == "view-request" else "incoming",
            peer,
            pc,
            policy,
            attachment,
            receiver,
        )
        await self._register(call)
        return reply.text

    async def _register(self, call: Call) -> None:
        if self._closed:  # set up while close() ran: end it now, never leave it behind
            await call.end("node-stopping")
            raise CallError("stopping", "this node is shutting down; try again shortly")
        self._calls[call.id] = call
        call.start_watch()
        log.debug("call %s: %s with %s started", call.id, call.kind, call.peer.name)
        self._emit({"event": "call-started", **call.describe()})

    # --- this node offers: outgoing calls and viewing ----------------------------------

    async def call(self, peer: Peer, transport: Transport) -> Call:
        """Offer this node's tracks to `peer` (cmd/call); returns once the answer is set."""
        if not peer.may("call"):
            raise CallError("no-permission", f"peer {peer.name!r} is not allowed 'call' in the allowlist")
        if self.publisher is None:
            raise CallError("no-media", "this node has no publisher to call with")
        return await self._offer(peer, transport, "offer", "outgoing")

    async def view(self, peer: Peer, transport: Transport) -> Call:
        """Ask `peer` to show its camera: a recvonly audio+video offer (the viewer)."""
        return await self._offer(peer, transport, "view-request", "viewing")

    async def _offer(self, peer: Peer, transport: Transport, link_kind: str, call_kind: str) -> Call:
        if self._closed:
            raise CallError("stopping", "this node is shutting down")
        return await self._set_up(self._make_offer(peer, transport, link_kind, call_kind))

    async def _make_offer(self, peer: Peer, transport: Transport, link_kind: str, call_kind: str) -> Call:
        if self._busy():
            raise CallError("busy", f"already {len(self._calls)} call(s) (calls.max_calls)")
        self._pending += 1
        pc = attachment = receiver = None
        try:
            policy, local = await self._policy(peer)
            pc = policy.peer_connection()
            if link_kind == "offer":
                attachment = self.publisher.attach(pc)
                receiver = None
            else:
                # Audio first, then video: the order of link format v1's SDP template.
                pc.addTransceiver("audio", direction="recvonly")
                video = pc.addTransceiver("video", direction="recvonly")
                from .media.hooks import prefer_h264  # the camera sends H.264 as encoded

                prefer_h264(video)
                receiver = self._receiver(pc)
            offer = await _within(SETUP_TIMEOUT, "creating the offer", pc.createOffer())
            await _within(SETUP_TIMEOUT, "gathering on the overlay address", pc.setLocalDescription(offer))
            sdp = pc.localDescription.sdp
            check_outgoing_sdp(sdp, policy)
            link = self._sign(link_kind, peer, sdp=sdp, addr=local)
            wait = self.config.calls.answer_timeout
            reply_text = await _within(
                wait + 1, f"waiting for {peer.name}'s answer", transport.request(peer, link.text, wait)
            )
            opened = self.opener.open(reply_text, expect_offer=link.digest)
            if opened.peer is None or opened.peer.node_id != peer.node_id:
                raise CallError("wrong-peer", "the reply was not signed by the peer that was asked")
            if opened.claims.kind == "error":
                err = opened.claims.err
                raise CallError(err.get("code", "error"), err.get("message", "") or "the peer refused")
            if opened.claims.kind != "answer":
                raise CallError("bad-reply", f"expected an answer, got a {opened.claims.kind}")
            answer_sdp = filter_incoming_sdp(opened.claims.sdp, policy, reported=opened.claims.addr)
            await _within(
                SETUP_TIMEOUT,
                "applying the answer",
                pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer")),
            )
        except BaseException:
            if pc is not None:
                await _discard(pc, attachment, receiver)
            raise
        finally:
            self._pending -= 1
        call = Call(self, call_kind, peer, pc, policy, attachment, receiver)
        await self._register(call)
        return call


def _not_receive_only(sdp: str) -> str:
    """Why an offer is not a pure request to receive audio/video, or "" if it is. Parsed
    with aiortc's own parser: the directions checked are the ones aiortc will apply."""
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as e:
        return f"unparseable SDP ({type(e).__name__})"
    if not parsed.media:
        return "no m-line"
    for media in parsed.media:
        if media.kind not in ("audio", "video"):
            return f"an m={media.kind} line"
        if media.direction not in ("recvonly", "inactive"):
            return f"an m={media.kind} line with direction {media.direction or 'sendrecv (default)'}"
    return ""


def _set_directions(pc: Any, *, receive: bool) -> None:
    """The answer's directions are decided here, not by whatever the publisher did:
    send where a track is attached, receive only if `receive` (a consumer exists)."""
    for transceiver in pc.getTransceivers():
        if transceiver.stopped:
            continue
        sends = transceiver.sender.track is not None
        if receive:
            transceiver.direction = "sendrecv" if sends else "recvonly"
        else:
            transceiver.direction = "sendonly" if sends else "inactive"


async def _release(pc: Any, attachment: Any, receiver: Any) -> None:
    """Stop media (attachment.detach, receiver.close), then close the peer connection
    (its sockets and tasks); each step bounded, none able to stop the others."""
    for part, methods in ((attachment, ("detach",)), (receiver, ("close", "stop"))):
        fn = next((getattr(part, m) for m in methods if callable(getattr(part, m, None))), None)
        if part is None or fn is None:
            continue
        try:
            result = fn()
            if asyncio.iscoroutine(result):
                await asyncio.wait_for(result, CLOSE_TIMEOUT)
        except Exception:
            log.exception("releasing %s failed", type(part).__name__)
    try:
        await asyncio.wait_for(pc.close(), CLOSE_TIMEOUT)
    except Exception:
        log.exception("closing a peer connection failed")


_discard = _release  # a half-built call (no Call object owns it yet)


__all__ = ["Call", "CallError", "CallManager", "CallStats"]
