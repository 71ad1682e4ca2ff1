"""Node homes for the bench: a camera node and viewer nodes that trust each other, on
loopback addresses as the static overlay (the embedded demo's overlay: 127.0.0.1 for
the camera, 127.0.0.N for viewers), made through the node's own API."""

from __future__ import annotations

from pathlib import Path

import msgspec
import tomli_w

from node.config import load_config
from node.home import Home
from node.identity import Identity
from node.peers import PeerStore, make_peer

CAM_ADDR = "127.0.0.1"


def viewer_addr(i: int) -> str:
    return f"127.0.0.{10 + i}"


class BenchNode:
    def __init__(self, path: Path, name: str, address: str):
        self.home = Home(path)
        if not self.home.key_file.exists():
            self.home.create(name)
        self.name = name
        self.address = address
        self.identity = Identity.load(self.home.key_file)
        self.peers = PeerStore(self.home.peers_file)

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    def trust(self, other: BenchNode, allow: str) -> None:
        self.peers.add(make_peer(other.name, other.node_id, allow, address=other.address), replace=True)

    def configure(self, **sections) -> None:
        """Write config.toml: defaults + the given sections (dicts), validated on load."""
        data = msgspec.to_builtins(load_config(self.home.config_file))
        for section, values in sections.items():
            data.setdefault(section, {}).update(values)
        data["overlay"].update({"provider": "static", "address": self.address, "interface": "", "cidr": ""})
        self.home.config_file.write_text(tomli_w.dumps(data))
        load_config(self.home.config_file)  # fail here, clearly, if the config is wrong


def make_nodes(root: Path, viewers: int) -> tuple[BenchNode, list[BenchNode]]:
    cam = BenchNode(root / "cam", "cam", CAM_ADDR)
    views = [BenchNode(root / f"viewer{i}", f"viewer{i}", viewer_addr(i)) for i in range(viewers)]
    for v in views:
        cam.trust(v, "view,call,trigger")
        v.trust(cam, "view,call")
    return cam, views
