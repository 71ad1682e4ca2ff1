"""What a call needs from the media side: typed seams, so the call path never guesses
method names (node.media.MediaPublisher and MediaReceiver implement them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiortc import RTCPeerConnection

from ..media.h264profile import H264Profile


class Attachment(Protocol):
    """One peer connection's share of a publisher."""

    def detach(self) -> None:
        """Stop this connection's tracks (idempotent)."""

    @property
    def frames_sent(self) -> int | None:
        """Video access units handed to this connection's sender (None: unknown)."""


class Publisher(Protocol):
    def attach(self, pc: RTCPeerConnection) -> Attachment:
        """Add this node's tracks to `pc` (send-only; the call sets directions). When
        answering, only to the m-lines the offer has."""

    async def video_profile(self) -> H264Profile | None:
        """The video source's H.264 profile-level-id from its SPS (None: no video, or
        a publisher whose video is encoded by aiortc)."""


class TalkingPublisher(Publisher, Protocol):
    """A publisher with a speaker: a peer allowed `talk` is heard through it."""

    speaker: object | None

    def talkback(self, pc: RTCPeerConnection, owner: str) -> Receiver:
        """Play `pc`'s incoming audio on the speaker until closed; raises
        node.media.speaker.TalkBusy while another call `owner` holds it."""


class Receiver(Protocol):
    """Consumes whatever a peer sends on one connection."""

    def summary(self) -> dict[str, object]:
        """Counters; `video_frames` (int) is read by the call's stats."""

    async def close(self) -> None:
        """Stop consuming (idempotent)."""


ReceiverFactory = Callable[[RTCPeerConnection], Receiver]

__all__ = ["Attachment", "Publisher", "Receiver", "ReceiverFactory", "TalkingPublisher"]
