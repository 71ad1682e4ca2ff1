"""The media_node role on the WireGuard, Nebula and Tailscale overlays, rendered by
Ansible itself on localhost: the unit stays unprivileged (exposure <= 2.0; only the
WireGuard export runs as root, with exactly the command the privacy harness runs before
its daemon reads the table as the service user), config.toml names the provider's
settings, and the allowlist takes each inventory peer's public overlay identity."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from node.config import parse_config
from node.overlay.nebula import NebulaProvider
from node.peers import PeerStore

from .test_roles import MEDIA, playbook

pytestmark = pytest.mark.timeout(180)
WG_KEY = "Wg" * 21 + "A="
FINGERPRINT = "ab" * 32
NODEKEY = "nodekey:" + "cd" * 32
NODE_ID = "a" * 51 + "0"


def render(
    tmp: Path,
    templates: dict[str, str],
    provider: str,
    hostvars: dict | None = None,
    play_vars: dict | None = None,
) -> None:
    """Each template -> file in tmp, for host `cam` with the role defaults and `provider`;
    host `peer` carries the facts the overlay tasks would have set on it."""
    tasks = [
        {
            "ansible.builtin.template": {
                "src": str(MEDIA / "templates" / src),
                "dest": str(tmp / dest),
                "mode": "0644",
            }
        }
        for src, dest in templates.items()
    ]
    play = {
        "hosts": "cam",
        "gather_facts": False,
        "vars_files": [str(MEDIA / "defaults/main.yml")],
        "tasks": tasks,
    }
    inventory = {
        "all": {
            "hosts": {
                "cam": {"ansible_connection": "local"},
                "peer": {"ansible_connection": "local", "media_node_id": NODE_ID, **(hostvars or {})},
            }
        }
    }
    # Extra vars: the role defaults come in as vars_files, which outrank inventory and play vars.
    extra = {"playbook_dir": "/nonexistent", "media_node_overlay_provider": provider, **(play_vars or {})}
    playbook(tmp, [play], inventory, "-e", json.dumps(extra))


def nebula_cert(*args: str) -> str:
    return subprocess.run(["nebula-cert", *args], capture_output=True, text=True, check=True).stdout


def exposure(unit: Path) -> float:
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert level, r.stdout + r.stderr
    return float(level.group(1))


def service_values(unit: Path, key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", unit.read_text(), re.M)


@pytest.mark.parametrize(
    "provider, after",
    [
        ("wireguard", "wg-quick@wg0.service"),
        ("nebula", "nebula@config.service"),
        ("tailscale", "tailscaled.service"),
    ],
)
def test_unit_stays_unprivileged_on_each_overlay(tmp_path, provider, after):
    render(tmp_path, {"media-node.service.j2": "media-node.service"}, provider)
    unit = tmp_path / "media-node.service"
    assert after in " ".join(service_values(unit, "After"))
    assert service_values(unit, "User") == ["media-node"]
    assert service_values(unit, "CapabilityBoundingSet") == [""]
    assert service_values(unit, "SupplementaryGroups") == ["video audio"], "no overlay group needed"
    assert exposure(unit) <= 2.0
    pre = service_values(unit, "ExecStartPre")
    assert bool(pre) == (provider == "wireguard"), pre


def test_wireguard_export_runs_as_root_exactly_as_tested_and_the_timer_repeats_it(tmp_path):
    render(
        tmp_path,
        {
            "media-node.service.j2": "media-node.service",
            "media-node-wireguard.service.j2": "export.service",
            "media-node-wireguard.timer.j2": "export.timer",
            "config.toml.j2": "config.toml",
        },
        "wireguard",
    )
    (pre,) = service_values(tmp_path / "media-node.service", "ExecStartPre")
    assert pre.startswith("+"), "only the export step runs with privileges"
    argv = shlex.split(pre[1:])
    assert argv[0] == "/opt/media-node/venv/bin/media-node"
    assert argv[1:] == [
        "wireguard",
        "export",
        "wg0",
        "--to",
        "/run/media-node-wireguard/wg0.peers",
        "--group",
        "media-node",
    ]
    assert service_values(tmp_path / "export.service", "ExecStart") == [pre[1:]]
    assert service_values(tmp_path / "export.timer", "OnUnitActiveSec") == ["1min"]
    overlay = parse_config(tomllib.loads((tmp_path / "config.toml").read_text())).overlay
    assert overlay.provider == "wireguard" and overlay.wireguard_peers == argv[5]


@pytest.mark.parametrize(
    "provider, facts, field, value",
    [
        ("wireguard", {"media_node_wireguard_key": WG_KEY}, "wireguard_key", WG_KEY),
        ("nebula", {"media_node_nebula_fingerprint": FINGERPRINT}, "nebula_cert", FINGERPRINT),
        ("tailscale", {"media_node_tailscale_node": NODEKEY}, "tailscale_node", NODEKEY),
    ],
)
def test_allowlist_and_config_take_each_overlay(tmp_path, provider, facts, field, value):
    peers = [{"name": "door", "host": "peer", "allow": ["view"]}]
    render(
        tmp_path,
        {"peers.toml.j2": "peers.toml", "config.toml.j2": "config.toml"},
        provider,
        facts,
        {"media_node_peers": peers},
    )
    door = PeerStore(tmp_path / "peers.toml").load()["door"]
    assert getattr(door, field) == value and door.node_id == NODE_ID, door
    overlay = parse_config(tomllib.loads((tmp_path / "config.toml").read_text())).overlay
    assert overlay.provider == provider
    expected = {
        "wireguard": ("wireguard_interface", "wg0"),
        "nebula": ("nebula_config", "/etc/nebula/config.yml"),
        "tailscale": ("tailscale_socket", "/var/run/tailscale/tailscaled.sock"),
    }[provider]
    assert getattr(overlay, expected[0]) == expected[1]


def test_nebula_tasks_share_certificates_and_name_peers_by_fingerprint(tmp_path):
    """The role's overlay tasks, run for real on localhost for two hosts with Debian's
    nebula-cert: each host's certificate (public) lands in the other's peer directory,
    the allowlist names it by fingerprint, and the provider then verifies it."""
    ca, ca_key = tmp_path / "ca.crt", tmp_path / "ca.key"
    nebula_cert("ca", "-name", "fleet", "-duration", "1h", "-out-crt", str(ca), "-out-key", str(ca_key))
    hosts = {}
    for name, ip in (("cam", "10.97.0.21/24"), ("door", "10.97.0.22/24")):
        d = tmp_path / name
        d.mkdir()
        crt, key = d / "host.crt", d / "host.key"
        nebula_cert("sign", "-ca-crt", str(ca), "-ca-key", str(ca_key), "-name", name, "-ip", ip,
                    "-out-crt", str(crt), "-out-key", str(key))  # fmt: skip
        pki = {"ca": str(ca), "cert": str(crt), "key": str(key)}
        (d / "config.yml").write_text(yaml.safe_dump({"pki": pki, "tun": {"dev": "nebula1"}}))
        hosts[name] = {"dir": d}
    role = tmp_path / "roles/overlay"
    (role / "tasks").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "defaults/main.yml").symlink_to(MEDIA / "defaults/main.yml")
    (role / "tasks/main.yml").symlink_to(MEDIA / "tasks/overlay-nebula.yml")
    inventory = {
        "all": {
            "hosts": {
                name: {
                    "ansible_connection": "local",
                    "media_node_overlay_provider": "nebula",
                    "media_node_nebula_config": str(h["dir"] / "config.yml"),
                    "media_node_nebula_certs": str(h["dir"] / "certs"),
                    "allowlist": str(h["dir"] / "peers.toml"),
                    "media_node_group": "root",
                    "media_node_id": NODE_ID,
                    "media_node_peers": [{"name": other, "host": other, "allow": ["view"]}],
                }
                for name, h, other in (("cam", hosts["cam"], "door"), ("door", hosts["door"], "cam"))
            }
        }
    }
    render_allowlist = {
        "ansible.builtin.template": {
            "src": str(MEDIA / "templates/peers.toml.j2"),
            "dest": "{{ allowlist }}",
            "mode": "0644",
        }
    }
    play = {"hosts": "all", "gather_facts": False, "roles": [str(role)], "post_tasks": [render_allowlist]}
    playbook(tmp_path, [play], inventory)
    cam = hosts["cam"]
    door_cert = cam["dir"] / "certs/door.crt"
    assert door_cert.read_text() == (hosts["door"]["dir"] / "host.crt").read_text()
    door = PeerStore(cam["dir"] / "peers.toml").load()["door"]
    fingerprint = json.loads(nebula_cert("print", "-json", "-path", str(door_cert)))["fingerprint"]
    assert door.nebula_cert == fingerprint
    assert oct((cam["dir"] / "config.yml").stat().st_mode & 0o777) == "0o640"
    provider = NebulaProvider(str(cam["dir"] / "config.yml"), str(cam["dir"] / "certs"))
    assert asyncio.run(provider.resolve(door)) == "10.97.0.22"
