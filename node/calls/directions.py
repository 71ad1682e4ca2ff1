"""The directions of a call's m-lines: what a view-request may ask, what an answer sends."""

from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.sdp import SessionDescription


def view_request_media(sdp: str) -> tuple[str, bool]:
    """(why a view-request asks for more than it may, or "", whether it sends one audio
    track to talk). A view-request receives; the only media a viewer may send in is one
    audio track (talkback, permission `talk`), never video. Parsed with aiortc's own
    parser: the directions checked are the ones aiortc will apply."""
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as e:
        return f"unparseable SDP ({type(e).__name__})", False
    if not parsed.media:
        return "no m-line", False
    talking = 0
    for media in parsed.media:
        if media.kind not in ("audio", "video"):
            return f"an m={media.kind} line", False
        if media.direction in ("recvonly", "inactive"):
            continue
        if media.kind == "audio":
            talking += 1
            continue
        return f"an m={media.kind} line with direction {media.direction or 'sendrecv (default)'}", False
    if talking > 1:
        return f"{talking} audio m-lines that send (one talker track at most)", False
    return "", talking == 1


def not_receive_only(sdp: str) -> str:
    """Why an offer is not a pure request to receive audio/video, or "" if it is."""
    problem, talks = view_request_media(sdp)
    return problem or ("an m=audio line that sends" if talks else "")


def set_directions(pc: RTCPeerConnection, *, receive: set[str]) -> None:
    """The answer's directions are decided here, not by whatever the publisher did:
    send where a track is attached, receive only the kinds in `receive` (a consumer
    exists for them)."""
    for transceiver in pc.getTransceivers():
        if transceiver.stopped:
            continue
        sends = transceiver.sender.track is not None
        if transceiver.kind in receive:
            transceiver.direction = "sendrecv" if sends else "recvonly"
        else:
            transceiver.direction = "sendonly" if sends else "inactive"


__all__ = ["not_receive_only", "set_directions", "view_request_media"]
