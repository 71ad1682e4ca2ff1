"""Every private aiortc / aioice name this package relies on, in one list, and the check
that fails loudly (naming what moved) when an upgrade changes any of them.

aiortc and aioice are pinned to exact versions (pyproject.toml). The hooks themselves
live beside what they serve: node/media/hooks.py (keyframe and bitrate feedback from
the sender, payloads packetized once for every viewer with node/media/rtploop.py,
encoded frames out of the receiver, H.264 preferences), node/lazyimports.py (aioice's
mDNS module loaded only on use) and
node/ice/confine.py (ICE confined to the overlay). Each checks its part before it is
used: media when a publisher or receiver is built, ICE when a node's IceApi is built.
The tests (tests/media/test_hooks.py, tests/ice/) also run every hook for real."""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"

Part = Literal["media", "ice"]


@dataclass(frozen=True)
class Internal:
    part: Part
    where: str  # "module:Class" or "module"
    name: str
    # class: an attribute of the class; instance: set on a fresh instance (or, where
    # there is no cheap one, assigned in __init__); module: a module global.
    kind: Literal["class", "instance", "module"]
    why: str

    def present(self) -> bool:
        module_name, _, class_name = self.where.partition(":")
        module = importlib.import_module(module_name)
        if self.kind == "module":
            return hasattr(module, self.name)
        owner = getattr(module, class_name, None)
        if owner is None:
            return False
        if self.kind == "class":
            return hasattr(owner, self.name)
        probe = _INSTANCES.get(self.where)
        if probe is not None:
            return hasattr(probe(), self.name)
        # no cheap instance: the attribute must still be assigned in __init__
        mangled = f"_{class_name}__"
        plain = "__" + self.name[len(mangled) :] if self.name.startswith(mangled) else self.name
        return _assigned_in_init(owner, plain)


@functools.cache
def _assigned_in_init(owner: type, attribute: str) -> bool:
    source = inspect.getsource(owner.__init__)  # type: ignore[misc]
    return re.search(rf"self\.{re.escape(attribute)}\s*[:=]", source) is not None


def _ice_connection() -> object:
    import aioice.ice

    return aioice.ice.Connection(ice_controlling=True)


def _jitter_buffer() -> object:
    from aiortc.jitterbuffer import JitterBuffer

    return JitterBuffer(capacity=16, is_video=True)


_INSTANCES: dict[str, Callable[[], object]] = {
    "aioice.ice:Connection": _ice_connection,
    "aiortc.jitterbuffer:JitterBuffer": _jitter_buffer,
}

_SENDER = "aiortc.rtcrtpsender:RTCRtpSender"
_RECEIVER = "aiortc.rtcrtpreceiver:RTCRtpReceiver"
_JITTER = "aiortc.jitterbuffer:JitterBuffer"
_CONNECTION = "aioice.ice:Connection"
_DTLS = "aiortc.rtcdtlstransport:RTCDtlsTransport"

INTERNALS: tuple[Internal, ...] = (
    # --- media (node/media/hooks.py) ---
    Internal("media", _SENDER, "_send_keyframe", "class", "PLI/FIR reach the one encoder"),
    Internal("media", _SENDER, "_handle_rtcp_packet", "class", "REMB and loss reach set_bitrate"),
    Internal("media", _SENDER, "_ssrc", "instance", "the sender's SSRC in feedback"),
    Internal("media", _SENDER, "_RTCRtpSender__encoder", "instance", "passthrough never encodes"),
    Internal("media", _SENDER, "_next_encoded_frame", "class", "av.Packet is only packetized"),
    Internal("media", _RECEIVER, "_RTCRtpReceiver__jitter_buffer", "instance", "marker-bit release"),
    Internal("media", _RECEIVER, "_RTCRtpReceiver__decoder_queue", "instance", "encoded frames out"),
    Internal("media", _RECEIVER, "_RTCRtpReceiver__decoder_thread", "instance", "hook before start"),
    Internal("media", _RECEIVER, "_send_rtcp_pli", "class", "a viewer asks for a keyframe"),
    Internal("media", "aiortc.rtcrtpreceiver", "get_decoder", "module", "passthrough decoder"),
    Internal("media", "aiortc.rtcrtpreceiver", "decoder_worker", "module", "looks get_decoder up"),
    Internal("media", _JITTER, "_remove_frame", "class", "marker-bit release"),
    Internal("media", _JITTER, "add", "class", "marker-bit release"),
    Internal("media", _JITTER, "remove", "class", "marker-bit release"),
    Internal("media", _JITTER, "_origin", "instance", "marker-bit release"),
    Internal("media", _JITTER, "_capacity", "instance", "marker-bit release"),
    Internal("media", _JITTER, "_packets", "instance", "marker-bit release"),
    Internal("media", _JITTER, "_prefetch", "instance", "the replacement keeps its settings"),
    Internal("media", _JITTER, "_is_video", "instance", "the replacement keeps its settings"),
    # the shared-payload RTP loop (node/media/rtploop.py) replaces _run_rtp per sender
    Internal("media", _SENDER, "_run_rtp", "class", "replaced per sender: payloads shared"),
    Internal("media", _SENDER, "_retransmit", "class", "NACK/RTX from the loop's history"),
    *(
        Internal("media", _SENDER, f"_RTCRtpSender__{name}", "instance", "the RTP loop's own state")
        for name in (  # (__track is set by replaceTrack: hook_sender_payloads checks it live)
            "mid",
            "rtp_header_extensions_map",
            "rtp_history",
            "rtp_started",
            "rtp_exited",
            "ntp_timestamp",
            "rtp_timestamp",
            "octet_count",
            "packet_count",
        )
    ),
    Internal("media", _SENDER, "_enabled", "instance", "a disabled sender drops frames"),
    Internal("media", "aiortc.rtcrtpsender", "random_sequence_number", "module", "per-viewer origin"),
    Internal("media", "aiortc.rtp", "RTP_HISTORY_SIZE", "module", "NACK history size"),
    Internal("media", "aiortc.codecs.h264:H264Encoder", "_split_bitstream", "class", "packetize once"),
    Internal("media", "aiortc.codecs.h264:H264Encoder", "_packetize", "class", "packetize once"),
    Internal("media", "aiortc.codecs.h264", "PACKET_MAX", "module", "the payload size it packs to"),
    Internal(
        "media",
        "aiortc.rtcrtptransceiver:RTCRtpTransceiver",
        "_codecs",
        "instance",
        "H.264 only; the answer's payload type and profile-level-id",
    ),
    Internal("media", "aiortc.codecs", "CODECS", "module", "Main and High H.264 to receive"),
    Internal("media", _DTLS, "_set_role", "class", "a local answer's a=setup sets the role"),
    Internal("media", _DTLS, "_role", "instance", "the DTLS role applied (tests)"),
    # --- ICE (node/ice/confine.py) ---
    Internal("ice", "aiortc.rtcicetransport", "Connection", "module", "the name aiortc builds ICE with"),
    Internal("ice", "aiortc.rtcicetransport:RTCIceGatherer", "_connection", "instance", "the aioice object"),
    Internal("ice", _CONNECTION, "get_component_candidates", "class", "gather on the overlay only"),
    Internal("ice", _CONNECTION, "gather_candidates", "class", "confine after gathering"),
    Internal("ice", _CONNECTION, "add_remote_candidate", "class", "foreign candidates never reach aioice"),
    Internal("ice", _CONNECTION, "request_received", "class", "STUN checks from the peer only"),
    Internal("ice", _CONNECTION, "_protocols", "instance", "sockets off the overlay are closed"),
    Internal("ice", _CONNECTION, "_local_candidates", "instance", "candidates off the overlay dropped"),
    Internal("ice", _CONNECTION, "_check_list", "instance", "no pair with a dropped socket"),
    Internal("ice", _CONNECTION, "_nominated", "instance", "the selected pair, for stats"),
    Internal("ice", _CONNECTION, "ice_controlling", "instance", "no role flip after nomination"),
    Internal("ice", "aioice.ice:CandidatePair", "remote_addr", "class", "checks after nomination"),
    Internal("ice", "aioice.ice:CandidatePair", "local_candidate", "class", "the selected pair"),
    Internal("ice", _CONNECTION, "_check_periodic", "class", "every check starts at once"),
    Internal("ice", _CONNECTION, "check_start_task", "class", "every check starts at once"),
    Internal("ice", _CONNECTION, "_check_list_done", "instance", "every check starts at once"),
    Internal("ice", _CONNECTION, "_remote_candidates_expected", "class", "trickle keeps polling"),
)


def _versions(part: Part) -> list[str]:
    import aioice
    import aiortc

    out = []
    if aiortc.__version__ != AIORTC_VERSION:
        out.append(f"aiortc is {aiortc.__version__}, hooks need {AIORTC_VERSION}")
    if part == "ice" and getattr(aioice, "__version__", "?") != AIOICE_VERSION:
        out.append(f"aioice is {getattr(aioice, '__version__', '?')}, hooks need {AIOICE_VERSION}")
    return out


def problems(part: Part) -> list[str]:
    """What changed upstream for `part`'s hooks (empty when everything is as pinned)."""
    found = _versions(part)
    for internal in INTERNALS:
        if internal.part != part:
            continue
        try:
            ok = internal.present()
        except Exception as e:  # an import or a constructor that changed is a change too
            ok = False
            found.append(f"{internal.where}.{internal.name} cannot be checked ({type(e).__name__})")
            continue
        if not ok:
            owner = internal.where.replace(":", ".")
            found.append(f"{owner}.{internal.name} is gone ({internal.why})")
    return found


@functools.cache
def ice_problems() -> tuple[str, ...]:
    """problems("ice"), once per process (the ICE API checks it for every node)."""
    return tuple(problems("ice"))


__all__ = ["AIOICE_VERSION", "AIORTC_VERSION", "INTERNALS", "Internal", "ice_problems", "problems"]
