"""The browser leg's ICE policy: this host only.

The page talks WebRTC to the local node, never to the camera. That leg is bound to this
host's own addresses (loopback and every address on this machine's interfaces): the node
gathers only on them and accepts the browser's candidates and checks only from them, so
the kernel delivers every packet locally and none leaves the machine. Its SDP is never
signed, never written to a transport: it goes to the page over the loopback HTTP server.

Browsers often hide their host address behind an mDNS name (`<uuid>.local`; Firefox
always does). Such a name is never resolved: a `.local` candidate is replaced by one
candidate per own address with the same port — if the browser is on this host, one of
them is its socket; if it is not, none answers.

Enforcement is the overlay leg's own machinery (node.ice: a per-call IcePolicy confining
aioice, outgoing SDP checked before it is handed out, incoming SDP filtered), with both
ends set to this host's addresses: fail closed the same way."""

from __future__ import annotations

import ipaddress
import logging

import ifaddr

from ..ice import IcePolicy, PrivacyError
from ..ice.sdp import SdpCandidate, split_lines

log = logging.getLogger(__name__)


def own_addresses() -> list[str]:
    """Every unicast address on this host's interfaces (no IPv6 link-local: those need
    a zone), loopback first. Read fresh per session: interfaces come and go."""
    found: list[str] = ["127.0.0.1"]
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                continue
            zoned = addr.version == 6 and addr.is_link_local
            if zoned or addr.is_multicast or addr.is_unspecified:
                continue
            if str(addr) not in found:
                found.append(str(addr))
    return found


def host_policy(addresses: list[str] | None = None) -> IcePolicy:
    """Gather on, and accept only, this host's own addresses (the browser leg)."""
    own = addresses if addresses is not None else own_addresses()
    return IcePolicy.make(own, own, label="browser (this host only)")


def map_mdns_candidates(sdp: str, policy: IcePolicy) -> str:
    """The browser's SDP with each `.local` host candidate replaced by one candidate per
    own address (the name hides the family), same port. Nothing is resolved; every
    other candidate is left for filter_incoming_sdp to keep or drop."""
    out: list[str] = []
    mapped = 0
    for line in split_lines(sdp, "browser SDP"):
        if line.startswith("a=candidate:"):
            try:
                parsed = SdpCandidate.parse(line)
            except PrivacyError:
                continue
            cand = parsed.candidate
            if cand.type == "host" and cand.host.lower().endswith(".local"):
                for i, ip in enumerate(policy.local):
                    cand.host = str(ip)
                    cand.foundation = f"{cand.foundation[:24]}m{i}"
                    out.append(parsed.line())
                mapped += 1
                continue
        out.append(line)
    if mapped:
        log.debug("browser leg: %d mDNS candidate(s) mapped onto this host's addresses", mapped)
    return "\r\n".join(out) + "\r\n"


__all__ = ["host_policy", "map_mdns_candidates", "own_addresses"]
