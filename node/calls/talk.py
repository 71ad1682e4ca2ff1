"""Talkback on the answering side: may this peer talk, and the speaker claimed for it."""

from __future__ import annotations

import logging
from typing import cast

from aiortc import RTCPeerConnection

from ..peers import Peer
from .errors import CallError
from .media import Publisher, Receiver, TalkingPublisher

log = logging.getLogger(__name__)


def check_talk(peer: Peer, publisher: Publisher | None) -> None:
    """CallError unless `peer` is allowed `talk` and this node has a speaker."""
    if not peer.may("talk"):
        raise CallError(
            "no-talk",
            "this node does not let you talk: the allowlist does not grant you 'talk' "
            "(ask to view without sending audio)",
        )
    if getattr(publisher, "speaker", None) is None:
        raise CallError("no-speaker", "this node has no speaker for talkback (media.speaker is not set)")


def open_talkback(publisher: Publisher | None, pc: RTCPeerConnection, owner: str) -> Receiver:
    """The receiver that plays `pc`'s audio on the speaker, which it claims for `owner`
    (a call id) until closed. A second talker is told, never queued."""
    from ..media.source import MediaError
    from ..media.speaker import TalkBusy

    try:
        return cast(TalkingPublisher, publisher).talkback(pc, owner)
    except TalkBusy:
        raise CallError(
            "talk-busy", "another peer is talking on this node's speaker; try again when they stop"
        ) from None
    except MediaError as e:
        log.error("talkback: %s", e)
        raise CallError("no-speaker", "this node's speaker cannot be opened (see its log)") from None


def offer_talkback(
    peer: Peer, publisher: Publisher | None, pc: RTCPeerConnection, owner: str
) -> Receiver | None:
    """Calling `peer` (a doorbell): when it is allowed `talk` and the speaker is free,
    the offer's audio becomes two-way and the speaker is claimed; else None (one-way)."""
    if not peer.may("talk") or getattr(publisher, "speaker", None) is None:
        return None
    try:
        receiver = open_talkback(publisher, pc, owner)
    except CallError as e:
        log.info("calling %s without talk: %s", peer.name, e.message)
        return None
    audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
    for transceiver in audio:
        transceiver.direction = "sendrecv"
    if not audio:  # no microphone: an audio m-line only to be talked to
        pc.addTransceiver("audio", direction="recvonly")
    return receiver


__all__ = ["check_talk", "offer_talkback", "open_talkback"]
