"""MediaPublisher: the node's one video source and one audio source, shared by every
call. attach(pc) gives a peer connection its own send-only tracks (a fan-out viewer and
an audio subscriber), H.264 codec preferences, and the PLI/FIR/REMB hooks."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamTrack

from . import hooks, rtploop
from .audio import AudioHub, AudioSource
from .fanout import Fanout, Viewer
from .h264profile import H264Profile
from .source import EncodedVideoSource, MediaError
from .speaker import Speaker, Talkback
from .track import EncodedVideoTrack

log = logging.getLogger(__name__)


@dataclass
class MediaPolicy:
    """Per-node media policy (from config and the board profile)."""

    start_bitrate: int = 1_500_000
    min_bitrate: int = 250_000
    max_bitrate: int = 4_000_000
    queue_size: int = 30  # access units per viewer (~1 s at 30 fps)
    keyframe_interval: float = 0.5  # seconds between forced IDRs, all viewers together
    loss_backoff: float = 0.10  # fraction lost above which a viewer's estimate is cut
    stall_timeout: float = 10.0  # seconds without video before the source is restarted
    # seconds without any video after which the node reports itself unhealthy, so the
    # service manager restarts it (a source wedged inside a native call); None: never
    dead_after: float | None = 300.0


class BitrateController:
    """One encoder, many viewers: the encoder gets the smallest viewer estimate (REMB,
    cut on loss), clamped to the profile's bounds; changes under 10 % are ignored."""

    def __init__(self, apply: Callable[[int], None], policy: MediaPolicy):
        self._apply = apply
        self._policy = policy
        self._estimates: dict[object, int] = {}
        self.current = policy.start_bitrate

    def remb(self, viewer: object, bps: int) -> None:
        self._estimates[viewer] = int(bps)
        self._update()

    def loss(self, viewer: object, fraction: float) -> None:
        """Receiver-report loss: heavy loss cuts the viewer's estimate; a clean report
        lets a cut estimate recover slowly (peers without REMB depend on this)."""
        if fraction > self._policy.loss_backoff:
            base = self._estimates.get(viewer, self.current)
            self._estimates[viewer] = int(base * (1 - fraction / 2))
            self._update()
        elif fraction < 0.02 and viewer in self._estimates:
            grown = int(self._estimates[viewer] * 1.05)
            self._estimates[viewer] = min(grown, self._policy.max_bitrate)
            self._update()

    def remove(self, viewer: object) -> None:
        if self._estimates.pop(viewer, None) is not None:
            self._update()

    def _update(self) -> None:
        p = self._policy
        want = min(self._estimates.values()) if self._estimates else p.start_bitrate
        want = max(p.min_bitrate, min(p.max_bitrate, want))
        if abs(want - self.current) >= 0.1 * self.current:
            self.current = want
            try:
                self._apply(want)
            except Exception:
                log.exception("set_bitrate(%d) failed", want)


class Attachment:
    """One peer connection's share of the publisher; detach() releases it (also done
    automatically when the connection closes or fails)."""

    def __init__(self, publisher: MediaPublisher, pc: RTCPeerConnection):
        self.publisher = publisher
        self.pc = pc
        self.viewer: Viewer | None = None
        self.video_track: EncodedVideoTrack | None = None
        self.audio_track: MediaStreamTrack | None = None
        self._unhooks: list[Callable[[], None]] = []
        self.detached = False

    @property
    def frames_sent(self) -> int | None:
        """Video access units handed to this connection's sender (the call's stats)."""
        return self.viewer.delivered if self.viewer is not None else None

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {"video": self.viewer.stats() if self.viewer else None}
        if self.audio_track is not None:
            out["audio_frames"] = getattr(self.audio_track, "frames", 0)
        return out

    def on_detach(self, undo: Callable[[], None]) -> None:
        """Run `undo` (e.g. a hook's unhook) when this attachment is released."""
        self._unhooks.append(undo)

    def detach(self) -> None:
        if self.detached:
            return
        self.detached = True
        for unhook in self._unhooks:
            unhook()
        for track in (self.video_track, self.audio_track):
            if track is not None:
                track.stop()
        if self.viewer is not None:
            self.publisher.bitrate.remove(self.viewer)
        self.publisher.forget(self)


def _send_transceiver(pc: RTCPeerConnection, track: MediaStreamTrack) -> RTCRtpTransceiver | None:
    """The offer's transceiver of this kind when answering, a new one when offering;
    either way send-only. When answering, an offer without an m-line of this kind gets
    no track of it (None): an answer has exactly the offer's m-lines. The publisher never
    asks to receive: taking media from a peer is the call's decision (node.calls makes a
    two-way `offer` call receive, with a consumer), never a side effect of sharing."""
    for transceiver in pc.getTransceivers():
        sending: MediaStreamTrack | None = transceiver.sender.track  # None until a track is set
        if transceiver.kind == track.kind and sending is None and not transceiver.stopped:
            transceiver.sender.replaceTrack(track)
            transceiver.direction = "sendonly"
            return transceiver
    if pc.signalingState == "have-remote-offer":
        return None
    return pc.addTransceiver(track, direction="sendonly")


def _wants(pc: RTCPeerConnection, kind: str) -> bool:
    """Offering: always. Answering: only if the offer has a free m-line of this kind."""
    if pc.signalingState != "have-remote-offer":
        return True
    # aiortc types sender.track as never None; it is None until a track is set.
    return any(
        t.kind == kind and cast(MediaStreamTrack | None, t.sender.track) is None and not t.stopped
        for t in pc.getTransceivers()
    )


class MediaPublisher:
    def __init__(
        self,
        video: EncodedVideoSource | None,
        audio: AudioSource | None,
        policy: MediaPolicy | None = None,
        audio_optional: bool = False,
        speaker: Speaker | None = None,
        talk_mutes_mic: bool = True,
    ):
        """`audio_optional`: the audio source is a board default, not asked for; if it
        cannot open (no microphone) the node goes on without audio instead of failing.
        `speaker`: where a viewer allowed `talk` is heard; `talk_mutes_mic`: the
        microphone sends silence meanwhile (no echo of the talker's own voice)."""
        hooks.check_internals()
        self.speaker = speaker
        if speaker is not None and talk_mutes_mic:
            speaker.on_change(self._mute_mic)
        self.audio_optional = audio_optional
        self.policy = policy or MediaPolicy()
        self.video = video
        self.audio = audio
        self.fanout = (
            Fanout(video, self.policy.queue_size, self.policy.keyframe_interval, self.policy.stall_timeout)
            if video
            else None
        )
        self.audio_hub = AudioHub(audio) if audio else None
        self.bitrate = BitrateController(video.set_bitrate if video else (lambda bps: None), self.policy)
        self._attachments: set[Attachment] = set()
        self.started = False
        self._started_at = 0.0
        self.unhealthy_reason = ""

    def _mute_mic(self, talking: bool) -> None:
        if self.audio_hub is not None:
            self.audio_hub.muted = talking

    def talkback(self, pc: RTCPeerConnection, owner: str) -> Talkback:
        """Play `pc`'s incoming audio on the speaker (create before setRemoteDescription).
        MediaError without a speaker, TalkBusy while another call talks."""
        if self.speaker is None:
            raise MediaError("this node has no speaker (media.speaker is not set)")
        return Talkback(pc, self.speaker, owner)

    async def start(self) -> None:
        if self.started:
            return
        if self.video is not None and self.fanout is not None:
            self.video.set_bitrate(self.policy.start_bitrate)
            await self.fanout.start()
        if self.audio_hub is not None:
            try:
                await self.audio_hub.start()
            except MediaError as e:
                if not self.audio_optional:
                    if self.fanout is not None:
                        await self.fanout.stop()
                    raise
                log.warning("no audio: %s", e)
                self.audio, self.audio_hub = None, None
        self.started = True
        self._started_at = time.monotonic()

    def unavailable_reason(self) -> str:
        """Why the camera cannot be watched right now (empty: it can). A source that is
        absent or failing is retried in the background; calls are refused meanwhile."""
        if self.video is None:
            return ""
        reason = getattr(self.video, "unavailable_reason", None)
        return reason() if callable(reason) else ""

    def source_state(self) -> str:
        """`available` or `unavailable` (status and events), `none` without video."""
        if self.video is None:
            return "none"
        return "unavailable" if self.unavailable_reason() else "available"

    def healthy(self) -> bool:
        """Liveness for the service watchdog: False when a source thread died and
        nothing will restart it, or no video came for `policy.dead_after` seconds (then
        a restart of the node is the remaining fix); `unhealthy_reason` says which."""
        problem = self._problem()
        if problem and problem != self.unhealthy_reason:
            log.error("media is unhealthy: %s", problem)
        self.unhealthy_reason = problem
        return not problem

    def _problem(self) -> str:
        if not self.started:
            return ""
        fanout = self.fanout
        if self.video is not None and fanout is not None:
            if fanout.watchdog_ended():
                return "the video stall watchdog ended"
            if fanout.stall_timeout is None and not self.video.alive():
                return f"the {self.video.kind} video source thread died"
            retrying = getattr(self.video, "retrying", None)
            if callable(retrying) and retrying():
                return ""  # an absent camera is a state the node reports, not an illness
            dead_after = self.policy.dead_after
            last = max(self.video.last_au_at or 0.0, self._started_at)
            if dead_after and time.monotonic() - last > dead_after:
                return f"no video from the {self.video.kind} source for {dead_after:.0f} s"
        if self.audio is not None and not self.audio.alive():
            return f"the {self.audio.kind} audio thread died"
        return ""

    async def stop(self) -> None:
        for attachment in list(self._attachments):
            attachment.detach()
        if self.fanout is not None:
            await self.fanout.stop()
        if self.audio_hub is not None:
            await self.audio_hub.stop()
        self.started = False

    def forget(self, attachment: Attachment) -> None:
        """An attachment that detached is no longer counted."""
        self._attachments.discard(attachment)

    def attach(self, pc: RTCPeerConnection, name: str = "") -> Attachment:
        """Add send-only video (H.264 passthrough) and audio to `pc` (never a receiving
        direction, whatever the offer asked). Call after
        setRemoteDescription(offer) when answering, before createOffer() when calling."""
        if not self.started:
            raise MediaError("MediaPublisher.attach() before start()")
        att = Attachment(self, pc)
        try:
            if self.fanout is not None and _wants(pc, "video"):
                viewer = self.fanout.join(name)
                att.viewer = viewer
                att.video_track = EncodedVideoTrack(viewer, self._frame_us())
                transceiver = _send_transceiver(pc, att.video_track)
                assert transceiver is not None  # _wants() found its m-line
                hooks.prefer_h264(transceiver)
                rtploop.hook_sender_payloads(transceiver.sender, att.video_track.next_payloads)
                att.on_detach(
                    hooks.hook_sender_feedback(
                        transceiver.sender,
                        on_keyframe=self.fanout.request_keyframe,
                        on_remb=functools.partial(self.bitrate.remb, viewer),
                        on_loss=functools.partial(self.bitrate.loss, viewer),
                    )
                )
            if self.audio_hub is not None and _wants(pc, "audio"):
                att.audio_track = self.audio_hub.subscribe()
                _send_transceiver(pc, att.audio_track)
        except Exception:
            att.detach()
            raise
        self._attachments.add(att)

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            if pc.connectionState in ("closed", "failed"):
                att.detach()

        return att

    async def video_profile(self, timeout: float = 5.0) -> H264Profile | None:
        """The source's H.264 profile-level-id from its latest SPS; waits up to
        `timeout` for a source that has not sent one yet. None without video; MediaError
        if no SPS came in time."""
        if self.video is None:
            return None
        deadline = time.monotonic() + timeout
        while not self.video.info().profile_level_id:
            if time.monotonic() > deadline:
                raise MediaError(f"the {self.video.kind} video source has sent no SPS yet")
            await asyncio.sleep(0.05)
        return H264Profile.parse(self.video.info().profile_level_id)

    def _frame_us(self) -> int:
        fps = self.video.info().fps if self.video else 0
        return int(1_000_000 / fps) if fps else 33_333

    def describe(self) -> dict[str, object]:
        video: dict[str, object] | None = None
        if self.video is not None and self.fanout is not None:
            video = self.video.info().as_dict()
            video["codec"] = "H264"
            video["bitrate"] = self.bitrate.current
            video["viewers"] = len(self.fanout.viewers)
            video["restarts"] = self.fanout.restarts
            video["state"] = self.source_state()
        return {
            "video": video,
            "audio": self.audio.info().as_dict() if self.audio else None,
            "speaker": self.speaker.describe() if self.speaker else None,
        }
