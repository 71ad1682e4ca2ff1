"""`media-node web`: the browser viewer, served on 127.0.0.1 only.

Every action of the page is one small HTTP endpoint (docs/web.md), so a script can do
the same with the token:

  GET    /                         the page (plain files from node/web/static)
  GET    /api/peers                the allowlist: name, permissions, online/offline
  POST   /api/sessions             {"peer", "offer", "talk"} -> {"session", "answer", ...}
  GET    /api/sessions/ID          the session, with the camera leg's stats
  POST   /api/sessions/ID/talk     {"on": true|false}: push-to-talk
  DELETE /api/sessions/ID          end it
  GET    /api/events               server-sent events (ring, ring-ended, session-ended)
  POST   /api/rings/ID/answer      {"offer"}: answer a doorbell call -> like a session
  POST   /api/rings/ID/decline     decline it

Mute, fullscreen, the snapshot PNG and the page's live stats are the browser's own
(the video element, canvas.toBlob, RTCPeerConnection.getStats): nothing to ask the node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from importlib import resources
from typing import Any

from aiohttp import web

from ..calls import Call, CallError
from ..config import Config
from ..errors import NodeError
from ..home import Home
from ..identity import Identity
from ..links import LinkOpener, ReplayCache
from ..peers import Peer, PeerStore
from .access import COOKIE, HEADER, Gate
from .doorbell import Doorbell, ViewerCalls
from .relay import PacketReceiver, PacketTrack
from .session import BrowserSession, SessionError

log = logging.getLogger(__name__)

STATIC = {"index.html": "text/html", "app.js": "text/javascript", "app.css": "text/css"}
MAX_BODY = 64 * 1024  # an SDP offer is a few kB


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class WebNode:
    """The viewer node behind the page: allowlist, overlay, CallManager, sessions."""

    def __init__(
        self,
        home: Home,
        config: Config,
        *,
        token: str,
        port: int,
        via: str | None = None,
        provider: Any = None,
        host_addresses: list[str] | None = None,
    ):
        """`host_addresses`: the browser leg's addresses (default: all of this host's,
        read at each session; tests pin them)."""
        self.home = home
        self.config = config
        self.gate = Gate(token, port)
        self.via = via
        self.identity = Identity.load(home.key_file)
        self.peers = PeerStore(home.peers_file)
        if provider is None:
            from ..overlay import make_provider

            provider = make_provider(config.overlay)
        self.provider = provider
        self.replay = ReplayCache(home.replay_db, config.links.clock_skew)
        opener = LinkOpener(self.identity, self.peers, self.replay, skew=config.links.clock_skew)
        self.manager = ViewerCalls(
            self.identity, config, self.peers, provider, None, opener, receiver_factory=PacketReceiver
        )
        self.doorbell = Doorbell(self.manager, self.emit, self.open_pages, config.web.ring_timeout)
        self.transports: list[Any] = []
        self.presence: Any = None  # node.web.presence.Presence with [mqtt]
        self.sessions: dict[str, BrowserSession] = {}
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._runner: web.AppRunner | None = None
        self.port = port
        self.host_addresses = host_addresses

    # --- events (server-sent to every open page) ---------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    def open_pages(self) -> int:
        return len(self._listeners)

    # --- peers and transports ----------------------------------------------------------

    def peer(self, name: str) -> Peer:
        peer = self.peers.find(name)
        if peer is None:
            raise SessionError("unknown-peer", f"{name!r} is not in this node's allowlist", 404)
        return peer

    def transport_for(self, peer: Peer) -> Any:
        from ..viewer import client_transport

        via = peer.via or self.via or ("mqtt" if self.config.mqtt.enabled else "")
        if not via:
            raise SessionError(
                "no-transport",
                f"no way to reach {peer.name}: give `media-node web --via file:DIR|mqtt`, "
                "set the peer's `via` in peers.toml, or enable [mqtt]",
                409,
            )
        try:
            return client_transport(via, self.home)
        except NodeError as e:
            raise SessionError("no-transport", str(e), 409) from None

    def peer_list(self) -> list[dict[str, Any]]:
        return [
            {
                "name": p.name,
                "node_id": p.node_id,
                "allow": sorted(p.allow),
                "via": p.via or self.via or ("mqtt" if self.config.mqtt.enabled else ""),
                "online": self.presence.online(p.node_id) if self.presence else None,
            }
            for p in self.peers.load().values()
        ]

    # --- sessions ------------------------------------------------------------------------

    async def open_session(self, peer_name: str, offer: str, want_talk: bool) -> BrowserSession:
        peer = self.peer(peer_name)
        transport = self.transport_for(peer)

        async def camera_leg(talk: PacketTrack | None) -> Call:
            return await self.manager.view(peer, transport, talk=talk)

        return await self._start_session(peer.name, offer, camera_leg, want_talk)

    async def answer_ring(self, ring_id: str, offer: str) -> BrowserSession:
        ring = self.doorbell.take(ring_id)

        async def camera_leg(talk: PacketTrack | None) -> Call:
            return await self.manager.accept(ring, talk)

        try:
            return await self._start_session(ring.peer.name, offer, camera_leg, True)
        except BaseException:
            if not ring.reply.done():  # the caller is told, not left waiting
                ring.reply.cancel()
            raise

    async def _start_session(self, peer: str, offer: str, camera_leg: Any, want_talk: bool) -> BrowserSession:
        session = BrowserSession(peer, on_end=self._session_ended, host_addresses=self.host_addresses)
        self.sessions[session.id] = session
        try:
            session.answer = await session.open(offer, camera_leg, want_talk)
        except BaseException:
            self.sessions.pop(session.id, None)
            raise
        return session

    def _session_ended(self, session: BrowserSession) -> None:
        self.sessions.pop(session.id, None)
        self.emit({"event": "session-ended", "session": session.id, "reason": session.ended_reason})

    # --- HTTP ----------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not self.gate.host_ok(request.headers.get("Host")):
            return _json_error(
                421, "bad-host", "use http://127.0.0.1:PORT/ (this server answers no other name)"
            )
        if not self.gate.origin_ok(request.headers.get("Origin")):
            return _json_error(403, "bad-origin", "requests from other sites are refused")
        presented = request.headers.get(HEADER) or request.cookies.get(COOKIE)
        # in the URL only for GETs: the first page load, a bookmark, EventSource
        from_url = request.query.get("token") if request.method == "GET" else None
        if from_url is not None:
            presented = from_url
        if not self.gate.token_ok(presented):
            return _json_error(
                401, "bad-token", "open the URL that `media-node web` printed (it holds the token)"
            )
        try:
            response: web.StreamResponse = await handler(request)
        except SessionError as e:
            return _json_error(e.status, e.code, e.message)
        except CallError as e:
            return _json_error(502, e.code, e.message)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token stays out of Referer
        if request.path == "/" and from_url is not None:  # later requests carry the cookie
            response.set_cookie(COOKIE, self.gate.token, httponly=True, samesite="Strict", path="/")
        return response

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/peers", self._peers)
        app.router.add_post("/api/sessions", self._create)
        app.router.add_get("/api/sessions/{id}", self._show)
        app.router.add_post("/api/sessions/{id}/talk", self._talk)
        app.router.add_delete("/api/sessions/{id}", self._delete)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/rings/{id}/answer", self._ring_answer)
        app.router.add_post("/api/rings/{id}/decline", self._ring_decline)
        return app

    def _file(self, name: str) -> web.Response:
        if name not in STATIC:
            raise web.HTTPNotFound()
        body = resources.files("node.web").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=STATIC[name], charset="utf-8")

    async def _index(self, request: web.Request) -> web.Response:
        response = self._file("index.html")
        # plain files only, nothing from elsewhere: the browser enforces it too
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
            "connect-src 'self'; frame-ancestors 'none'"
        )
        return response

    async def _static(self, request: web.Request) -> web.Response:
        return self._file(request.match_info["name"])

    async def _peers(self, request: web.Request) -> web.Response:
        return web.json_response({"node": self.config.node.name, "peers": self.peer_list()})

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SessionError("bad-request", "the body must be JSON") from None
        if not isinstance(data, dict):
            raise SessionError("bad-request", "the body must be a JSON object")
        return data

    def _session(self, request: web.Request) -> BrowserSession:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            raise SessionError("no-session", "no such session (it ended)", 404)
        return session

    async def _create(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        peer, offer = data.get("peer"), data.get("offer")
        if not isinstance(peer, str) or not isinstance(offer, str):
            raise SessionError("bad-request", 'send {"peer": NAME, "offer": SDP}')
        session = await self.open_session(peer, offer, bool(data.get("talk", True)))
        return web.json_response({**session.describe(), "answer": session.answer})

    async def _show(self, request: web.Request) -> web.Response:
        return web.json_response(self._session(request).stats())

    async def _talk(self, request: web.Request) -> web.Response:
        session = self._session(request)
        data = await self._body(request)
        session.set_talking(bool(data.get("on")))
        return web.json_response(session.describe())

    async def _delete(self, request: web.Request) -> web.Response:
        session = self._session(request)
        await session.close("page-closed")
        return web.json_response(session.describe())

    async def _ring_answer(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        if not isinstance(data.get("offer"), str):
            raise SessionError("bad-request", 'send {"offer": SDP}')
        session = await self.answer_ring(request.match_info["id"], data["offer"])
        return web.json_response({**session.describe(), "answer": session.answer})

    async def _ring_decline(self, request: web.Request) -> web.Response:
        self.doorbell.decline(request.match_info["id"])
        return web.json_response({"declined": request.match_info["id"]})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._listeners.add(queue)
        try:
            await response.write(b": connected\n\n")
            for ring in list(self.doorbell.rings.values()):  # a page opened while it rings
                await response.write(f"data: {json.dumps({'event': 'ring', **ring.describe()})}\n\n".encode())
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 15)
                    if event.get("event") == "server-stopping":  # end now, not at the next keep-alive
                        break
                    await response.write(f"data: {json.dumps(event)}\n\n".encode())
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._listeners.discard(queue)
        return response

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on 127.0.0.1 only; returns the URL with the token."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", self.port))  # loopback only, never 0.0.0.0
        except OSError as e:
            sock.close()
            raise NodeError(f"cannot listen on 127.0.0.1:{self.port}: {e} (choose another --port)") from None
        self.port = self.gate.port = sock.getsockname()[1]  # port 0: the Host check needs the real one
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        if self.config.mqtt.enabled:  # the doorbell: cameras call this node over MQTT
            from ..transports.mqtt import MqttTransport

            mqtt = MqttTransport(
                self.config.mqtt,
                self.identity,
                self.doorbell.handle_link,
                peers=self.peers,
                name=self.config.node.name,
                active_calls=lambda: len(self.manager.active()),
            )
            self.manager.on_event(mqtt.publish_event)
            await mqtt.start()
            self.transports.append(mqtt)
            from .presence import Presence

            self.presence = Presence(self.config.mqtt, self.identity, list(self.peers.load().values()))
            await self.presence.start()
        return f"http://127.0.0.1:{self.port}/?token={self.gate.token}"

    async def stop(self) -> None:
        self.emit({"event": "server-stopping"})  # the event streams end, so shutdown need not wait
        for session in list(self.sessions.values()):
            await session.close("web-stopping")
        for transport in self.transports:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(transport.stop(), 10)
        if self.presence is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.presence.stop(), 10)
            self.presence = None
        self.transports.clear()
        await self.manager.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.replay.close()


__all__ = ["WebNode"]
