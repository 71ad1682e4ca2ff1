"""The systemd unit the media_node role installs: rendered by Ansible's own template
module from the role defaults, then scored by `systemd-analyze security --offline=true`."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[2] / "deploy/ansible/roles/media_node"


@pytest.fixture(scope="module")
def unit(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unit") / "media-node.service"
    r = subprocess.run(
        [
            "ansible",
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "ansible.builtin.template",
            "-a",
            f"src={ROLE}/templates/media-node.service.j2 dest={out}",
            "-e",
            f"@{ROLE}/defaults/main.yml",
            "-e",
            "playbook_dir=/nonexistent",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_HOME": str(out.parent / "ansible"),
        },
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def service_section(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_unit_is_notify_with_watchdog_restart_and_a_dedicated_user(unit):
    s = service_section(unit)
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == ["30"] and s["Restart"] == ["on-failure"]
    assert s["User"] == ["media-node"] and s["Group"] == ["media-node"]
    assert s["SupplementaryGroups"] == ["video audio"], "only the device groups it needs"
    assert s["ExecStart"] == ["/opt/media-node/venv/bin/media-node run --home /var/lib/media-node"]
    assert s["StateDirectory"] == ["media-node"] and s["StateDirectoryMode"] == ["0700"]
    assert s["CapabilityBoundingSet"] == [""] and s["DevicePolicy"] == ["closed"]
    configparser.ConfigParser(strict=False, interpolation=None).read_string(
        unit.read_text().replace("%", "%%")
    )  # well-formed ini


def test_unit_exposure_is_at_most_3(unit):
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert level, r.stdout + r.stderr
    assert float(level.group(1)) <= 3.0, r.stdout
