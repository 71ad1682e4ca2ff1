"""deploy/ansible/site.yml against two "devices": sshd instances in network namespaces.

What runs for real: ssh, the playbook, pip installing the wheelhouse offline into each
device's venv, `media-node init` on the device, the templates, the yggdrasil key
generation, the allowlists. What cannot: systemd units per namespace (there is no
systemd here), so the roles run with media_node_systemd=false and the daemon is started
directly in the device's namespace from its deployed venv."""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import require_root  # tests/conftest.py

from .fleet import Fleet

# Two full playbook runs against three sshd "devices" take 2-4 minutes on an idle 2-core
# machine and more when it is busy: the suite's 300 s default is too tight for them.
pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK_DIR = REPO / "deploy" / "ansible"


def inventory(fleet: Fleet, wheelhouse: Path) -> dict:
    a, b, broker = fleet.devices
    hosts = {}
    for dev, profile, peers in [
        (a, "pi4", [{"name": "dev-b", "host": "dev-b", "allow": ["view"]}]),
        (b, "auto", [{"name": "dev-a", "host": "dev-a", "allow": ["view", "call"]}]),
    ]:
        hosts[dev.name] = {
            "ansible_host": dev.address,
            "media_node_profile": profile,
            "media_node_prefix": str(dev.root / "opt"),
            "media_node_home": str(dev.root / "home"),
            "media_node_user": dev.user,
            "media_node_group": dev.user,
            "media_node_unit_dir": str(dev.root / "systemd"),
            "media_node_unit_name": f"media-node-{dev.name}",
            "media_node_sysctl_file": str(dev.root / "sysctl.d" / "60-media-node.conf"),
            "media_node_boot_config": str(dev.root / "boot" / "config.txt"),
            "media_node_overlay_address": dev.address,
            "media_node_peers": peers,
            "media_node_mqtt_password": secrets.token_urlsafe(24),
            "yggdrasil_config_file": str(dev.root / "yggdrasil" / "yggdrasil.conf"),
        }
        for d in ("systemd", "sysctl.d", "boot"):
            (dev.root / d).mkdir(exist_ok=True)
    # dev-a plays a Pi 4: a stock config.txt for the role's blockinfile.
    (a.root / "boot" / "config.txt").write_text("dtparam=audio=on\ncamera_auto_detect=1\n[all]\n")
    ca = fleet.controller / "credentials" / "mqtt-ca.crt"
    return {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_python_interpreter": "/usr/bin/python3",
                # the device's Python (this machine's `python3` is a pyenv build under /root,
                # which a service user cannot reach)
                "media_node_python": "/usr/bin/python3",
                "media_node_wheelhouse": str(wheelhouse),
                "media_node_ids_dir": str(fleet.controller / "node-ids"),
                "media_node_install_system_packages": False,
                "media_node_systemd": False,
                "media_node_sysctl_apply": False,
                "media_node_reboot": False,
                "media_node_video": "testsrc",
                "media_node_audio": "tone",
                "media_node_mqtt_enabled": True,
                "media_node_mqtt_host": broker.address,
                "media_node_mqtt_ca_src": str(ca),
                "yggdrasil_install": False,
                "yggdrasil_systemd": False,
            },
            "children": {
                "media_nodes": {"hosts": hosts},
                "yggdrasil": {"hosts": {a.name: {}, b.name: {}}},
                "mqtt_broker": {
                    "hosts": {
                        broker.name: {
                            "ansible_host": broker.address,
                            "mqtt_broker_install": False,
                            "mqtt_broker_systemd": False,
                            "mqtt_broker_dir": str(broker.root / "mosquitto"),
                            "mqtt_broker_persistence_dir": str(broker.root / "mosquitto-data"),
                            "mqtt_broker_pid_file": "",
                            "mqtt_broker_log_dest": "stdout",
                            "mqtt_broker_bind_address": broker.address,
                            "mqtt_broker_tls_names": [broker.address],
                            "mqtt_broker_ca_fetch": str(ca),
                        }
                    }
                },
            },
        }
    }


def run_playbook(fleet: Fleet, name: str, *extra: str) -> subprocess.CompletedProcess:
    log = fleet.controller / f"{name}.log"
    r = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(fleet.controller / "hosts.yml"),
            str(PLAYBOOK_DIR / "site.yml"),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=fleet.ansible_env(),
        timeout=400,
        cwd=fleet.controller,
    )
    log.write_text(r.stdout + r.stderr)
    assert r.returncode == 0, f"ansible-playbook {name} failed:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    return r


def changed_tasks(output: str) -> list[str]:
    """The TASK headers under which a host reported `changed`, for failure messages."""
    found, task = [], ""
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.rstrip("* ")
        elif line.startswith("changed:"):
            found.append(f"{task} -> {line}")
    return found


def recap(output: str) -> dict[str, dict[str, int]]:
    found = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        found[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return found


@pytest.fixture(scope="module")
def deployed(wheelhouse):
    require_root("the Ansible deploy test (network namespaces, sshd, users)")
    fleet = Fleet.create(["dev-a", "dev-b", "broker"])
    try:
        (fleet.controller / "hosts.yml").write_text(json.dumps(inventory(fleet, wheelhouse), indent=2))
        first = run_playbook(fleet, "first")
        yield fleet, first
    finally:
        fleet.close()


def node_ids(fleet: Fleet) -> dict[str, str]:
    return {p.stem: p.read_text().strip() for p in (fleet.controller / "node-ids").glob("*.id")}


def test_first_run_deploys_both_devices(deployed):
    fleet, first = deployed
    counts = recap(first.stdout)
    assert set(counts) == {"dev-a", "dev-b", "broker"}
    assert all(counts[d.name]["changed"] > 0 and counts[d.name]["failed"] == 0 for d in fleet.devices)
    ids = node_ids(fleet)
    assert set(ids) == {"dev-a", "dev-b"} and ids["dev-a"] != ids["dev-b"]
    a, b, broker = fleet.devices
    for dev in (a, b):
        key = dev.root / "home" / "identity.key"
        st = key.stat()
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == int(subprocess.check_output(["id", "-u", dev.user]))
        groups = subprocess.check_output(["id", "-nG", dev.user], text=True).split()
        assert set(groups) == {dev.user, "video", "audio"}, groups
        venv_bin = dev.root / "opt" / "venv" / "bin" / "media-node"
        shown = subprocess.run(
            ["runuser", "-u", dev.user, "--", str(venv_bin), "id", "--home", str(dev.root / "home")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.stdout.strip() == ids[dev.name]
        unit = (dev.root / "systemd" / f"media-node-{dev.name}.service").read_text()
        assert (
            "Type=notify" in unit and f"User={dev.user}" in unit and "SupplementaryGroups=video audio" in unit
        )
        assert f"ExecStart={dev.root}/opt/venv/bin/media-node run --home {dev.root}/home" in unit
        ygg = dev.root / "yggdrasil" / "yggdrasil.conf"
        assert stat.S_IMODE(ygg.stat().st_mode) == 0o600
    # Allowlists from the inventory: A lets B view; B lets A view and call.
    peers_a = (a.root / "home" / "peers.toml").read_text()
    peers_b = (b.root / "home" / "peers.toml").read_text()
    assert ids["dev-b"] in peers_a and f'address = "{b.address}"' in peers_a and '"view"' in peers_a
    assert ids["dev-a"] in peers_b and '"call"' in peers_b
    # Profile-driven system settings: A is a Pi 4 (config.txt block), B matched generic-uvc.
    boot = (a.root / "boot" / "config.txt").read_text()
    assert "# BEGIN media-node board profile" in boot and "# profile pi4" in boot
    assert "display_auto_detect=0" in boot
    assert boot.startswith("dtparam=audio=on\n"), "the operator's lines stay"
    assert "net.core.rmem_max = 4194304" in (a.root / "sysctl.d" / "60-media-node.conf").read_text()
    assert "generic-uvc" in (b.root / "sysctl.d" / "60-media-node.conf").read_text()
    assert "Reboot for config.txt (announce)" in first.stdout  # handler ran once, for dev-a only
    assert not (b.root / "boot" / "config.txt").exists()


def test_second_run_changes_nothing(deployed):
    fleet, _ = deployed
    second = run_playbook(fleet, "second")
    counts = recap(second.stdout)
    for dev in fleet.devices:
        assert counts[dev.name]["failed"] == 0
        assert counts[dev.name]["changed"] == 0, changed_tasks(second.stdout)
    assert "RUNNING HANDLER" not in second.stdout
    # and a dry run (--check --diff) on the converged fleet predicts no change either
    dry = run_playbook(fleet, "check", "--check", "--diff")
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in recap(dry.stdout).values()), changed_tasks(
        dry.stdout
    )


def test_deployed_unit_exposure(deployed):
    fleet, _ = deployed
    dev = fleet.devices[0]
    unit = dev.root / "systemd" / f"media-node-{dev.name}.service"
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert level, r.stdout + r.stderr
    assert float(level.group(1)) <= 3.0, r.stdout


def test_doctor_passes_on_a_deployed_device(deployed, broker):
    fleet, _ = deployed
    dev = fleet.devices[1]
    r = subprocess.run(
        dev.exec(
            "runuser",
            "-u",
            dev.user,
            "--",
            str(dev.root / "opt/venv/bin/media-node"),
            "doctor",
            "--json",
            "--home",
            str(dev.root / "home"),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(r.stdout)
    assert r.returncode == 0, json.dumps(report, indent=2)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["overlay"]["status"] == "ok" and dev.address in checks["overlay"]["detail"]
    assert checks["key"]["status"] == "ok"
    assert checks["broker"]["status"] == "ok", checks["broker"]


def test_controller_holds_no_private_key(deployed):
    fleet, _ = deployed
    secrets = []
    for dev in fleet.devices[:2]:
        seed = (dev.root / "home" / "identity.key").read_text().strip()
        ygg = json.loads((dev.root / "yggdrasil" / "yggdrasil.conf").read_text())["PrivateKey"]
        secrets += [seed.lower(), ygg.lower(), ygg[:64].lower()]
    assert all(len(s) >= 64 for s in secrets)
    broker_key = (fleet.devices[2].root / "mosquitto" / "certs" / "media-node-broker.key").read_text()
    secrets += [line.lower() for line in broker_key.splitlines() if len(line) >= 40]
    # The controller's side: its workspace (inventory, logs, node ids, ansible temp) and the
    # playbook directory. The ssh/ folder holds the controller's own login key, not a node's.
    leaks = []
    for top in (fleet.controller, PLAYBOOK_DIR):
        for path in top.rglob("*"):
            if not path.is_file() or path.parent.name == "ssh":
                continue
            text = path.read_bytes().decode(errors="replace").lower()
            if any(s in text for s in secrets) or "private key-----" in text:
                leaks.append(str(path))
    assert not leaks, f"private key material on the controller: {leaks}"
    ids = fleet.controller / "node-ids"
    assert sorted(p.name for p in ids.iterdir()) == ["dev-a.id", "dev-b.id"]


def wait_for(
    predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None
):
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"{what}: process exited {proc.returncode}: {log.read_text() if log else ''}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s: {log.read_text()[-3000:] if log else ''}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def broker(deployed):
    """mosquitto with the config, ACL, passwords and TLS key the mqtt_broker role put on
    the broker device, started in that device's namespace (no systemd here)."""
    fleet, _ = deployed
    dev = fleet.devices[2]
    log = dev.root / "mosquitto-run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            dev.exec("mosquitto", "-c", str(dev.root / "mosquitto" / "mosquitto.conf")),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def listening() -> bool:
            try:
                with socket.create_connection((dev.address, 8883), timeout=1):
                    return True
            except OSError:
                return False

        wait_for(listening, 20, "mosquitto listening", proc, log)
        yield dev
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_deployed_nodes_complete_a_view_call(deployed, broker):
    """Device A's daemon (deployed venv, home, key and allowlist; started directly since
    systemd cannot run units per namespace) serves device B's `media-node view` over MQTT
    through the deployed broker, media on the static "overlay" (the veth addresses).
    A real unix datagram socket stands in for systemd's NOTIFY_SOCKET."""
    fleet, _ = deployed
    a, b, _broker = fleet.devices
    notify_dir = fleet.base / "notify"
    notify_dir.mkdir(mode=0o755)
    notify_path = notify_dir / "a.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify_path.chmod(0o666)  # the service user sends to it
    notify.settimeout(60)
    log = fleet.base / "daemon-a.log"
    uid = subprocess.check_output(["id", "-u", a.user], text=True).strip()
    with open(log, "w") as out:
        daemon = subprocess.Popen(
            a.exec(
                "setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--init-groups",
                "--",
                "env",
                f"NOTIFY_SOCKET={notify_path}",
                "WATCHDOG_USEC=2000000",
                str(a.root / "opt/venv/bin/media-node"),
                "run",
                "--home",
                str(a.root / "home"),
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        messages = []

        def next_message() -> str:
            try:
                messages.append(notify.recv(4096).decode())
            except TimeoutError:
                raise AssertionError(f"no sd_notify message; daemon log: {log.read_text()[-3000:]}") from None
            return messages[-1]

        assert "READY=1" in next_message().split("\n"), messages
        while "WATCHDOG=1" not in next_message().split("\n"):
            pass
        wait_for(lambda: "MQTT connected" in log.read_text(), 60, "daemon A on the broker", daemon, log)
        view = subprocess.run(
            b.exec(
                "runuser",
                "-u",
                b.user,
                "--",
                str(b.root / "opt/venv/bin/media-node"),
                "view",
                "dev-a",
                "--via",
                "mqtt",
                "--seconds",
                "3",
                "--json",
                "--home",
                str(b.root / "home"),
            ),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert view.returncode == 0, (
            f"view failed:\n{view.stdout}\n{view.stderr}\ndaemon:\n{log.read_text()[-4000:]}"
        )
        summary = json.loads(view.stdout.strip().splitlines()[-1])
        assert summary["ok"] and summary["video_frames"] > 0, summary
        assert summary["remote_address"] == a.address and summary["local_address"] == b.address, summary
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, log.read_text()[-3000:]
        while "STOPPING=1" not in next_message().split("\n"):
            pass
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
        notify.close()


def test_broker_acl_keeps_a_node_out_of_another_nodes_inbox(deployed, broker):
    """The deployed ACL and passwords: B may post into A's inbox, A reads it, B cannot
    read A's inbox, and a wrong password is refused. A retained message makes the
    positive and the negative read the same message."""
    fleet, _ = deployed
    a, b, _ = fleet.devices
    ids = node_ids(fleet)

    def creds(dev, password=None):
        return [
            "-h",
            broker.address,
            "-p",
            "8883",
            "--cafile",
            str(dev.root / "home/mqtt-ca.crt"),
            "-u",
            ids[dev.name],
            "-P",
            password or (dev.root / "home/mqtt.password").read_text(),
        ]

    inbox_a = f"media-node/{ids['dev-a']}/inbox"
    pub = subprocess.run(
        b.exec("mosquitto_pub", *creds(b), "-t", inbox_a, "-r", "-q", "1", "-m", "acl-probe"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert pub.returncode == 0, pub.stderr
    try:
        mine = subprocess.run(
            a.exec("mosquitto_sub", *creds(a), "-t", inbox_a, "-C", "1", "-W", "10"),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert mine.stdout.strip() == "acl-probe", (mine.returncode, mine.stderr)
        theirs = subprocess.run(
            b.exec("mosquitto_sub", *creds(b), "-t", inbox_a, "-C", "1", "-W", "3"),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "acl-probe" not in theirs.stdout, "B read A's inbox"
        wrong = subprocess.run(
            b.exec("mosquitto_sub", *creds(b, "not-the-password"), "-t", "x", "-C", "1", "-W", "5"),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert wrong.returncode != 0 and "not authori" in (wrong.stdout + wrong.stderr).lower(), wrong.stderr
    finally:
        subprocess.run(
            b.exec("mosquitto_pub", *creds(b), "-t", inbox_a, "-r", "-n"), capture_output=True, timeout=30
        )
