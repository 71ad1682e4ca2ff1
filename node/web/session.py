"""One page watching one camera: the browser leg (this host only) joined to a camera leg
(a signed, overlay-only view-request, or a doorbell call this node answers) by the
relay's packet tracks. Either leg ending ends the other."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription

from ..calls import Call, CallError
from ..errors import NodeError
from ..ice import OverlayPeerConnection, PrivacyError, filter_incoming_sdp
from ..media import hooks
from .hostpolicy import host_policy, map_mdns_candidates
from .relay import PacketReceiver, PacketTrack

log = logging.getLogger(__name__)

SETUP_TIMEOUT = 10.0
TALK_REFUSALS = ("no-talk", "no-speaker", "talk-busy")


class SessionError(NodeError):
    """What the page is told: `code` is stable, `message` says what to do."""

    def __init__(self, code: str, message: str, status: int = 400):
        self.code, self.message, self.status = code, message, status
        super().__init__(f"{code}: {message}")


class BrowserOffer:
    """What a page's offer asks for, read with aiortc's own SDP parser."""

    def __init__(self, sdp: str):
        try:
            parsed = SessionDescription.parse(sdp)
        except Exception:
            raise SessionError("bad-offer", "the page's SDP cannot be parsed") from None
        self.h264 = any(
            m.kind == "video" and any(c.mimeType.lower() == "video/h264" for c in m.rtp.codecs)
            for m in parsed.media
        )
        self.video = any(m.kind == "video" for m in parsed.media)
        self.sends_audio = any(
            m.kind == "audio" and m.direction in ("sendrecv", "sendonly", None) for m in parsed.media
        )


CameraLeg = Callable[[PacketTrack | None], Awaitable[Call]]


class BrowserSession:
    """A page's live view. `open()` returns the browser leg's answer SDP."""

    def __init__(
        self,
        peer_name: str,
        on_end: Callable[[BrowserSession], None] | None = None,
        host_addresses: list[str] | None = None,
    ):
        self.host_addresses = host_addresses
        self.id = os.urandom(8).hex()
        self.peer_name = peer_name
        self.started = time.monotonic()
        self.call: Call | None = None
        self.pc: OverlayPeerConnection | None = None
        self.talk_track: PacketTrack | None = None
        self.talk: dict[str, Any] = {"granted": False, "refused": None}
        self.talking = False  # push-to-talk held: the page's audio is forwarded
        self.no_h264 = False
        self.answer = ""  # the browser leg's answer SDP (this host's addresses only)
        self.ended_reason: str | None = None
        self._on_end = on_end
        self._watch: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._tracks: list[PacketTrack] = []
        self._unhooks: list[Callable[[], None]] = []

    def describe(self) -> dict[str, Any]:
        return {
            "session": self.id,
            "peer": self.peer_name,
            "talk": self.talk,
            "talking": self.talking,
            "no_h264": self.no_h264,
            "state": "ended" if self.ended_reason else ("live" if self.call else "opening"),
        }

    async def open(self, offer_sdp: str, camera_leg: CameraLeg, want_talk: bool = True) -> str:
        offer = BrowserOffer(offer_sdp)
        self.no_h264 = offer.video and not offer.h264
        policy = host_policy(self.host_addresses)
        try:
            sdp = filter_incoming_sdp(map_mdns_candidates(offer_sdp, policy), policy)
        except PrivacyError as e:
            log.warning("browser leg refused: %s", e)
            raise SessionError(
                "not-this-host",
                "the page's offer has no candidate on this machine's own addresses "
                "(open the page on the machine that runs media-node web)",
            ) from None
        try:
            await self._camera(camera_leg, want_talk and offer.sends_audio)
            return await self._browser(sdp, policy)
        except BaseException:
            await self.close("setup-failed")
            raise

    async def _camera(self, camera_leg: CameraLeg, want_talk: bool) -> None:
        talk = PacketTrack("audio", maxsize=10) if want_talk else None
        try:
            self.call = await camera_leg(talk)
        except CallError as e:
            if talk is None or e.code not in TALK_REFUSALS:
                raise
            log.info("%s refused talk (%s): viewing without it", self.peer_name, e.code)
            self.talk["refused"] = {"code": e.code, "message": e.message}
            talk = None
            self.call = await camera_leg(None)
        self.talk_track = talk
        self.talk["granted"] = talk is not None

    async def _browser(self, sdp: str, policy: Any) -> str:
        call = self.call
        assert call is not None
        receiver = call.receiver
        if not isinstance(receiver, PacketReceiver):
            raise SessionError("internal", "the camera leg has no packet receiver", 500)
        pc = self.pc = OverlayPeerConnection(policy, answering=True)  # bundle only what the page bundles
        page_audio = PacketReceiver(pc)  # the page's microphone (push-to-talk), as Opus packets
        page_audio.audio_sink = self._forward_talk
        await asyncio.wait_for(
            pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer")), SETUP_TIMEOUT
        )
        video = PacketTrack("video", maxsize=30, need_keyframe=lambda: self._keyframe(receiver))
        audio = PacketTrack("audio", maxsize=10)
        self._tracks += [video, audio]
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                if self.no_h264:  # nothing to send it: the page shows why
                    transceiver.direction = "inactive"
                    continue
                transceiver.sender.replaceTrack(video)
                transceiver.direction = "sendonly"
                hooks.prefer_h264(transceiver)
                self._unhooks.append(
                    hooks.hook_sender_feedback(
                        transceiver.sender, on_keyframe=lambda: self._keyframe(receiver)
                    )
                )
            elif transceiver.kind == "audio":
                transceiver.sender.replaceTrack(audio)
                transceiver.direction = "sendrecv" if self.talk_track is not None else "sendonly"
        answer = await asyncio.wait_for(pc.createAnswer(), SETUP_TIMEOUT)
        await asyncio.wait_for(pc.setLocalDescription(answer), SETUP_TIMEOUT)  # checked: this host only
        self._page_receiver = page_audio
        receiver.video_sink = video.push
        receiver.audio_sink = audio.push  # the video track asks for an IDR when it starts
        self._watch = asyncio.create_task(self._run_watch(), name=f"web-session-{self.id}")
        return str(pc.localDescription.sdp)

    def _keyframe(self, receiver: PacketReceiver) -> None:
        task = asyncio.ensure_future(receiver.request_keyframe())
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    def _forward_talk(self, packet: Any) -> None:
        if self.talking and self.talk_track is not None:
            self.talk_track.push(packet)

    def set_talking(self, on: bool) -> None:
        if on and self.talk_track is None:
            refused = self.talk["refused"] or {}
            raise SessionError(
                refused.get("code", "no-talk"),
                refused.get("message", "this view was opened without talk"),
                409,
            )
        self.talking = on

    async def _run_watch(self) -> None:
        reason = "ended"
        while True:
            call, pc = self.call, self.pc
            if call is not None and call.ended.is_set():
                reason = f"camera: {call.ended_reason}"
                break
            if pc is not None and pc.connectionState in ("failed", "closed"):
                reason = f"page: connection-{pc.connectionState}"
                break
            await asyncio.sleep(0.5)
        self._watch = None
        await self.close(reason)

    def stats(self) -> dict[str, Any]:
        out = self.describe()
        if self.call is not None:
            out["camera_leg"] = self.call.stats()
        out["relayed"] = {
            "video": self._tracks[0].sent if self._tracks else 0,
            "audio": self._tracks[1].sent if len(self._tracks) > 1 else 0,
            "talk": self.talk_track.sent if self.talk_track is not None else 0,
        }
        return out

    async def close(self, reason: str = "closed") -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(reason))
        await asyncio.shield(self._closing)

    async def _close(self, reason: str) -> None:
        self.ended_reason = reason
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for unhook in self._unhooks:
            unhook()
        for track in [*self._tracks, *([self.talk_track] if self.talk_track else [])]:
            track.stop()
        page = getattr(self, "_page_receiver", None)
        if page is not None:
            await page.close()
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pc.close(), 5)
        if self.call is not None:
            await self.call.end("page-closed")
        log.info("web session %s with %s ended: %s", self.id, self.peer_name, reason)
        if self._on_end is not None:
            self._on_end(self)


__all__ = ["BrowserOffer", "BrowserSession", "SessionError"]
