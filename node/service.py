"""The daemon (`media-node run`): config -> identity -> allowlist -> overlay provider ->
publisher -> CallManager -> transports (file drop on the home's inbox; MQTT has its own
module). It serves view requests until SIGTERM/SIGINT, then ends every call cleanly.

Bad input never stops it: a link that fails verification is moved to rejected/ with its
reason by the transport, a failure while answering becomes a signed error reply, and an
overlay that is down only makes calls fail (with a reply that says so) until it is up."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .calls import CallManager, Publisher
from .calls.events import Event
from .config import Config, load_config
from .errors import NodeError
from .home import Home
from .identity import Identity
from .links import LinkOpener, ReplayCache
from .memory import MemoryTrimmer
from .overlay import OverlayProvider
from .peers import PeerStore
from .systemd import Notifier
from .workers import install_worker_pool

if TYPE_CHECKING:
    from .doorbell.assembly import DoorbellAssembly
    from .transports.mqtt import MqttTransport

log = logging.getLogger(__name__)


class ServicePublisher(Publisher, Protocol):
    """The daemon's media: started before serving, stopped after the last call
    (node.media.MediaPublisher; `healthy()` and `describe()` are used when present)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class ServerTransport(Protocol):
    """A transport the daemon serves links on (file drop, MQTT)."""

    async def stop(self) -> None: ...
    def healthy(self) -> bool: ...


def make_notifier() -> Notifier:
    """The service-manager hook (systemd Type=notify via node/systemd.py): READY=1 once
    serving, WATCHDOG=1 while healthy, STOPPING=1 on shutdown, STATUS= lines. Outside
    systemd (no $NOTIFY_SOCKET) every call is a no-op."""
    return Notifier()


class Service:
    """One running node. `publisher`/`provider` may be passed in (tests, the demo);
    otherwise they are built from the home's config.toml."""

    def __init__(
        self,
        home: Home,
        *,
        config: Config | None = None,
        publisher: ServicePublisher | None = None,
        provider: OverlayProvider | None = None,
    ):
        self.home = home
        self.config = config
        self.publisher = publisher
        self.provider = provider
        self.identity: Identity | None = None
        self.manager: CallManager | None = None
        self.replay: ReplayCache | None = None
        self.transports: list[ServerTransport] = []
        self._own_publisher = publisher is None
        self._stop = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None
        self._source_watch: asyncio.Task[None] | None = None
        self._source_listeners: list[Callable[[dict[str, object]], None]] = []
        self.notifier = make_notifier()
        self.memory = MemoryTrimmer()
        self.doorbell: DoorbellAssembly | None = None

    async def start(self) -> None:
        home = self.home
        if not home.exists():
            raise NodeError(f"{home.path} has no identity: run `media-node init --home {home.path}` first")
        self.identity = identity = Identity.load(home.key_file)  # refuses a key readable by others
        self.config = config = self.config or load_config(home.config_file)
        # Like ssh: nothing another local user could write is trusted (the chmod is named).
        home.check_permissions(config.filedrop.group)
        peers = PeerStore(home.peers_file)
        known = peers.load()  # a broken peers.toml is an error at start, not at the first call
        if self.provider is None:
            from .overlay import make_provider

            self.provider = make_provider(config.overlay)
        provider = self.provider
        try:
            address = await asyncio.wait_for(provider.local_address(), 10)
            log.info("overlay %s: this node is %s", provider.name, address)
        except Exception as e:  # keep serving: calls get an 'unavailable' reply until it is up
            log.error(
                "overlay %s is not usable yet (%s); calls will be refused until it is", provider.name, e
            )
        if self.publisher is None:
            from .media import make_publisher

            self.publisher = make_publisher(config.media)
        publisher = self.publisher
        try:
            await asyncio.wait_for(publisher.start(), 60)
        except TimeoutError:
            raise NodeError(
                "the media sources did not start within 60 s (check media.video and "
                "media.audio in config.toml; `media-node doctor` says what is missing)"
            ) from None
        describe = getattr(publisher, "describe", None)
        if callable(describe):
            log.info("media: %s", describe())
        self.replay = ReplayCache(home.replay_db, config.links.clock_skew)
        opener = LinkOpener(identity, peers, self.replay, skew=config.links.clock_skew)
        self.manager = manager = CallManager(identity, config, peers, provider, publisher, opener)
        manager.on_event(self._log_event)
        from .doorbell.assembly import DoorbellAssembly, board

        profile, hw_model = board(config)
        self.doorbell = doorbell = DoorbellAssembly(
            config, peers, publisher, manager, profile=profile, hw_model=hw_model
        )
        doorbell.doorbell.on_event(self._log_event)
        # Composed here, once: MQTT (if on) is built first so the file drop's rejections
        # become MQTT events too; each starts only when everything is wired.
        mqtt = (
            _make_mqtt(config, identity, manager, peers, doorbell, self.source_state)
            if config.mqtt.enabled
            else None
        )
        if mqtt is not None:
            self._source_listeners.append(mqtt.publish_event)
        if config.filedrop.enabled:
            from .transports.filedrop import FileDropWatcher

            drop = config.filedrop
            watcher = FileDropWatcher(
                home,
                manager.handle_link,
                on_event=mqtt.publish_event if mqtt is not None else None,
                settle=drop.settle,
                max_open=drop.max_open,
                empty_grace=drop.empty_grace,
                rescan=drop.rescan,
            )
            await watcher.start()
            self.transports.append(watcher)
        doorbell.attach(mqtt)
        if mqtt is not None:
            await mqtt.start()  # in the background (with backoff): a broker that is down delays MQTT only
            self.transports.append(mqtt)
        doorbell.start_button(asyncio.get_running_loop())
        if not self.transports:
            log.warning(
                "no transport is enabled ([filedrop] and [mqtt] are off): nothing can reach this node"
            )
        log.info(
            "media-node %s (%s) serving %d peer(s); max %d call(s)",
            config.node.name,
            identity.node_id,
            len(known),
            config.calls.max_calls,
        )
        self._heartbeat = asyncio.create_task(
            self.notifier.run_watchdog(self.healthy), name="service-watchdog"
        )
        self._source_watch = asyncio.create_task(self._watch_source(), name="service-source-state")
        self.notifier.ready(f"serving {len(known)} peer(s), 0 calls{self._source_note()}")
        self.memory.soon()  # start-up's garbage (imports, gathering, first SPS) goes back too

    def source_state(self) -> str:
        """The camera's state for status and events: available, unavailable or none."""
        state = getattr(self.publisher, "source_state", None)
        return str(state()) if callable(state) else "available"

    def _source_note(self) -> str:
        return "; camera unavailable" if self.source_state() == "unavailable" else ""

    async def _watch_source(self, every: float = 1.0) -> None:
        """A camera that goes away or comes back is an event (and a status change), so a
        broken camera never looks healthy; the reason is in the log, not in the event
        (it may name a device path or a camera's URL)."""
        last = self.source_state()
        while True:
            await asyncio.sleep(every)
            state = self.source_state()
            if state == last:
                continue
            last = state
            event: dict[str, object] = {"event": "source", "source": state}
            for listener in self._source_listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("a source-state listener failed")
            calls = len(self.manager.active()) if self.manager is not None else 0
            self.notifier.status(f"serving, {calls} call(s){self._source_note()}")

    def healthy(self) -> bool:
        """Fed to the systemd watchdog: called at all means the event loop runs; a
        transport whose threads or workers died makes the node unhealthy (a restart fixes it)."""
        publisher_ok = getattr(self.publisher, "healthy", None)
        if callable(publisher_ok) and not publisher_ok():  # e.g. a dead camera thread
            return False
        return self.manager is not None and all(
            t.healthy() for t in self.transports if callable(getattr(t, "healthy", None))
        )

    def _log_event(self, event: Event) -> None:
        if event["event"] == "ring":
            log.info("doorbell rang (%s)", event.get("source"))
        elif event["event"] == "call-started":
            log.info("call %s: %s from %s started", event["call"], event["kind"], event["peer"])
        elif event["event"] == "call-ended":
            self.memory.soon()
            stats = event.get("stats")
            st = stats if isinstance(stats, dict) else {}
            log.info(
                "call %s with %s ended (%s): %.1f s, %d bytes sent, %d lost",
                event["call"],
                event["peer"],
                event["reason"],
                st.get("duration_s", 0),
                st.get("bytes_sent", 0),
                st.get("packets_lost", 0),
            )
        if self.manager is not None and event["event"] in ("call-started", "call-ended"):
            self.notifier.status(f"serving, {len(self.manager.active())} call(s){self._source_note()}")

    def request_stop(self) -> None:
        self._stop.set()

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        """Stop taking links, end every call (sockets closed), stop the media."""
        self.notifier.stopping()
        started = time.monotonic()
        for task in (self._heartbeat, self._source_watch):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.doorbell is not None:
            await self.doorbell.stop()
        for transport in self.transports:
            try:
                await asyncio.wait_for(transport.stop(), 10)
            except Exception:
                log.exception("stopping %s failed", type(transport).__name__)
        self.transports.clear()
        if self.manager is not None:
            calls = len(self.manager.active())
            await self.manager.close()
            if calls:
                log.info("ended %d call(s)", calls)
        if self.publisher is not None and self._own_publisher:
            try:
                await asyncio.wait_for(self.publisher.stop(), 10)
            except Exception:
                log.exception("stopping the media failed")
        self.memory.cancel()
        if self.replay is not None:
            self.replay.close()
            self.replay = None
        log.info("stopped in %.1f s", time.monotonic() - started)


def _make_mqtt(
    config: Config,
    identity: Identity,
    manager: CallManager,
    peers: PeerStore,
    doorbell: DoorbellAssembly,
    source_state: Callable[[], str],
) -> MqttTransport:
    """Links, cmd/call, cmd/ring, cmd/snapshot, status, health and events over MQTT;
    outgoing calls go through the broker too (the transport hands itself to `manager.call`)."""
    from .transports.mqtt import MqttTransport

    mqtt = MqttTransport(
        config.mqtt,
        identity,
        manager.handle_link,
        peers=peers,
        on_call=manager.call,
        on_call_first=manager.call_first,
        name=config.node.name,
        active_calls=lambda: len(manager.active()),
        parts=doorbell.parts(),
        source_state=source_state,
    )
    manager.on_event(mqtt.publish_event)
    manager.outgoing = mqtt  # a trigger link (any transport) calls through the broker
    return mqtt


async def run_service(home: Home, config: Config | None = None) -> None:
    """`media-node run`: serve until SIGTERM or SIGINT (config: the home's, with any
    command-line overrides applied)."""
    loop = asyncio.get_running_loop()
    install_worker_pool(loop)  # every worker thread now: the thread count stays flat
    service = Service(home, config=config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)
    try:
        await service.start()
        await service.wait_stopped()
        log.info("signal received: stopping")
    finally:
        await service.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


__all__ = ["Service", "make_notifier", "run_service"]
