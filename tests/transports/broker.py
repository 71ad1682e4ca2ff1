"""A real mosquitto for the tests: TLS (a CA and server certificate made here), a
password per user (mosquitto_passwd) and the ACL and config rendered from the Ansible
role's templates, listening on a free 127.0.0.1 port."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import jinja2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from node.config import MqttSection

TEMPLATES = Path(__file__).resolve().parents[2] / "deploy" / "ansible" / "roles" / "mqtt_broker" / "templates"


def render(template: str, **variables) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template(template).render(**variables)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tls(folder: Path, ip: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for `ip` (127.0.0.1) / localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("media-node test CA"))
        .issuer_name(_name("media-node test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(ip))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    os.chmod(key_file, 0o600)
    return ca_file, cert_file, key_file


class Broker:
    """mosquitto with users: `nodes` (NodeUnderTest, username = node id) and
    `controllers` (plain names). Each user's password is in its own file, as a node keeps it."""

    def __init__(
        self,
        folder: Path,
        nodes=(),
        controllers=(),
        home_assistant: bool = False,
        prefix: str = "media-node",
        views: dict[str, list[str]] | None = None,
        listen: str = "127.0.0.1",
        argv_prefix: tuple[str, ...] = (),
    ):
        """`views`: node id -> the node ids whose status it may read (a web viewer).
        `listen` and `argv_prefix` (e.g. `ip netns exec NS`): a broker on an overlay
        address inside a namespace."""
        self.listen = listen
        self.argv_prefix = argv_prefix
        if not shutil.which("mosquitto") or not shutil.which("mosquitto_passwd"):
            raise RuntimeError("mosquitto and mosquitto_passwd are needed (apt-get install mosquitto)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.prefix = prefix
        self.ca_file, cert, key = make_tls(folder, listen)
        self.passwd = folder / "passwd"
        self.acl = folder / "acl"
        self.data = folder / "data"
        self.data.mkdir(exist_ok=True)
        self.log = folder / "mosquitto.log"
        self.password_files: dict[str, Path] = {}
        users = [n.node_id for n in nodes] + list(controllers)
        for user in users:
            self.add_user(user)
        self.acl.write_text(
            render(
                "acl.j2",
                mqtt_prefix=prefix,
                mqtt_home_assistant=home_assistant,
                mqtt_nodes=[
                    {"node_id": n.node_id, "name": n.name, "views": (views or {}).get(n.node_id, [])}
                    for n in nodes
                ],
                mqtt_controllers=[{"username": c} for c in controllers],
            )
        )
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            render(
                "mosquitto.conf.j2",
                mqtt_run_as_user="root",
                mqtt_pid_file="",
                mqtt_log_dest=f"file {self.log}",
                mqtt_password_file=str(self.passwd),
                mqtt_acl_file=str(self.acl),
                mqtt_persistence_dir=str(self.data),
                mqtt_autosave_interval=1,
                mqtt_listen_address=listen,
                mqtt_port=self.port,
                mqtt_max_queued_messages=5000,
                mqtt_tls_ca_file=str(self.ca_file),
                mqtt_tls_cert_file=str(cert),
                mqtt_tls_key_file=str(key),
            )
        )
        self.proc: subprocess.Popen | None = None

    def add_user(self, user: str) -> None:
        password = os.urandom(12).hex()
        args = (
            ["mosquitto_passwd", "-b"]
            + ([] if self.passwd.exists() else ["-c"])
            + [str(self.passwd), user, password]
        )
        subprocess.run(args, check=True, capture_output=True, timeout=30)
        pw_file = self.folder / f"{user[:20]}.password"
        pw_file.write_text(password + "\n")
        os.chmod(pw_file, 0o600)
        self.password_files[user] = pw_file

    def start(self, timeout: float = 15.0) -> None:
        self.proc = subprocess.Popen(
            [*self.argv_prefix, "mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while self.argv_prefix:  # in another namespace: its log says when it listens
            if "running" in self.log_text():
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {self.log_text()}")
            time.sleep(0.05)
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode}): {err}\n{self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout} s"
                    ) from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no goodbye, no final save (what a power cut does)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def persisted_after(self, moment: float) -> bool:
        db = self.data / "mosquitto.db"
        return db.exists() and db.stat().st_mtime > moment

    def config_for(self, user: str, **overrides) -> MqttSection:
        """The [mqtt] config section a node (or the viewer) would use for this broker."""
        values = dict(
            enabled=True,
            host=self.listen,
            port=self.port,
            prefix=self.prefix,
            tls=True,
            ca_file=str(self.ca_file),
            password_file=str(self.password_files[user]),
            reconnect_min=1,
            reconnect_max=2,
            keepalive=10,
        )
        values["username"] = user
        values.update(overrides)
        return MqttSection(**values)
