"""The seams every transport shares: the client side (`ClientTransport`: send one link,
wait for the reply link) and the factory that builds one from a `--via` argument, and
`Publish` (what status, events and extensions need from a connection)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import NodeError
from ..peers import Peer

if TYPE_CHECKING:
    from ..home import Home

VIA_FORMS = (
    "file:DIR (another node's home or drop folder), mqtt (the broker in [mqtt]) or manual (paste links)"
)


class ClientTransport(Protocol):
    """Send `link_text` to `peer` and return its reply link; TransportError when there
    is none within `timeout` seconds (or the peer's transport refused the link)."""

    async def request(self, peer: Peer, link_text: str, timeout: float) -> str: ...


class Publish(Protocol):
    """Publish one message (MQTT's shape): all that status, events and extensions such
    as Home Assistant discovery need from a connection."""

    def __call__(self, topic: str, payload: bytes | str, *, qos: int = ..., retain: bool = ...) -> object: ...


def client_transport(via: str, home: Home | None = None) -> ClientTransport:
    """The client side of a transport named on the command line (`--via`)."""
    if via == "mqtt":
        from ..config import load_config
        from ..identity import Identity
        from .mqtt import MqttRequester

        if home is None:
            raise NodeError("--via mqtt needs this node's home (for its [mqtt] config and key)")
        return MqttRequester(load_config(home.config_file).mqtt, Identity.load(home.key_file))
    if via.startswith("file:") and len(via) > 5:
        from .filedrop import FileDropClient

        folder = Path(via[5:]).expanduser()
        if not (folder / "inbox").is_dir():
            raise NodeError(
                f"--via {via}: {folder}/inbox does not exist (name the camera node's home "
                "or a folder with inbox/ and outbox/)"
            )
        return FileDropClient(folder)
    if via == "manual":
        from .manual import ManualTransport

        return ManualTransport()
    raise NodeError(f"--via {via!r} not understood; use {VIA_FORMS}")


__all__ = ["VIA_FORMS", "ClientTransport", "Publish", "client_transport"]
