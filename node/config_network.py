"""config.toml's sections for how the node is reached: overlay, links, file drop, MQTT and
the web viewer (node/config.py composes them with node/config_media.py's)."""

import ipaddress
from typing import Annotated, Literal

from msgspec import Meta, Struct


class OverlaySection(Struct, forbid_unknown_fields=True):
    provider: Annotated[
        Literal["static", "yggdrasil", "staex", "wireguard", "nebula", "tailscale"],
        Meta(
            description="Overlay provider: static (an address or interface you name), yggdrasil "
            "(admin socket), staex (mcc / loopback HTTP helper), wireguard (peer table exported from "
            "the interface), nebula (certificates checked against Nebula's CA) or tailscale "
            "(tailscaled's local API). docs/overlays.md says what each binds and trusts."
        ),
    ] = "static"
    address: Annotated[
        str, Meta(description="static: this node's overlay address (takes precedence over interface).")
    ] = ""
    interface: Annotated[
        str, Meta(description="static: take this node's overlay address from this interface (e.g. nebula1).")
    ] = ""
    cidr: Annotated[
        str,
        Meta(
            description="static: the overlay's prefix (e.g. 100.64.0.0/10); with interface, the address "
            "must lie in it; peers' addresses must lie in it too."
        ),
    ] = ""
    yggdrasil_admin: Annotated[
        str,
        Meta(
            description="yggdrasil: admin endpoint (unix:///path or tcp://127.0.0.1:9001). Debian's "
            "yggdrasil unit can only write /run/yggdrasil/; the node's user must be in group yggdrasil."
        ),
    ] = "unix:///run/yggdrasil/yggdrasil.sock"
    staex_command: Annotated[
        str, Meta(description="staex: the mcc command (may include arguments, e.g. 'docker exec mcc mcc').")
    ] = "mcc"
    staex_http: Annotated[
        str,
        Meta(
            description="staex: a loopback HTTP helper (http://127.0.0.1:9377) with /id and "
            "/resolve?node-id=; empty to use staex_command."
        ),
    ] = ""
    wireguard_interface: Annotated[
        str, Meta(description="wireguard: the WireGuard interface; this node's address is its address.")
    ] = "wg0"
    wireguard_peers: Annotated[
        str,
        Meta(
            description="wireguard: the peer table (public keys and allowed IPs, never a private key) "
            "that `media-node wireguard export` writes as root; the service only reads it."
        ),
    ] = "/run/media-node-wireguard/wg0.peers"
    nebula_config: Annotated[
        str,
        Meta(
            description="nebula: Nebula's own config; its pki.ca (the CA trusted), pki.cert (this "
            "node's certificate), pki.blocklist and tun.dev are read, nothing else."
        ),
    ] = "/etc/nebula/config.yml"
    nebula_certs: Annotated[
        str,
        Meta(
            description="nebula: directory of the peers' certificates (*.crt, public); each is "
            "verified against the CA before its address is used."
        ),
    ] = "/etc/nebula/peers"
    nebula_cert_command: Annotated[
        str, Meta(description="nebula: the nebula-cert program that verifies and prints certificates.")
    ] = "nebula-cert"
    tailscale_socket: Annotated[
        str, Meta(description="tailscale: tailscaled's local API socket (read: GET /localapi/v0/status).")
    ] = "/var/run/tailscale/tailscaled.sock"


class LinksSection(Struct, forbid_unknown_fields=True):
    ttl: Annotated[int, Meta(ge=10, le=86400, description="Seconds a link this node signs stays valid.")] = (
        120
    )
    clock_skew: Annotated[
        int, Meta(ge=0, le=600, description="Seconds of clock difference tolerated on incoming links.")
    ] = 30
    seal: Annotated[
        bool, Meta(description="Seal outgoing links to the recipient (NaCl sealed box) by default.")
    ] = False


class FiledropSection(Struct, forbid_unknown_fields=True):
    enabled: Annotated[bool, Meta(description="Watch the home's inbox/ for link files.")] = True
    group: Annotated[
        str,
        Meta(
            description="A group whose members may also write the inbox (a local drop by another "
            "service): the inbox may then be group-writable for this group only. Empty: only this "
            "node's user (the node refuses to start on an inbox others can write)."
        ),
    ] = ""
    settle: Annotated[
        float,
        Meta(
            gt=0,
            le=60,
            description="Seconds a file written in place must stay unchanged (and closed) "
            "before it is taken.",
        ),
    ] = 0.3
    max_open: Annotated[
        float,
        Meta(
            gt=0,
            le=3600,
            description="Seconds a file its writer keeps open is waited for; then it is taken and "
            "refused as still-open (kept in rejected/ with its reason).",
        ),
    ] = 30.0
    empty_grace: Annotated[
        float, Meta(gt=0, le=3600, description="Seconds an empty file may stay empty before it is refused.")
    ] = 10.0
    rescan: Annotated[
        float,
        Meta(gt=0, le=3600, description="Seconds between full inbox scans (the safety net behind inotify)."),
    ] = 5.0


class MqttSection(Struct, forbid_unknown_fields=True):
    enabled: Annotated[
        bool, Meta(description="Connect to an MQTT broker for links, commands and status.")
    ] = False
    host: Annotated[
        str,
        Meta(
            description="Broker IP address (loopback or an overlay address). Not a name: the node "
            "never makes a DNS lookup. With TLS the broker's certificate must name this IP."
        ),
    ] = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535, description="Broker port (8883 with TLS, 1883 without).")] = (
        8883
    )
    prefix: Annotated[
        str, Meta(description="Topic prefix: topics are <prefix>/<node id>/inbox, status, ...")
    ] = "media-node"
    tls: Annotated[bool, Meta(description="Use TLS to the broker.")] = True
    ca_file: Annotated[str, Meta(description="CA certificate for the broker (empty = system CAs).")] = ""
    cert_file: Annotated[str, Meta(description="Client certificate (optional).")] = ""
    key_file: Annotated[str, Meta(description="Client certificate key (optional).")] = ""
    username: Annotated[str, Meta(description="Username (empty = this node's id).")] = ""
    password_file: Annotated[str, Meta(description="File holding the password (never put it in config).")] = (
        ""
    )
    keepalive: Annotated[int, Meta(ge=5, le=3600, description="MQTT keepalive in seconds.")] = 30
    session_expiry: Annotated[
        int,
        Meta(
            ge=0,
            le=2592000,
            description="Seconds the broker keeps this node's session (and queues its links) "
            "while it is offline.",
        ),
    ] = 86400
    reconnect_min: Annotated[
        int, Meta(ge=1, le=60, description="First reconnect delay in seconds (doubles up to reconnect_max).")
    ] = 1
    reconnect_max: Annotated[int, Meta(ge=1, le=3600, description="Longest reconnect delay in seconds.")] = 60
    home_assistant: Annotated[bool, Meta(description="Publish Home Assistant MQTT discovery.")] = False
    discovery_prefix: Annotated[str, Meta(description="Home Assistant discovery prefix.")] = "homeassistant"
    controllers: Annotated[
        list[str],
        Meta(
            description="Broker usernames of the controllers (scripts, Home Assistant) whose commands "
            "this node takes: each on <prefix>/<node id>/cmd/<command>/<username>, a topic the broker's "
            "ACL lets that user alone write; replies go under <prefix>/<username>/reply/<node id>/."
        ),
    ] = []
    home_assistant_user: Annotated[
        str,
        Meta(
            description="The broker username Home Assistant connects as: its buttons publish to "
            "cmd/call/<this user> (a controller, with mqtt.home_assistant on)."
        ),
    ] = "homeassistant"

    def __post_init__(self) -> None:
        try:
            self.host = str(ipaddress.ip_address(self.host.strip("[]")))
        except ValueError:
            raise ValueError(
                f"host: {self.host!r} is not an IP address; the node makes no DNS lookups, "
                "so give the broker's IP (e.g. 127.0.0.1 or its overlay address)"
            ) from None


class WebSection(Struct, forbid_unknown_fields=True):
    port: Annotated[
        int,
        Meta(
            ge=0,
            le=65535,
            description="`media-node web` listens on 127.0.0.1 at this port (0 = any free port).",
        ),
    ] = 8765
    ring_timeout: Annotated[
        float,
        Meta(
            gt=0,
            le=120,
            description="Seconds a doorbell call rings the open pages before it is declined "
            "(keep it below the caller's calls.answer_timeout).",
        ),
    ] = 20.0
