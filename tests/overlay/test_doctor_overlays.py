"""`media-node doctor` on the new overlays: the provider's own check (interface up,
table or socket readable) and every allowlisted peer resolvable, each with a fix.
Tailscale through the local-API stand-in; WireGuard's real interface is checked as the
service user in the privacy harness."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from node.config import parse_config
from node.doctor import Doctor
from node.profiles import Machine

from .tailscale_standin import CAM_KEY, SELF_IP, LocalApiStandIn

pytestmark = pytest.mark.timeout(60)


def checks(node, overlay: dict) -> dict:
    config = parse_config({"overlay": overlay, "media": {"video": "testsrc", "audio": "none"}})
    report = Doctor(node.home, config, Machine.probe(), timeout=3).run()
    return {c.name: c for c in report.checks}


def test_tailscale_up_and_each_peer_resolvable(make_node):
    d = Path(tempfile.mkdtemp(prefix="mnts"))
    try:
        with LocalApiStandIn(d / "ts.sock") as api:
            cam, phone, stranger = make_node("cam"), make_node("phone"), make_node("stranger")
            cam.trust(phone, tailscale_node=CAM_KEY)
            c = checks(cam, {"provider": "tailscale", "tailscale_socket": str(api.path)})
            assert c["overlay"].status == "ok" and SELF_IP in c["overlay"].detail
            assert c["overlay peers"].status == "ok", c["overlay peers"]
            cam.trust(stranger, tailscale_node="nodekey:" + "ee" * 32)
            c = checks(cam, {"provider": "tailscale", "tailscale_socket": str(api.path)})
            peers = c["overlay peers"]
            assert peers.status == "missing" and not peers.required
            assert "peer 'stranger': tailscaled knows no peer" in peers.detail and "--replace" in peers.fix
        c = checks(cam, {"provider": "tailscale", "tailscale_socket": str(api.path)})
        assert c["overlay"].status == "missing" and "tailscale up" in c["overlay"].fix
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_wireguard_without_interface_or_table_names_the_export(make_node, tmp_path):
    cam = make_node("cam")
    c = checks(cam, {"provider": "wireguard", "wireguard_interface": "mnwg-none"})
    assert c["overlay"].status == "missing" and "does not exist" in c["overlay"].detail
    assert "media-node wireguard export mnwg-none" in c["overlay"].fix


def test_nebula_without_a_readable_config_says_so(make_node, tmp_path):
    cam = make_node("cam")
    c = checks(cam, {"provider": "nebula", "nebula_config": str(tmp_path / "none.yml")})
    assert c["overlay"].status == "missing" and "none.yml" in c["overlay"].detail
    assert "must read that config" in c["overlay"].fix
