"""The Tailscale provider against a stand-in of tailscaled's local API (a unix socket
serving the documented /localapi/v0/status JSON; see tailscale_standin.py: tailscaled
cannot join a tailnet here). Own address and peers come from that status only, by node
key or stable id; MagicDNS names and underlay endpoints are never used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import tomli_w
from conftest import require_root

from node.config import OverlaySection
from node.overlay import OverlayError, make_provider
from node.overlay.tailscale import TailscaleProvider
from node.peers import make_peer

from .tailscale_standin import CAM_IP, CAM_KEY, ODD_KEY, SELF_IP, UNDERLAY, LocalApiStandIn

pytestmark = pytest.mark.timeout(60)
NODE_ID = "a" * 51 + "0"


def peer(**binding: str):
    return make_peer("phone", NODE_ID, "view", **binding)


@pytest.fixture
def standin():
    # Short path (sun_path is 108 bytes), reachable by another user for the service-user test.
    d = Path(tempfile.mkdtemp(prefix="mnts"))
    d.chmod(0o755)
    with LocalApiStandIn(d / "tailscaled.sock") as api:
        yield api
    shutil.rmtree(d, ignore_errors=True)


async def test_own_address_and_peer_by_node_key_or_stable_id(standin):
    provider = make_provider(OverlaySection(provider="tailscale", tailscale_socket=str(standin.path)))
    assert isinstance(provider, TailscaleProvider)
    assert await provider.local_address() == SELF_IP
    assert await provider.resolve(peer(tailscale_node=CAM_KEY)) == CAM_IP
    assert await provider.resolve(peer(tailscale_node="nCam2CNTRL")) == CAM_IP
    assert provider.is_overlay(SELF_IP) and provider.is_overlay(CAM_IP)
    # In Tailscale's range but not a node this provider resolved: not vouched for.
    assert not provider.is_overlay("100.64.0.8")
    assert not provider.is_overlay("100.100.100.100")
    path, host, headers = standin.requests[0]
    assert path == "/localapi/v0/status" and host == "local-tailscaled.sock"
    assert "Origin" not in headers and "Referer" not in headers


async def test_peer_not_in_the_status_is_refused_with_a_reason(standin):
    provider = TailscaleProvider(str(standin.path))
    with pytest.raises(OverlayError, match="knows no peer with node key"):
        await provider.resolve(peer(tailscale_node="nodekey:" + "ff" * 32))
    with pytest.raises(OverlayError, match="knows no peer with node stable_id"):
        await provider.resolve(peer(tailscale_node="nWrongCNTRL"))
    with pytest.raises(OverlayError, match="no tailscale_node in the allowlist"):
        await provider.resolve(peer(address="100.64.0.7"))


async def test_addresses_outside_tailscales_ranges_are_never_taken(standin):
    provider = TailscaleProvider(str(standin.path))
    with pytest.raises(OverlayError, match="no Tailscale address"):
        await provider.resolve(peer(tailscale_node=ODD_KEY))


async def test_never_a_magicdns_name_or_an_underlay_endpoint(standin):
    provider = TailscaleProvider(str(standin.path))
    standin.status["Peer"][CAM_KEY]["TailscaleIPs"] = ["phone.tail1234.ts.net", *UNDERLAY]
    with pytest.raises(OverlayError) as refused:
        await provider.resolve(peer(tailscale_node=CAM_KEY))
    assert not any(u.split(":")[0] in str(refused.value) for u in UNDERLAY)


async def test_a_stopped_tailscaled_means_no_overlay(standin):
    standin.status["BackendState"] = "NeedsLogin"
    with pytest.raises(OverlayError, match="NeedsLogin"):
        await TailscaleProvider(str(standin.path)).local_address()


async def test_no_socket_says_so(tmp_path):
    with pytest.raises(OverlayError, match="is tailscaled running"):
        await TailscaleProvider(str(tmp_path / "none.sock")).local_address()


def test_the_service_user_reads_the_status_and_nothing_else(standin):
    """As the unit runs it: another uid, no capabilities, no groups. tailscaled's socket
    is srw-rw-rw- (its API decides what a non-root caller may do; status is read-only)."""
    require_root("running the provider as the service user (setpriv)")
    code = (
        "import asyncio, json; from node.overlay.tailscale import TailscaleProvider; "
        "from node.peers import make_peer; "
        f"p = TailscaleProvider({str(standin.path)!r}); "
        f"peer = make_peer('phone', {NODE_ID!r}, 'view', tailscale_node={CAM_KEY!r}); "
        "print(json.dumps([asyncio.run(p.local_address()), asyncio.run(p.resolve(peer))]))"
    )
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--bounding-set=-all"]
    argv += ["--inh-caps=-all", "--no-new-privs", "--", sys.executable, "-c", code]
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo), HOME="/nonexistent")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [SELF_IP, CAM_IP]
    # With the socket closed to others, the same user is refused with a reason.
    standin.path.chmod(0o600)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)
    assert out.returncode != 0 and "permission denied" in out.stderr.lower()


def test_view_with_a_wrong_node_key_is_refused_before_anything_is_sent(standin, make_node):
    """Through the CLI: the viewer's allowlist names a node key tailscaled does not know
    for the camera, so `media-node view` stops at resolution: no link is written."""
    camera, viewer = make_node("camera"), make_node("viewer")
    viewer.trust(camera, tailscale_node="nodekey:" + "ee" * 32)
    config = tomllib.loads(viewer.home.config_file.read_text())
    config["overlay"].update(provider="tailscale", tailscale_socket=str(standin.path))
    viewer.home.config_file.write_text(tomli_w.dumps(config))
    argv = [sys.executable, "-m", "node.cli", "view", "camera", "--home", str(viewer.home.path)]
    argv += ["--via", f"file:{camera.home.path}", "--seconds", "1", "--json"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0
    assert "tailscaled knows no peer with node key" in out.stderr, out.stderr
    assert not camera.home.inbox.exists() or not list(camera.home.inbox.iterdir())
