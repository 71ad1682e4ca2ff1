"""Overlay-only ICE for aiortc 1.16.0 / aioice 0.13.0.

- `policy`: IcePolicy, the value saying where one call may gather and whom it accepts;
- `sdp`: pure text checks on parsed SDP fields (outgoing before signing, incoming
  before `setRemoteDescription`);
- `confine`: the aioice hook that holds aiortc to a policy, per peer connection;
- `api`: IceApi, the per-node object every peer connection comes from."""

from __future__ import annotations

from .api import IceApi
from .confine import (
    OverlayConnection,
    OverlayPeerConnection,
    ice_connections,
    install,
    overlay_configuration,
    selected_pair,
)
from .policy import IcePolicy, PrivacyError
from .sdp import (
    MalformedSdpError,
    check_outgoing_sdp,
    filter_incoming_sdp,
    sdp_addresses,
)

__all__ = [
    "IceApi",
    "IcePolicy",
    "MalformedSdpError",
    "OverlayConnection",
    "OverlayPeerConnection",
    "PrivacyError",
    "check_outgoing_sdp",
    "filter_incoming_sdp",
    "ice_connections",
    "install",
    "overlay_configuration",
    "sdp_addresses",
    "selected_pair",
]
