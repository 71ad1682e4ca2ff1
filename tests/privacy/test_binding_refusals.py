"""A peer whose overlay binding does not match is refused before any packet is sent, with
a reason: the viewer (`media-node view` in namespace B, through the CLI) names the camera
by a WireGuard key or Nebula certificate that does not bind it, and the capture on every
interface of both namespaces shows that nothing left either node (only the overlays'
own idle traffic may appear), and no link reached the camera's inbox."""

from __future__ import annotations

import pytest

from .callrig import CallRig, media_node
from .netlab import Capture
from .overlays import wg_keypair
from .pcap import UDP, tally

pytestmark = pytest.mark.timeout(120)


def refused(lab, rig: CallRig, tmp_path) -> tuple[str, list]:
    captures = {side: Capture(lab.ns[side], tmp_path / f"{side}.pcap").start() for side in "ab"}
    try:
        viewer = rig.run_viewer(seconds=1, timeout=60)
    finally:
        packets = [p for c in captures.values() for p in c.stop()]
    assert viewer.returncode != 0, f"the view went ahead:\n{viewer.stdout}\n{viewer.stderr}"
    inbox = [p.name for p in rig.homes["a"].inbox.iterdir()] if rig.homes["a"].inbox.exists() else []
    assert not inbox, f"a link reached the camera: {inbox}"
    overlay = [p for p in packets if p.interface == rig.overlay_interface and p.proto == UDP]
    assert not overlay, f"packets on {rig.overlay_interface}: {tally(packets)}"
    node_udp = [p for p in packets if p.proto == UDP and p.interface != "lan0"]
    assert not node_udp, f"UDP sent: {[str(p) for p in node_udp]}"
    return viewer.stderr, packets


@pytest.mark.parametrize(
    "case, reason",
    [
        ("unknown-key", "is not a peer of wg0"),
        ("hub-key", "no single-host allowed IP"),
    ],
)
def test_wireguard_key_that_does_not_bind_the_camera_is_refused(lab, tmp_path, case, reason):
    for side in "ab":
        assert lab.wg[side].export(media_node()).returncode == 0
    rig = CallRig(lab, tmp_path, "wireguard")
    key = wg_keypair()[1] if case == "unknown-key" else lab.wg_hub_key
    rig.trust("b", "a", "camera", "view", wireguard_key=key)
    stderr, _ = refused(lab, rig, tmp_path)
    assert reason in stderr, stderr
    print(stderr)


def test_nebula_certificate_from_another_ca_is_refused(lab, tmp_path):
    rig = CallRig(lab, tmp_path, "nebula")
    # The rogue certificate carries the camera's name and address, but another CA signed it.
    rig.trust("b", "a", "camera", "view", nebula_cert=lab.nebula_rogue.fingerprint)
    stderr, _ = refused(lab, rig, tmp_path)
    assert "is not trusted by this node's Nebula CA" in stderr, stderr
    print(stderr)


def test_camera_refuses_a_viewer_whose_certificate_it_cannot_verify(lab, tmp_path):
    """The other direction, through the daemon: the camera's allowlist names the viewer
    by the rogue certificate; its answer is a signed refusal, and no media packet flows."""
    rig = CallRig(lab, tmp_path, "nebula")
    rig.trust("a", "b", "viewer", "view", nebula_cert=lab.nebula_rogue.fingerprint)
    captures = {side: Capture(lab.ns[side], tmp_path / f"{side}.pcap").start() for side in "ab"}
    try:
        result = rig.view(seconds=1, timeout=60)
    finally:
        packets = [p for c in captures.values() for p in c.stop()]
    assert result.daemon_ready, result.daemon_log[-2000:]
    assert result.returncode != 0, result.stdout
    assert "unavailable" in result.stderr, result.stderr
    assert "is not trusted by this node's Nebula CA" in result.daemon_log, result.daemon_log[-2000:]
    assert "error" in sorted(link.claims.kind for link in result.links)
    media = [p for p in packets if p.interface == "nebula1" and p.proto == UDP]
    assert not media, f"packets on nebula1: {tally(packets)}"
