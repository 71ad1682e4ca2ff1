"""Text-level SDP checks on parsed fields, never substrings.

`check_outgoing_sdp` runs before a link is signed, `filter_incoming_sdp` before
`setRemoteDescription`. Lines are split the way aiortc splits them, and an SDP with any
other control character or non-ASCII is refused (MalformedSdpError), so no line can hide
from a check. Pure functions of (SDP text, IcePolicy): nothing here touches aiortc."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from aioice.candidate import Candidate

from .policy import IcePolicy, PrivacyError, literal_ip

log = logging.getLogger(__name__)


@dataclass
class SdpCandidate:
    """One `a=candidate:` line, parsed by aioice's own parser."""

    candidate: Candidate

    @classmethod
    def parse(cls, line: str) -> SdpCandidate:
        value = line[len("a=candidate:") :]
        bits = value.split()
        if len(bits) < 8 or bits[6] != "typ":
            raise PrivacyError("malformed candidate line")
        try:
            return cls(Candidate.from_sdp(value))
        except (ValueError, IndexError, KeyError) as e:
            raise PrivacyError(f"unparseable candidate line ({type(e).__name__})") from None

    def line(self) -> str:
        return "a=candidate:" + self.candidate.to_sdp()


class MalformedSdpError(PrivacyError):
    """An SDP with characters that would let two parsers see different lines: refused.
    Not the node's privacy check failing but the peer's input: the calls turn it into
    `bad-offer`; anywhere else it is sent as `unavailable` (no reason of its own)."""

    REASONS: ClassVar[Mapping[str, str]] = {}
    default_reason = "malformed-sdp"


def _split_lines(sdp: str, what: str = "SDP") -> list[str]:
    """The SDP's lines exactly as aiortc sees them (it parses with str.splitlines(),
    which also breaks on a bare CR, VT, FF, \\x1c-\\x1e, NEL, U+2028...). Anything but
    printable ASCII and CRLF/LF line ends is refused, so no line can hide from a check."""
    if not sdp.isascii():
        raise MalformedSdpError(f"{what} contains non-ASCII characters")
    for i, ch in enumerate(sdp):
        if ch == "\n" or ("\x20" <= ch < "\x7f"):
            continue
        if ch == "\r" and sdp[i + 1 : i + 2] == "\n":
            continue
        raise MalformedSdpError(
            f"{what} contains a control character ({ord(ch):#04x}) outside a CRLF/LF line end"
        )
    return [line for line in sdp.splitlines() if line != ""]


def _join_lines(lines: list[str]) -> str:
    return "\r\n".join(lines) + "\r\n"


def _connection_address(value: str) -> tuple[str, str, str]:
    """`IN IP4 1.2.3.4` (c=, and the tail of a=rtcp) -> (nettype, addrtype, address)."""
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise PrivacyError(f"unexpected connection data {value!r}")
    # a c= address may carry /ttl or /count suffixes (multicast only): refuse them.
    return parts[0], parts[1], parts[2]


def _is_unspecified(address: str) -> bool:
    ip = literal_ip(address)
    return ip is not None and ip.is_unspecified


def check_outgoing_sdp(sdp: str, policy: IcePolicy) -> None:
    """Raise PrivacyError unless every address in the SDP is this node's overlay
    address: `c=`, `a=candidate` (typ host, udp, no raddr), `a=rtcp`, `o=`; `m=` ports
    must be a gathered candidate's port (or the discard port 9 / 0). The unspecified
    address (0.0.0.0, ::) is allowed in `o=`/`a=rtcp` only: it names no host."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise PrivacyError("outgoing SDP is empty")
    candidates = 0
    ports: set[int] = set()
    m_ports: list[int] = []
    for line in _split_lines(sdp, "outgoing SDP"):
        key, _, value = line.partition("=")
        if key == "c":
            _, _, address = _connection_address(value)
            if not policy.is_local(address):
                raise PrivacyError(
                    "outgoing SDP: c= line is not this node's overlay address (refusing to sign it)"
                )
        elif key == "o":
            parts = value.split()
            if len(parts) != 6:
                raise PrivacyError("outgoing SDP: malformed o= line")
            address = parts[5]
            if not (_is_unspecified(address) or policy.is_local(address)):
                raise PrivacyError("outgoing SDP: o= line names a non-overlay address")
        elif key == "m":
            parts = value.split()
            if len(parts) < 3 or not parts[1].split("/")[0].isdigit():
                raise PrivacyError("outgoing SDP: malformed m= line")
            m_ports.append(int(parts[1].split("/")[0]))
        elif key == "a" and value.startswith("candidate:"):
            c = SdpCandidate.parse(line).candidate
            if c.type != "host":
                raise PrivacyError(f"outgoing SDP: a {c.type} candidate (only typ host is allowed)")
            if c.transport.lower() != "udp":
                raise PrivacyError("outgoing SDP: a non-UDP candidate")
            if c.related_address is not None or c.related_port is not None:
                raise PrivacyError("outgoing SDP: a candidate with raddr/rport")
            if not policy.is_local(c.host):
                raise PrivacyError(
                    "outgoing SDP: a candidate that is not on this node's overlay "
                    "address (refusing to sign it)"
                )
            candidates += 1
            ports.add(int(c.port))
        elif key == "a" and value.startswith("rtcp:"):
            parts = value[len("rtcp:") :].split(None, 1)
            if not parts or not parts[0].isdigit():
                raise PrivacyError("outgoing SDP: malformed a=rtcp line")
            if len(parts) == 2:
                _, _, address = _connection_address(parts[1])
                if not (_is_unspecified(address) or policy.is_local(address)):
                    raise PrivacyError("outgoing SDP: a=rtcp names a non-overlay address")
    if candidates == 0:
        raise PrivacyError(
            "outgoing SDP has no candidate on the overlay address (is the overlay address on this machine?)"
        )
    for port in m_ports:
        if port not in ports and port not in (0, 9):
            raise PrivacyError("outgoing SDP: an m= port that no overlay candidate owns")


def filter_incoming_sdp(sdp: str, policy: IcePolicy, *, reported: str = "") -> str:
    """The SDP with only candidates on the peer's locally resolved overlay address.

    Dropped: `.local` names, srflx/relay/prflx, non-UDP, and every other address.
    With `policy.rewrite_remote` (a provider whose addresses are node-local), a host
    candidate on `reported` (the address the peer says it has, node-local to it) gets the
    locally resolved address instead — the candidate's address field is replaced after
    parsing, never by text substitution.
    Raises PrivacyError when no candidate is left (the call could never connect)."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise PrivacyError("incoming SDP is empty")
    reported_ip = literal_ip(reported) if reported else None
    target = policy.remote[0]
    out: list[str] = []
    kept = dropped = 0
    for line in _split_lines(sdp, "incoming SDP"):
        if line.startswith("a=candidate:"):
            try:
                c = SdpCandidate.parse(line)
            except PrivacyError:
                dropped += 1
                continue
            cand = c.candidate
            host_ip = literal_ip(cand.host)
            if cand.type != "host" or cand.transport.lower() != "udp" or host_ip is None:
                dropped += 1
                continue
            if host_ip in policy.remote:
                pass
            elif (
                policy.rewrite_remote
                and reported_ip is not None
                and host_ip == reported_ip
                and host_ip.version == target.version
            ):
                cand.host = str(target)
            else:
                dropped += 1
                continue
            cand.related_address = None
            cand.related_port = None
            out.append(c.line())
            kept += 1
        elif line.startswith("c=") and policy.rewrite_remote and reported_ip is not None:
            nettype, addrtype, address = _connection_address(line[2:])
            if literal_ip(address) == reported_ip and reported_ip.version == target.version:
                address = str(target)
            out.append(f"c={nettype} {addrtype} {address}")
        else:
            out.append(line)
    if dropped:
        log.info(
            "ICE: dropped %d incoming candidate(s) outside the overlay policy%s",
            dropped,
            f" ({policy.label})" if policy.label else "",
        )
    if kept == 0:
        raise PrivacyError(
            "the peer's SDP has no candidate on its overlay address as this node "
            "resolves it (check the peer's overlay binding in peers.toml)"
        )
    return _join_lines(out)


def sdp_addresses(sdp: str) -> dict[str, list[str]]:
    """Addresses an SDP names, by kind (tests and the privacy harness)."""
    found: dict[str, list[str]] = {"c": [], "candidate": [], "rtcp": []}
    for line in _split_lines(sdp):
        if line.startswith("c="):
            found["c"].append(_connection_address(line[2:])[2])
        elif line.startswith("a=candidate:"):
            found["candidate"].append(SdpCandidate.parse(line).candidate.host)
        elif line.startswith("a=rtcp:"):
            parts = line[len("a=rtcp:") :].split(None, 1)
            if len(parts) == 2:
                found["rtcp"].append(_connection_address(parts[1])[2])
    return found


split_lines = _split_lines  # for other SDP rewriters (the web viewer's browser leg)

__all__ = [
    "MalformedSdpError",
    "SdpCandidate",
    "check_outgoing_sdp",
    "filter_incoming_sdp",
    "sdp_addresses",
    "split_lines",
]
