"""MQTT for the bench: a private mosquitto on a loopback port, and the viewer's client
transport over it (one broker connection kept for all of a viewer's calls, so time to
first frame counts the link's trip, not connecting to the broker)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """mosquitto on 127.0.0.1:PORT, anonymous, no TLS (loopback only)."""

    def __init__(self, workdir: Path):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto not found: install the Debian package mosquitto")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        # set_tcp_nodelay as in deploy/ansible/roles/mqtt_broker (a reply would otherwise
        # wait ~40 ms behind the viewer's delayed ACK of its PUBACK)
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n"
        )
        self._log = open(workdir / "mosquitto.log", "wb")
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=self._log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not start on port {self.port} (see {workdir}/mosquitto.log)")

    def config(self) -> dict:
        return {"enabled": True, "host": "127.0.0.1", "port": self.port, "tls": False}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


class _KeptClient:
    def __init__(self, config, identity):
        from node.transports.mqtt import MqttClient

        self.client = MqttClient(config, identity)
        self.connected = False

    async def request(self, peer, link_text: str, timeout: float) -> str:
        if not self.connected:
            await self.client.connect(10)
            self.connected = True
        return await self.client.request(peer, link_text, timeout)


def client_transport(via: str, config, identity):
    return _KeptClient(config.mqtt, identity)
