"""The daemon's doorbell parts, built from config.toml and the board profile: the ring
logic, the GPIO button (if `[doorbell] gpio`), snapshots (if `[snapshot] enabled`), the
diagnostics and what Home Assistant shows on the device page. The service builds one,
hands `parts()` to the MQTT transport and wires the button to the event loop."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..config import Config
from ..diagnostics import Diagnostics, video_source_state
from ..peers import Peer, PeerStore
from .bell import Doorbell
from .button import GpioButton, GpioError

if TYPE_CHECKING:
    from ..calls import CallManager
    from ..media import MediaPublisher
    from ..media.snapshot import Snapshotter
    from ..profiles import BoardProfile
    from ..transports.homeassistant import DeviceInfo
    from ..transports.mqtt import MqttTransport
    from ..transports.mqtt.server import NodeParts

log = logging.getLogger(__name__)


def board(config: Config) -> tuple[BoardProfile | None, str]:
    """The matching board profile and the machine's own model string ("" when unknown)."""
    from ..profiles import Machine, match_profile

    try:
        machine = Machine.probe()
        return match_profile(machine, config.media.profile, config.media.video).profile, machine.model
    except Exception as e:  # what HA shows must never stop the node
        log.warning("board profile not known (%s): Home Assistant shows a plain device", e)
        return None, ""


class DoorbellAssembly:
    def __init__(
        self,
        config: Config,
        peers: PeerStore,
        publisher: object,
        manager: CallManager,
        *,
        profile: BoardProfile | None = None,
        hw_model: str = "",
    ):
        self.config = config
        self.profile = profile
        self.hw_model = hw_model
        self.manager = manager
        self.mqtt: MqttTransport | None = None
        from ..media import MediaPublisher

        # Snapshots, source state and bitrate need the node's own publisher; another one
        # (tests, the demo) gets the doorbell and diagnostics without them.
        media = publisher if isinstance(publisher, MediaPublisher) else None
        self.doorbell = Doorbell(config.doorbell, peers)  # calls once MQTT is attached
        self.snapshots = self._snapshots(media)
        self.diagnostics = Diagnostics(
            source_state=lambda: _source_state(media),
            # peers watching right now: calls the publisher is attached to
            viewers=lambda: sum(1 for c in manager.active() if c.attachment is not None),
            bitrate=lambda: media.bitrate.current if media is not None else 0,
        )
        self.button: GpioButton | None = None

    def _snapshots(self, publisher: MediaPublisher | None) -> Snapshotter | None:
        cfg = self.config.snapshot
        if not cfg.enabled:
            return None
        fanout = publisher.fanout if publisher is not None else None
        if fanout is None:
            log.warning("snapshots are enabled but this node has no video source: none will be taken")
            return None
        from ..media.snapshot import Snapshotter

        return Snapshotter(fanout, min_interval=cfg.min_interval, max_bytes=cfg.max_bytes)

    async def _call(self, peer: Peer) -> object:
        assert self.mqtt is not None  # set as the doorbell's caller only with MQTT (attach)
        return await self.manager.call(peer, self.mqtt)

    def device(self) -> DeviceInfo:
        from ..transports.homeassistant import DeviceInfo

        p = self.profile
        return DeviceInfo(
            name=self.config.node.name,
            model=p.title if p is not None else "media-node",
            model_id=p.name if p is not None else "",
            hw_version=self.hw_model,
        )

    def parts(self) -> NodeParts:
        from ..transports.mqtt.server import NodeParts

        return NodeParts(
            doorbell=self.doorbell,
            snapshots=self.snapshots,
            snapshot_every=self.config.snapshot.every,
            snapshot_on_ring=self.config.snapshot.on_ring,
            diagnostics=self.diagnostics,
            device=self.device(),
        )

    def attach(self, mqtt: MqttTransport | None) -> None:
        """Calls go through MQTT (the transport itself publishes the rings and snapshots
        of the parts it was given)."""
        self.mqtt = mqtt
        self.doorbell.call_peer = self._call if mqtt is not None else None
        if mqtt is None and self.config.doorbell.call:
            log.warning("doorbell.call is set but MQTT is off: a ring calls nobody")

    def start_button(self, loop: asyncio.AbstractEventLoop) -> None:
        """The GPIO button, if configured; a wrong pin is logged, never fatal."""
        from . import doorbell_line

        cfg = self.config.doorbell
        try:
            line = doorbell_line(cfg, self.profile.doorbell.gpio if self.profile is not None else "")
        except GpioError as e:
            log.error("doorbell: %s", e)
            return
        if not line:
            return

        def pressed() -> None:  # the button's thread: ring on the loop
            loop.call_soon_threadsafe(self.doorbell.ring, "button")

        self.button = GpioButton(
            line, pressed, chip=cfg.chip, active_low=cfg.active_low, debounce_ms=cfg.debounce_ms
        )
        self.button.start()

    async def stop(self) -> None:
        if self.button is not None:
            await asyncio.to_thread(self.button.stop)
            self.button = None
        await self.doorbell.close()


def _source_state(publisher: MediaPublisher | None) -> str:
    if publisher is None or publisher.video is None:
        return "unavailable"
    return video_source_state(publisher.video.last_au_at, publisher.started)
