"""A stand-in for tailscaled's local API: HTTP on a unix socket answering
`GET /localapi/v0/status` with a status document in the shape tailscaled documents
(ipnstate.Status: BackendState, TailscaleIPs, Self, Peer keyed by node key, each
PeerStatus with ID, PublicKey, HostName, DNSName, TailscaleIPs and the underlay Addrs /
CurAddr / Relay the node must never use). tailscaled itself cannot join a tailnet here
(it needs its coordination service), so the provider is tested against this.

Like tailscaled it routes by the Host `local-tailscaled.sock` and refuses requests
carrying Origin or Referer (a browser's)."""

from __future__ import annotations

import json
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

SELF_KEY = "nodekey:" + "1a" * 32
CAM_KEY = "nodekey:" + "2b" * 32
ODD_KEY = "nodekey:" + "3c" * 32
SELF_IP, CAM_IP = "100.101.102.103", "100.64.0.7"
UNDERLAY = ("192.168.1.20:41641", "203.0.113.5:41641")


def peer_status(node_id: str, key: str, host: str, ips: list[str], addr: str) -> dict:
    return {
        "ID": node_id,
        "PublicKey": key,
        "HostName": host,
        "DNSName": f"{host}.tail1234.ts.net.",
        "OS": "linux",
        "TailscaleIPs": ips,
        "Addrs": [addr],
        "CurAddr": addr,
        "Relay": "fra",
        "Online": True,
        "Active": True,
    }


def status_document() -> dict:
    return {
        "Version": "1.76.6-t1234abcd",
        "BackendState": "Running",
        "TailscaleIPs": [SELF_IP, "fd7a:115c:a1e0::1"],
        "Self": peer_status("nSelf1CNTRL", SELF_KEY, "doorbell", [SELF_IP, "fd7a:115c:a1e0::1"], UNDERLAY[0]),
        "Peer": {
            CAM_KEY: peer_status("nCam2CNTRL", CAM_KEY, "phone", [CAM_IP, "fd7a:115c:a1e0::7"], UNDERLAY[1]),
            # A peer whose only listed address is outside Tailscale's ranges.
            ODD_KEY: peer_status("nOdd3CNTRL", ODD_KEY, "odd", ["192.168.1.5"], UNDERLAY[1]),
        },
        "CurrentTailnet": {
            "Name": "example.com",
            "MagicDNSSuffix": "tail1234.ts.net",
            "MagicDNSEnabled": True,
        },
    }


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class LocalApiStandIn:
    def __init__(self, path: Path, mode: int = 0o666):
        self.path = path
        self.status = status_document()
        self.requests: list[tuple[str, str, dict]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin.requests.append((self.path, self.headers.get("Host", ""), dict(self.headers)))
                if self.headers.get("Origin") or self.headers.get("Referer"):
                    self._reply(403, b"browser requests denied\n")
                elif self.headers.get("Host") != "local-tailscaled.sock":
                    self._reply(403, b"bad Host\n")
                elif self.path.split("?")[0] == "/localapi/v0/status":
                    self._reply(200, json.dumps(standin.status).encode(), "application/json")
                else:
                    self._reply(404, b"not found\n")

            def _reply(self, code: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

            def address_string(self) -> str:  # a unix socket has no client address
                return "unix"

        self.server = _Server(str(path), Handler)
        os.chmod(path, mode)  # tailscaled's socket is srw-rw-rw-; the API checks who asks
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalApiStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.path.unlink(missing_ok=True)
