"""Answer what was offered: the offer's m-lines, its BUNDLE groups (or none), and an
H.264 payload type that can carry the source as it is (node.media.h264profile).

`plan_answer(offer_sdp, source)` reads a (privacy-filtered) offer and either refuses it
with an `OfferError` whose message names what is missing (the peer gets it in a signed
`bad-offer`), or returns an `AnswerPlan`:
- `stack_offer`: the offer as aiortc applies it. aiortc matches H.264 only against its
  own two baseline entries, so each video m-line is reduced to the chosen payload type
  (and its RTX) with baseline parameters aiortc accepts; the real parameters are put
  back on the negotiated codec by `state_codecs` before the answer is created.
- `shape(answer_sdp)`: aiortc's answer with the offer's BUNDLE groups (aiortc always
  bundles every m-line, which RFC 8843 forbids an answerer to do unasked) and
  `a=setup:passive` where the offer left the DTLS role open (`actpass`): the node is
  then the DTLS server with its ECDSA certificate, so a client with an RSA certificate
  (GStreamer's default) can connect; as a DTLS client aiortc offers ECDSA suites only.

Offers are parsed with aiortc's own SDP parser, so what is checked is what aiortc
applies."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import OperationError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.sdp import GroupDescription, MediaDescription, SessionDescription

from ..media import hooks
from ..media.h264profile import H264Profile, offered_profile
from .errors import CallError, within
from .media import Publisher

log = logging.getLogger(__name__)

AUDIO_CODECS = ("opus", "pcmu", "pcma")  # what aiortc can send (its audio encoders)
# What aiortc's matcher accepts (its own constrained-baseline entry); the negotiated
# codec gets the real parameters back in state_codecs().
_STACK_H264 = {"level-asymmetry-allowed": "1", "packetization-mode": "1", "profile-level-id": "42e01f"}


class OfferError(Exception):
    """The offer cannot be served; `message` is for the peer (names what is missing,
    never an address)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class VideoChoice:
    payload_type: int
    parameters: dict[str, str | int | None]  # what the answer states for it
    offered: frozenset[int] = frozenset()  # payload_type and its offered RTX


@dataclass
class AnswerPlan:
    stack_offer: str
    video: dict[str, VideoChoice] = field(default_factory=dict)  # mid -> choice
    bundle: list[list[str]] = field(default_factory=list)  # the offer's BUNDLE groups
    open_role: set[str] = field(default_factory=set)  # mids offered with setup:actpass

    @property
    def bundled(self) -> bool:
        return bool(self.bundle)

    def state_codecs(self, pc: RTCPeerConnection) -> None:
        """Put the source's own H.264 parameters on each video transceiver's codec."""
        for transceiver in pc.getTransceivers():
            choice = self.video.get(str(transceiver.mid))
            if choice is not None:
                hooks.state_h264(transceiver, choice.payload_type, choice.parameters, set(choice.offered))

    def shape(self, answer_sdp: str) -> str:
        """aiortc's answer with the offer's BUNDLE groups and the DTLS server role."""
        answer = SessionDescription.parse(answer_sdp)
        answer.group = [g for g in answer.group if g.semantic != "BUNDLE"]
        mids = {str(m.rtp.muxId) for m in answer.media}
        for items in self.bundle:
            kept = [mid for mid in items if mid in mids]
            if kept:
                answer.group.append(GroupDescription(semantic="BUNDLE", items=list(kept)))
        for media in answer.media:
            if str(media.rtp.muxId) in self.open_role and media.dtls is not None:
                media.dtls.role = "server"
        return str(answer)


async def apply_offer(pc: RTCPeerConnection, plan: AnswerPlan, peer: str, timeout: float) -> None:
    """setRemoteDescription of `plan.stack_offer`; what aiortc still refuses there is
    the offer's fault (a signed bad-offer naming the stack's reason class), not the
    node's."""
    offer = RTCSessionDescription(sdp=plan.stack_offer, type="offer")
    try:
        await within(timeout, "applying the offer", pc.setRemoteDescription(offer))
    except (ValueError, LookupError, OperationError) as e:
        log.error("%s's offer was refused by the WebRTC stack: %s", peer, e)
        raise CallError(
            "bad-offer", f"the offer's SDP could not be applied ({type(e).__name__}; see this node's log)"
        ) from None


def _names(codecs: list[RTCRtpCodecParameters]) -> str:
    seen: list[str] = []
    for c in codecs:
        name = c.mimeType.split("/")[-1]
        if name.lower() not in ("rtx", "red", "ulpfec", "flexfec-03") and name not in seen:
            seen.append(name)
    return ", ".join(seen) or "none"


def _h264_offers(media: MediaDescription) -> list[tuple[RTCRtpCodecParameters, H264Profile | None]]:
    out = []
    for codec in media.rtp.codecs:
        if codec.mimeType.lower() == "video/h264":
            try:
                profile: H264Profile | None = offered_profile(codec.parameters)
            except ValueError:
                profile = None  # unreadable: it cannot be shown to cover anything
            out.append((codec, profile))
    return out


def choose_h264(media: MediaDescription, source: H264Profile | None) -> VideoChoice:
    """The first offered H.264 payload type (offer order) that can carry `source`."""
    h264 = _h264_offers(media)
    if not h264:
        raise OfferError(
            "the camera sends H.264 only, and the offer's video has no H.264 "
            f"(offered: {_names(media.rtp.codecs)})"
        )
    mode1 = [(c, p) for c, p in h264 if str(c.parameters.get("packetization-mode", "0")) == "1"]
    if not mode1:
        raise OfferError("the offer's H.264 lacks packetization-mode=1 (the only mode this node sends)")
    for codec, profile in mode1:
        if codec.payloadType is None:
            continue
        if source is None or (profile is not None and profile.decodes(source)):
            stated: dict[str, str | int | None] = {"packetization-mode": "1"}
            if "level-asymmetry-allowed" in codec.parameters:
                stated["level-asymmetry-allowed"] = codec.parameters["level-asymmetry-allowed"]
            stated["profile-level-id"] = (source or profile or H264Profile.parse("42e01f")).text
            return VideoChoice(codec.payloadType, stated)
    offered = ", ".join(str(c.parameters.get("profile-level-id", "none")) for c, _ in mode1)
    assert source is not None
    raise OfferError(
        f"the camera sends H.264 {source.describe()}; no offered H.264 profile decodes it "
        f"(offered profile-level-id: {offered}); offer one that does, e.g. "
        f"{'640034' if source.profile_idc in (77, 100) else source.text}"
    )


def _check_audio(media: MediaDescription) -> None:
    if not any(c.mimeType.split("/")[-1].lower() in AUDIO_CODECS for c in media.rtp.codecs):
        raise OfferError(f"the offer's audio has no Opus, PCMU or PCMA (offered: {_names(media.rtp.codecs)})")


def _kept_payload_types(media: MediaDescription, payload_type: int) -> set[int]:
    rtx = {
        c.payloadType
        for c in media.rtp.codecs
        if c.mimeType.lower() == "video/rtx"
        and c.parameters.get("apt") == payload_type
        and c.payloadType is not None
    }
    return {payload_type} | rtx


_PT_ATTRIBUTES = ("a=rtpmap:", "a=rtcp-fb:", "a=fmtp:")


def _edit_section(lines: list[str], keep: set[int], chosen: int) -> list[str]:
    """One m-section with only the `keep` payload types, the chosen one with
    parameters aiortc matches. Edited line by line: aiortc's own serializer drops
    attributes (a=rtcp-mux without a=rtcp), so the offer is never re-serialized."""
    stack_fmtp = f"a=fmtp:{chosen} " + ";".join(f"{k}={v}" for k, v in _STACK_H264.items())
    out = []
    for line in lines:
        if line.startswith("m="):
            parts = line.split()
            fmts = [pt for pt in parts[3:] if pt.isdigit() and int(pt) in keep]
            out.append(" ".join(parts[:3] + fmts))
            continue
        prefix = next((p for p in _PT_ATTRIBUTES if line.startswith(p)), None)
        if prefix is None:
            out.append(line)
            continue
        pt_text = line[len(prefix) :].split(None, 1)[0]
        if not pt_text.isdigit() or int(pt_text) not in keep:
            continue
        if prefix == "a=fmtp:" and int(pt_text) == chosen:
            continue  # replaced by stack_fmtp, right after the rtpmap line
        out.append(line)
        if prefix == "a=rtpmap:" and int(pt_text) == chosen:
            out.append(stack_fmtp)
    return out


def _stack_offer(offer_sdp: str, keep: dict[int, tuple[set[int], int]]) -> str:
    """The offer with each m-section index in `keep` reduced (see _edit_section)."""
    sections: list[list[str]] = [[]]
    for line in offer_sdp.splitlines():
        if not line:
            continue
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    out = list(sections[0])
    for index, lines in enumerate(sections[1:]):
        out += _edit_section(lines, *keep[index]) if index in keep else lines
    return "\r\n".join(out) + "\r\n"


def plan_answer(offer_sdp: str, source: H264Profile | None) -> AnswerPlan:
    """How to answer `offer_sdp` with a video source of profile `source` (None: no
    video source); OfferError if it cannot be served."""
    try:
        offer = SessionDescription.parse(offer_sdp)
    except Exception as e:
        raise OfferError(f"the offer's SDP cannot be parsed ({type(e).__name__})") from None
    if not offer.media:
        raise OfferError("the offer has no m-line (offer audio and/or video)")
    plan = AnswerPlan(stack_offer="")
    keep: dict[int, tuple[set[int], int]] = {}
    for index, media in enumerate(offer.media):
        if media.kind not in ("audio", "video"):
            raise OfferError(f"the offer has an m={media.kind} line; this node serves audio and video only")
        if media.rtp.muxId in (None, ""):
            raise OfferError(f"the offer's m-line {index} has no a=mid")
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise OfferError(f"the offer's m={media.kind} line has no a=ice-ufrag/a=ice-pwd")
        if media.dtls is None or not media.dtls.fingerprints:
            raise OfferError(f"the offer's m={media.kind} line has no DTLS fingerprint (a=fingerprint)")
        mid = str(media.rtp.muxId)
        if media.dtls.role == "auto":
            plan.open_role.add(mid)
        if media.kind == "audio":
            _check_audio(media)
        else:
            choice = choose_h264(media, source)
            kept = _kept_payload_types(media, choice.payload_type)
            plan.video[mid] = VideoChoice(choice.payload_type, choice.parameters, frozenset(kept))
            keep[index] = (kept, choice.payload_type)
    plan.bundle = [[str(i) for i in g.items] for g in offer.group if g.semantic == "BUNDLE" and g.items]
    plan.stack_offer = _stack_offer(offer_sdp, keep)
    return plan


async def plan_for(publisher: Publisher | None, offer_sdp: str, peer: str) -> AnswerPlan:
    """plan_answer() with the publisher's source profile; a refusal is a CallError
    `bad-offer` carrying the OfferError's message."""
    source = await publisher.video_profile() if publisher is not None else None
    try:
        return plan_answer(offer_sdp, source)
    except OfferError as e:
        log.error("%s's offer: %s", peer, e.message)
        raise CallError("bad-offer", e.message) from None


def no_candidate_message(offer_sdp: str) -> str:
    """What the peer must fix when its offer had no candidate on its overlay address
    (for the signed `no-candidate` error; counts only, never an address)."""
    total = names = 0
    for line in offer_sdp.splitlines():
        if line.startswith("a=candidate:"):
            total += 1
            bits = line.split()
            if len(bits) > 4 and bits[4].lower().endswith(".local"):
                names += 1
    if total == 0:
        return (
            "the offer has no ICE candidate: this node needs complete offers (no trickle); "
            "wait for ICE gathering to complete, then send the offer"
        )
    if names == total:
        return (
            "the offer's candidates are all mDNS .local names, which this node never resolves; "
            "the browser must offer a real address on the overlay: in Chromium the page needs "
            "camera or microphone permission; Firefox needs "
            "media.peerconnection.ice.obfuscate_host_addresses=false and the overlay as its "
            "default route (see docs/interop.md)"
        )
    return (
        "the offer has no candidate on the overlay address this node resolves for you "
        "(check both allowlists' overlay bindings, and that the client gathers on the "
        "overlay interface)"
    )


__all__ = [
    "AnswerPlan",
    "OfferError",
    "VideoChoice",
    "apply_offer",
    "choose_h264",
    "no_candidate_message",
    "plan_answer",
    "plan_for",
]
