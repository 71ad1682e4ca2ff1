"""A fleet of "devices" for the Ansible tests: each is an sshd in its own network
namespace, on a veth into a shared bridge (the "LAN"), reachable from the controller
(this process, in the host namespace) over its own veth into the same bridge.

The namespaces share this machine's filesystem, so every device gets its own root
directory (install prefix, home, unit dir, sysctl file) and its own service user
through inventory variables. systemd cannot run per-namespace units here, so the
deployed daemon is started directly in the device's namespace (see test_playbook.py)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=timeout)


@dataclass
class Device:
    name: str  # inventory host name
    netns: str
    address: str  # veth address inside the namespace (ssh target and "overlay" address)
    root: Path  # this device's private part of the shared filesystem
    user: str  # the service user the role creates
    sshd: subprocess.Popen | None = None

    def exec(self, *args: str, **kw) -> list[str]:
        """argv that runs inside this device's namespace."""
        return ["ip", "netns", "exec", self.netns, *args]


@dataclass
class Fleet:
    """Two or more devices plus a controller workspace; `close()` undoes everything."""

    base: Path
    subnet: str
    devices: list[Device] = field(default_factory=list)
    lan: str = ""
    host_if: str = ""
    controller_key: Path = Path()
    known_hosts: Path = Path()

    @classmethod
    def create(cls, names: list[str]) -> Fleet:
        tag = f"{os.getpid() % 100000}"
        # 10.(200+x).y.0/24: unlikely to collide with the other suites' namespaces.
        n = os.getpid() % 5000
        subnet = f"10.{200 + n // 250}.{n % 250}"
        base = Path(tempfile.mkdtemp(prefix="mn-deploy-", dir="/tmp"))
        base.chmod(0o755)  # the service users must reach their homes and venvs below
        fleet = cls(base=base, subnet=subnet)
        try:
            fleet._build(tag, names)
        except BaseException:
            fleet.close()
            raise
        return fleet

    @property
    def controller(self) -> Path:
        return self.base / "controller"

    def _build(self, tag: str, names: list[str]) -> None:
        self.controller.mkdir()
        (self.controller / "ssh").mkdir(mode=0o700)
        self.controller_key = self.controller / "ssh" / "id_ed25519"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "controller", "-f", str(self.controller_key))
        self.known_hosts = self.controller / "ssh" / "known_hosts"
        self.lan = f"mnlan{tag}"
        sh("ip", "netns", "add", self.lan)
        sh("ip", "-n", self.lan, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.lan, "link", "set", "br0", "up")
        sh("ip", "-n", self.lan, "link", "set", "lo", "up")
        # controller side: a veth from the host namespace into the LAN bridge
        self.host_if = f"mnc{tag}"
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", "up0", "netns", self.lan)
        sh("ip", "-n", self.lan, "link", "set", "up0", "master", "br0", "up")
        sh("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        for i, name in enumerate(names):
            self._add_device(tag, i, name)
        for dev in self.devices:
            self._wait_ssh(dev)

    def _add_device(self, tag: str, i: int, name: str) -> None:
        netns = f"mnd{tag}{chr(97 + i)}"
        address = f"{self.subnet}.{10 + i}"
        root = self.base / name
        (root / "ssh").mkdir(parents=True)
        root.chmod(0o755)  # whatever the umask: the service user walks through to its home
        dev = Device(name, netns, address, root, user=f"mnt{tag}{chr(97 + i)}")
        self.devices.append(dev)
        sh("ip", "netns", "add", netns)
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        sh(
            "ip",
            "-n",
            self.lan,
            "link",
            "add",
            f"p{i}",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            netns,
        )
        sh("ip", "-n", self.lan, "link", "set", f"p{i}", "master", "br0", "up")
        sh("ip", "-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", netns, "link", "set", "eth0", "up")
        host_key = root / "ssh" / "host_ed25519"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
        authorized = root / "ssh" / "authorized_keys"
        shutil.copy(f"{self.controller_key}.pub", authorized)
        config = root / "ssh" / "sshd_config"
        config.write_text(
            f"ListenAddress {address}\nPort 22\nHostKey {host_key}\n"
            f"PidFile {root}/ssh/sshd.pid\nAuthorizedKeysFile {authorized}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "Subsystem sftp internal-sftp\nLogLevel ERROR\n"
        )
        with open(self.known_hosts, "a") as f:
            f.write(
                f"{address} {(root / 'ssh' / 'host_ed25519.pub').read_text().split(' ', 2)[0]} "
                f"{(root / 'ssh' / 'host_ed25519.pub').read_text().split(' ')[1]}\n"
            )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        dev.sshd = subprocess.Popen(
            dev.exec(SSHD, "-D", "-e", "-f", str(config)),
            stdout=subprocess.DEVNULL,
            stderr=open(root / "ssh" / "sshd.log", "w"),
        )

    def _wait_ssh(self, dev: Device, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((dev.address, 22), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            if dev.sshd.poll() is not None or time.monotonic() > deadline:
                log = (dev.root / "ssh" / "sshd.log").read_text()
                raise RuntimeError(f"sshd for {dev.name} did not come up: {log}")
            time.sleep(0.2)

    def ansible_env(self) -> dict[str, str]:
        ssh_args = (
            f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes "
            f"-o ControlMaster=auto -o ControlPersist=60s "
            f"-o ControlPath={self.controller}/ssh/cm-%C -o IdentitiesOnly=yes"
        )
        return {
            **os.environ,
            "ANSIBLE_CONFIG": str(Path(__file__).parents[2] / "deploy/ansible/ansible.cfg"),
            "ANSIBLE_SSH_ARGS": ssh_args,
            "ANSIBLE_PRIVATE_KEY_FILE": str(self.controller_key),
            "ANSIBLE_LOCAL_TEMP": str(self.controller / "ansible-tmp"),
            "ANSIBLE_HOME": str(self.controller / "ansible-home"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
        }

    def close(self) -> None:
        errors = []
        for dev in self.devices:
            if dev.sshd and dev.sshd.poll() is None:
                dev.sshd.send_signal(signal.SIGTERM)
                try:
                    dev.sshd.wait(10)
                except subprocess.TimeoutExpired:
                    dev.sshd.kill()
                    dev.sshd.wait(10)
            # The sessions ansible left (ControlPersist) are sshd children in the namespace.
            kill_netns_processes(dev.netns)
            for what in (["ip", "netns", "del", dev.netns], ["userdel", dev.user], ["groupdel", dev.user]):
                r = subprocess.run(what, capture_output=True, text=True)
                if (
                    r.returncode not in (0, 6)
                    and "does not exist" not in r.stderr
                    and "Cannot remove" not in r.stderr
                ):
                    errors.append(f"{' '.join(what)}: {r.stderr.strip()}")
        if self.controller.exists():
            for sock in (self.controller / "ssh").glob("cm-*"):
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True, timeout=10
                )
        if self.host_if:
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        if self.lan:
            subprocess.run(["ip", "netns", "del", self.lan], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
        if errors:
            raise RuntimeError("fleet cleanup: " + "; ".join(errors))


def kill_netns_processes(netns: str) -> None:
    r = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
