"""Loopback-only ICE for the bench's own aiortc peers (baselines and receivers).

aioice never gathers on 127.0.0.1 and aiortc's default ICE server is Google STUN; the
bench must send nothing off this machine, so its aiortc peers gather on 127.0.0.1 only
and use no ICE servers. (The node itself uses its overlay policy, node/ice/.)"""

from __future__ import annotations

import functools

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection


@functools.cache
def install() -> None:
    """Once per process: aioice offers only 127.0.0.1 to the bench's own peers."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def peer_connection() -> RTCPeerConnection:
    install()
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))
