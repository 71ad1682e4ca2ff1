"""Role details checked by running Ansible itself on localhost (no devices): the unit's
groups with the Yggdrasil overlay, the admin socket both roles agree on, the broker
certificate's default names, and the config.txt block across a profile change."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[2] / "deploy/ansible/roles"
MEDIA = ROLES / "media_node"


def ansible_env(tmp: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_HOME": str(tmp / "ansible-home"),
    }


def playbook(tmp: Path, plays: list, inventory: dict | None = None, *extra: str) -> str:
    (tmp / "pb.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    inv = ["-i", "localhost,"]
    if inventory is not None:
        (tmp / "inv.yml").write_text(yaml.safe_dump(inventory))
        inv = ["-i", str(tmp / "inv.yml")]
    r = subprocess.run(
        ["ansible-playbook", *inv, "-c", "local", str(tmp / "pb.yml"), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=ansible_env(tmp),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_yggdrasil_admin_socket_is_where_debians_unit_lets_it_bind():
    ygg = yaml.safe_load((ROLES / "yggdrasil/defaults/main.yml").read_text())["yggdrasil_admin_listen"]
    node = yaml.safe_load((MEDIA / "defaults/main.yml").read_text())["media_node_yggdrasil_admin"]
    assert ygg == node, "the node must ask the socket yggdrasil listens on"
    # Debian's yggdrasil.service: User=yggdrasil, ProtectSystem=strict, RuntimeDirectory=yggdrasil
    assert ygg.startswith("unix:///run/yggdrasil/"), ygg


def render_unit(tmp: Path, provider: str, *extra_vars: str) -> Path:
    out = tmp / f"{provider}.service"
    playbook(
        tmp,
        [
            {
                "hosts": "localhost",
                "gather_facts": False,
                "vars_files": [str(MEDIA / "defaults/main.yml")],
                "tasks": [
                    {
                        "ansible.builtin.template": {
                            "src": str(MEDIA / "templates/media-node.service.j2"),
                            "dest": str(out),
                            "mode": "0644",
                        }
                    }
                ],
            }
        ],
        None,
        "-e",
        "playbook_dir=/nonexistent",
        "-e",
        f"media_node_overlay_provider={provider}",
        *(arg for var in extra_vars for arg in ("-e", var)),
    )
    return out


def groups_of(unit: Path) -> str:
    return re.search(r"^SupplementaryGroups=(.*)$", unit.read_text(), re.M).group(1)


def test_unit_joins_group_yggdrasil_only_with_that_overlay(tmp_path):
    assert groups_of(render_unit(tmp_path, "static")) == "video audio"
    unit = render_unit(tmp_path, "yggdrasil")
    assert groups_of(unit) == "video audio yggdrasil", "the admin socket is srw-rw---- yggdrasil:yggdrasil"
    assert re.search(r"^After=.*yggdrasil\.service", unit.read_text(), re.M)
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert level and float(level.group(1)) <= 3.0, r.stdout + r.stderr


def test_user_task_uses_the_same_groups_as_the_unit():
    tasks = yaml.safe_load((MEDIA / "tasks/node.yml").read_text())
    user = next(t["ansible.builtin.user"] for t in tasks if "ansible.builtin.user" in t)
    assert user["groups"] == "{{ media_node_supplementary_groups }}"


def test_broker_certificate_names_default_to_ips(tmp_path):
    # A role with the broker role's defaults (lowest precedence, as in the real play), so
    # inventory host vars override them.
    role = tmp_path / "roles/broker_names"
    (role / "defaults").mkdir(parents=True)
    (role / "tasks").mkdir()
    (role / "defaults/main.yml").symlink_to(ROLES / "mqtt_broker/defaults/main.yml")
    (role / "tasks/main.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "ansible.builtin.copy": {
                        "content": "{{ mqtt_broker_tls_names | to_json }}",
                        "dest": str(tmp_path / "names.json"),
                        "mode": "0644",
                    }
                }
            ]
        )
    )
    play = {"hosts": "mqtt_broker", "gather_facts": False, "roles": [str(role)]}
    inventory = {
        "all": {
            "children": {
                "media_nodes": {"hosts": {"n1": {"media_node_mqtt_host": "10.0.0.5"}, "n2": {}}},
                "mqtt_broker": {
                    "hosts": {
                        "localhost": {"ansible_connection": "local", "ansible_host": "broker.example.org"}
                    }
                },
            }
        }
    }
    playbook(tmp_path, [play], inventory)
    assert (tmp_path / "names.json").read_text() == '["10.0.0.5"]', "the IP the nodes use, no DNS name"
    inventory["all"]["children"]["mqtt_broker"]["hosts"]["localhost"]["mqtt_broker_bind_address"] = "200:1::2"
    playbook(tmp_path, [play], inventory)
    assert (tmp_path / "names.json").read_text() == '["200:1::2", "10.0.0.5"]'


def test_profile_change_leaves_one_config_txt_block(tmp_path):
    tasks = yaml.safe_load((MEDIA / "tasks/profile.yml").read_text())
    ours = [t for t in tasks if "config.txt" in t["name"] and "ansible.builtin.stat" not in t]
    assert len(ours) == 2, [t["name"] for t in ours]
    boot = tmp_path / "config.txt"
    # a block as an older role version wrote it (profile name in the marker)
    boot.write_text(
        "dtparam=audio=on\n# BEGIN media-node pi3 (managed by Ansible)\n[all]\nold=1\n"
        "# END media-node pi3 (managed by Ansible)\n"
    )

    def apply(name: str, config_txt: str) -> None:
        playbook(
            tmp_path,
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {
                        "media_node_boot_config": str(boot),
                        "media_node_config_txt_extra": [],
                        "media_node_boot_config_stat": {"stat": {"exists": True}},
                        "media_node_board": {"name": name, "pi": True, "config_txt": config_txt},
                    },
                    "tasks": ours,
                    "handlers": [
                        {"name": "Reboot for config.txt", "ansible.builtin.debug": {"msg": "reboot"}}
                    ],
                }
            ],
        )

    apply("pi4", "[all]\npi4=1")
    apply("pi5", "[all]\npi5=1")
    text = boot.read_text()
    assert text.startswith("dtparam=audio=on\n"), "the operator's lines stay"
    assert text.count("# BEGIN media-node") == 1 and text.count("# END media-node") == 1, text
    assert "pi5=1" in text and "# profile pi5" in text
    assert "pi4=1" not in text and "old=1" not in text, text


def test_a_doorbell_button_opens_the_gpio_chips_and_group_gpio_only(tmp_path):
    """DevicePolicy=closed denies everything not allowed: with doorbell.gpio set the
    unit allows the gpiochip character devices and joins group gpio; without, neither."""
    plain = render_unit(tmp_path, "static")
    assert "char-gpiochip" not in plain.read_text() and groups_of(plain) == "video audio"
    bell = tmp_path / "bell"
    bell.mkdir()
    unit = render_unit(bell, "static", "media_node_doorbell_gpio=GPIO17")
    text = unit.read_text()
    assert re.search(r"^DeviceAllow=char-gpiochip rw$", text, re.M), text
    assert re.search(r"^DevicePolicy=closed$", text, re.M)
    assert groups_of(unit) == "video audio gpio"
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert level and float(level.group(1)) <= 3.0, r.stdout + r.stderr
    # systemd's own parse of the unit lists the device ACL it would apply
    acl = re.search(r"DeviceAllow=.*", r.stdout)
    assert acl and "char-gpiochip:rw" in acl.group(0), r.stdout


def test_on_a_pi_the_unit_allows_the_firmware_mailbox_for_vcgencmd(tmp_path):
    """vcgencmd get_throttled talks to the firmware through /dev/vcio (group video)."""
    pi = render_unit(tmp_path, "static", '{"media_node_board": {"pi": true}}')
    assert re.search(r"^DeviceAllow=/dev/vcio rw$", pi.read_text(), re.M)
    other = tmp_path / "other"
    other.mkdir()
    assert "/dev/vcio" not in render_unit(other, "static", '{"media_node_board": {"pi": false}}').read_text()
