"""The Nebula provider. A Nebula host certificate is signed by the network's CA and
carries the host's name and overlay IP; Nebula itself only accepts a packet from that IP
when the sender proved it holds that certificate's key. So the allowlist names the
peer's certificate (its name, or better its fingerprint), the certificate file (public)
sits in a directory of peer certificates, and the peer's address is the one in that
certificate, used only after `nebula-cert verify` accepts it against the CA this node's
own Nebula config trusts (pki.ca) and it is not in the config's pki.blocklist.

This node's address is the one in its own certificate (pki.cert), and must be on the
interface the config names (tun.dev): that tells whether Nebula is up. Nebula 1.6 uses a
certificate's first IP as the host's address, so that is the one taken."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml  # type: ignore[import-untyped]

from ..peers import Peer
from . import IPAddress, OverlayError, OverlayProvider, parse_address
from .local import missing_binding, read_bounded, run_tool
from .static import interface_addresses

TIMEOUT = 5.0
MAX_FILE = 1 << 20
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class NebulaCert:
    name: str
    fingerprint: str
    ips: tuple[IPInterface, ...]
    is_ca: bool

    @property
    def address(self) -> IPAddress | None:
        return self.ips[0].ip if self.ips else None


@dataclass(frozen=True)
class NebulaConfig:
    ca: str  # a path, or the PEM itself (Nebula accepts both)
    cert: str
    dev: str
    blocklist: frozenset[str]


def _read(path: Path, what: str) -> str:
    return read_bounded(
        path,
        MAX_FILE,
        what,
        denied="give the service user's group read access; the file must hold no private key, "
        "keep pki.key in its own file",
    )


def load_config(path: Path) -> NebulaConfig:
    """pki.ca, pki.cert, pki.blocklist and tun.dev from Nebula's config (nothing else)."""
    try:
        data = yaml.safe_load(_read(path, "the Nebula config"))
    except yaml.YAMLError as e:
        raise OverlayError(f"the Nebula config {path} is not valid YAML: {e}") from None
    pki = data.get("pki") if isinstance(data, dict) else None
    if (
        not isinstance(pki, dict)
        or not isinstance(pki.get("ca"), str)
        or not isinstance(pki.get("cert"), str)
    ):
        raise OverlayError(f"the Nebula config {path} has no pki.ca and pki.cert")
    tun = data.get("tun") if isinstance(data.get("tun"), dict) else {}
    dev = tun.get("dev") or "nebula1"
    blocklist = pki.get("blocklist") or []
    if not isinstance(dev, str) or not isinstance(blocklist, list):
        raise OverlayError(f"the Nebula config {path}: tun.dev or pki.blocklist has the wrong type")
    return NebulaConfig(pki["ca"], pki["cert"], dev, frozenset(str(b).lower() for b in blocklist))


def parse_cert_json(text: str, where: str) -> NebulaCert:
    """The first certificate `nebula-cert print -json` printed."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    try:
        data = json.loads(line)
        details = data["details"]
        ips = tuple(ipaddress.ip_interface(ip) for ip in details.get("ips") or [])
        return NebulaCert(str(details["name"]), str(data["fingerprint"]).lower(), ips, bool(details["isCa"]))
    except (ValueError, KeyError, TypeError):
        raise OverlayError(f"{where}: not a Nebula certificate") from None


class NebulaCertTool:
    """Runs nebula-cert (no shell). `print` results are kept per file version."""

    def __init__(self, command: str = "nebula-cert", timeout: float = TIMEOUT):
        self.argv = shlex.split(command) or ["nebula-cert"]
        self.timeout = timeout
        self._printed: dict[tuple[str, int, int], NebulaCert] = {}

    async def run(self, *args: str) -> tuple[int, str, str]:
        code, out, err = await run_tool(
            [*self.argv, *args],
            self.timeout,
            name=f"{self.argv[0]} {args[0]}",
            missing="is nebula installed?",
        )
        return code, out.decode(errors="replace"), err.decode(errors="replace")

    async def print_cert(self, path: Path) -> NebulaCert:
        st = os.stat(path)
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in self._printed:
            code, out, err = await self.run("print", "-json", "-path", str(path))
            if code != 0:
                raise OverlayError(f"{path}: not a Nebula certificate ({err.strip()[:160]})")
            self._printed = {k: v for k, v in self._printed.items() if k[0] != str(path)}
            self._printed[key] = parse_cert_json(out, str(path))
        return self._printed[key]

    async def verify(self, ca: Path, cert: Path) -> str:
        """ "" when `cert` is valid under `ca` now, else nebula-cert's reason."""
        code, out, err = await self.run("verify", "-ca", str(ca), "-crt", str(cert))
        return "" if code == 0 else (err.strip() or out.strip() or f"exit status {code}")[:200]


class NebulaProvider(OverlayProvider):
    name = "nebula"

    def __init__(self, config: str, certs: str, command: str = "nebula-cert", timeout: float = TIMEOUT):
        self.config_path = Path(config)
        self.certs = Path(certs)
        self.tool = NebulaCertTool(command, timeout)
        self._own: IPInterface | None = None
        self._resolved: dict[str, IPAddress] = {}

    def _pem_file(self, value: str, stack: contextlib.ExitStack) -> Path:
        """Nebula takes pki.ca / pki.cert as a path (relative to its config) or as the PEM itself."""
        if "-----BEGIN" not in value:
            path = Path(value)
            return path if path.is_absolute() else self.config_path.parent / path
        # The stack closes (and so deletes) it once nebula-cert has read it.
        tmp = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".crt"))
        tmp.write(value)
        tmp.flush()
        return Path(tmp.name)

    async def own_cert(self) -> tuple[NebulaConfig, NebulaCert]:
        config = load_config(self.config_path)
        with contextlib.ExitStack() as stack:
            cert = await self.tool.print_cert(self._pem_file(config.cert, stack))
        if not cert.ips:
            raise OverlayError(f"this node's Nebula certificate {cert.name!r} carries no IP")
        return config, cert

    async def local_address(self) -> str:
        config, cert = await self.own_cert()
        own = cert.ips[0]
        found = interface_addresses(config.dev)
        if found is None:
            raise OverlayError(f"Nebula's interface {config.dev!r} does not exist: is nebula running?")
        if own.ip not in found:
            raise OverlayError(
                f"Nebula's interface {config.dev} does not have this node's certificate address {own.ip}"
            )
        self._own = own
        return str(own.ip)

    async def resolve(self, peer: Peer) -> str:
        wanted = peer.nebula_cert
        if not wanted:
            raise missing_binding(peer, "nebula_cert", "--nebula-cert NAME-OR-FINGERPRINT")
        config = load_config(self.config_path)
        matches = await self._find(wanted)
        if not matches:
            raise OverlayError(f"peer {peer.name!r}: no certificate {wanted!r} in {self.certs}")
        with contextlib.ExitStack() as stack:
            ca = self._pem_file(config.ca, stack)
            valid: list[NebulaCert] = []
            reasons: list[str] = []
            for path, cert in matches:
                reason = await self.tool.verify(ca, path)
                if cert.is_ca:
                    reason = "it is a CA certificate"
                elif cert.fingerprint in config.blocklist:
                    reason = "its fingerprint is in pki.blocklist"
                elif cert.address is None:
                    reason = "it carries no IP"
                if reason:
                    reasons.append(f"{path.name}: {reason}")
                else:
                    valid.append(cert)
        if not valid:
            raise OverlayError(
                f"peer {peer.name!r}: certificate {wanted!r} is not trusted by this node's Nebula CA "
                f"({'; '.join(reasons)})"
            )
        addresses = {c.address for c in valid}
        if len(addresses) != 1:
            raise OverlayError(
                f"peer {peer.name!r}: certificates named {wanted!r} give different addresses "
                f"({', '.join(sorted(map(str, addresses)))}); name it by fingerprint"
            )
        (ip,) = addresses
        assert ip is not None
        self._resolved[wanted] = ip
        return str(ip)

    async def _find(self, wanted: str) -> list[tuple[Path, NebulaCert]]:
        try:
            files = sorted(p for p in self.certs.iterdir() if p.suffix in (".crt", ".pem") and p.is_file())
        except OSError as e:
            raise OverlayError(
                f"cannot list the Nebula peer certificates in {self.certs}: {e.strerror or e}"
            ) from None
        found = []
        for path in files:
            try:
                cert = await self.tool.print_cert(path)
            except OverlayError:
                continue  # not a certificate: it cannot match
            if wanted in (cert.fingerprint, cert.name):
                found.append((path, cert))
        return found

    def is_overlay(self, address: str) -> bool:
        ip = parse_address(address)
        if ip is None:
            return False
        if self._own is not None and ip in self._own.network:
            return True
        return ip in self._resolved.values()


__all__ = ["NebulaCert", "NebulaConfig", "NebulaProvider", "load_config", "parse_cert_json"]
