"""The per-node ICE API: one immutable object from which every peer connection of a
node comes (like pion's API built from a SettingEngine).

It holds what is the same for all of a node's calls (its overlay provider) and turns a
call's two addresses into that call's IcePolicy. Two nodes on different overlays are
two IceApi objects: nothing is global but the aioice hook, whose behaviour is per call."""

from __future__ import annotations

from dataclasses import dataclass

from .. import internals
from ..overlay import OverlayProvider
from .confine import OverlayPeerConnection
from .policy import IcePolicy, PrivacyError


@dataclass(frozen=True)
class IceApi:
    provider: OverlayProvider

    def __post_init__(self) -> None:
        # Fail closed, loudly: with an aioice/aiortc that moved what confine.py hooks,
        # the confinement could silently stop working, so no call is placed at all.
        changed = internals.ice_problems()
        if changed:
            raise PrivacyError("aioice/aiortc internals changed (no call is placed): " + "; ".join(changed))

    def policy(self, local: str, remote: str, *, label: str = "") -> IcePolicy:
        """The policy of one call between `local` (this node's overlay address) and
        `remote` (the peer's, as resolved here). The provider must vouch for both."""
        if not (self.provider.is_overlay(local) and self.provider.is_overlay(remote)):
            raise PrivacyError(f"the {self.provider.name} overlay does not vouch for this call's addresses")
        return IcePolicy.make(
            [local],
            [remote],
            rewrite_remote=self.provider.node_local_addresses,
            label=label,
        )

    def peer_connection(self, policy: IcePolicy, *, answering: bool = False) -> OverlayPeerConnection:
        """A peer connection confined to `policy` (iceServers=[], SDP checked). It bundles
        everything when offering; `answering`, it bundles only what the offer bundles."""
        return OverlayPeerConnection(policy, answering=answering)


__all__ = ["IceApi"]
