"""The directions of a call's m-lines: what a view-request may ask, what an answer sends."""

from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.sdp import SessionDescription


def not_receive_only(sdp: str) -> str:
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


def set_directions(pc: RTCPeerConnection, *, receive: bool) -> None:
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


__all__ = ["not_receive_only", "set_directions"]
