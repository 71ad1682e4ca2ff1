"""The calls of one node: its limits, the state every call shares, and the steps both
sides of a handshake use (overlay addresses, signing, refusing, starting a call).

- The daemon side, a signed link in and a signed reply out, is `serve` (view-requests
  and offers) and `trigger` (a peer asks this node to call another).
- The offering side, this node calling (`call`), viewing (`view`) or ringing several
  peers (`call_first`), is `offer`.
- What an answer says is planned in `answer`; talkback in `talk`; one peer connection
  watched until it ends is a `Call` (`call`).

Every wait has a timeout; a call cut short releases what it had built."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from ..config import Config
from ..ice import IceApi, IcePolicy, OverlayPeerConnection
from ..identity import Identity
from ..links import LinkOpener, make_link
from ..links.link import Link, OpenedLink
from ..overlay import OverlayProvider
from ..peers import Peer, PeerStore
from ..transports.base import ClientTransport
from . import offer, serve
from .call import CLOSE_TIMEOUT, Call, CallKind
from .errors import SETUP_TIMEOUT, CallError, within
from .events import CallEvents, EventCallback
from .media import Attachment, Publisher, Receiver, ReceiverFactory

log = logging.getLogger(__name__)

T = TypeVar("T")


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
        # The transport outgoing calls go through (MQTT, set by the service): a trigger
        # link that arrived by file drop still calls over the broker.
        self.outgoing: ClientTransport | None = None

    # --- what the transports and the service use ---------------------------------------

    async def handle_link(self, text: str) -> str | None:
        """A view-request, offer or trigger in, the signed answer (or error link) out.
        Links that fail verification raise LinkError (the transport records the reason)."""
        return await serve.serve_link(self, text)

    async def call(self, peer: Peer, transport: ClientTransport) -> Call:
        """Offer this node's tracks to `peer` (cmd/call); returns once the answer is set."""
        return await offer.call(self, peer, transport)

    async def view(
        self, peer: Peer, transport: ClientTransport, talk: MediaStreamTrack | None = None
    ) -> Call:
        """Ask `peer` to show its camera: a recvonly audio+video offer (the viewer).
        `talk`: an audio track to send to the peer's speaker (it needs `talk` there)."""
        return await offer.view(self, peer, transport, talk)

    async def call_first(self, peers: list[Peer], transport: ClientTransport) -> Call:
        """Call several peers at once (a doorbell ringing a household): the first to
        answer wins; the others are cancelled and told so (a signed `cancelled`)."""
        return await offer.call_first(self, peers, transport)

    def on_event(self, callback: EventCallback) -> None:
        self.events.subscribe(callback)

    def active(self) -> list[Call]:
        return list(self._calls.values())

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

    # --- limits and setups: what serve and offer share ---------------------------------

    @property
    def closed(self) -> bool:
        """close() has begun: no new call is set up."""
        return self._closed

    def busy(self) -> bool:
        return len(self._calls) + self._pending >= self.config.calls.max_calls

    @contextmanager
    def slot(self) -> Iterator[None]:
        """A call being set up holds a slot (busy() counts it) until it is started or
        given up."""
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1

    async def set_up(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one call's setup as its own task, so close() can cancel it without
        cancelling the transport that asked; a setup asked for after close(), or cut
        short by it, is a CallError('stopping')."""
        if self.closed:
            coro.close()  # never started
            raise CallError("stopping", "this node is shutting down; try again shortly")
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

    def keep(self, task: asyncio.Future[None]) -> None:
        """Hold a fire-and-forget task (a `cancelled` notice) until it is done."""
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    # --- the steps of a handshake --------------------------------------------------------

    async def policy(self, peer: Peer) -> tuple[IcePolicy, str]:
        """The ICE policy for a call with `peer`, and this node's overlay address."""
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

    def receiver(self, pc: RTCPeerConnection) -> Receiver | None:
        """What consumes the media `pc` receives (None: the media extra is missing)."""
        factory = self.receiver_factory
        if factory is None:
            try:
                from ..media import MediaReceiver
            except ImportError:
                return None
            factory = MediaReceiver
        return factory(pc)

    def sign(
        self,
        kind: str,
        peer: Peer,
        *,
        sdp: str = "",
        addr: str = "",
        ofh: str = "",
        err: dict[str, str] | None = None,
        res: dict[str, str] | None = None,
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
            res=res,
            sealed=sealed or self.config.links.seal,
        )

    def error_reply(self, opened: OpenedLink, peer: Peer, code: str, message: str) -> str:
        """A signed error link answering `opened`, told as a `rejected` event and logged."""
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
        return self.sign(
            "error",
            peer,
            ofh=opened.digest,
            err={"code": code, "message": message},
            sealed=opened.sealed,
        ).sent

    async def start(
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
        """The call, registered and watched; ended at once if close() ran meanwhile."""
        call = Call(
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
        if self._closed:  # set up while close() ran: end it now, never leave it behind
            await call.end("node-stopping")
            raise CallError("stopping", "this node is shutting down; try again shortly")
        self._calls[call.id] = call
        call.start_watch()
        log.debug("call %s: %s with %s started", call.id, call.kind, call.peer.name)
        self.events.emit({"event": "call-started", **call.describe()})
        return call

    def _forget(self, call: Call) -> None:
        self._calls.pop(call.id, None)


__all__ = ["SETUP_TIMEOUT", "CallManager"]
