"""The Nebula provider with real certificates from Debian's nebula-cert (the daemons
themselves run in the privacy harness): a peer's address is its certificate's, only
when that certificate verifies against the CA this node's Nebula config trusts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from node.overlay import OverlayError
from node.overlay.nebula import NebulaProvider, load_config
from node.peers import make_peer

pytestmark = pytest.mark.timeout(60)
NODE_ID = "a" * 51 + "0"


def nebula_cert(*args: str) -> str:
    return subprocess.run(["nebula-cert", *args], capture_output=True, text=True, check=True).stdout


class Pki:
    def __init__(self, d: Path):
        if shutil.which("nebula-cert") is None:
            pytest.fail("nebula-cert is not installed (make system-packages installs nebula)")
        self.d = d
        self.ca = self.make_ca("lab")
        self.peers = d / "peers"
        self.peers.mkdir()

    def make_ca(self, name: str) -> tuple[Path, Path]:
        crt, key = self.d / f"{name}-ca.crt", self.d / f"{name}-ca.key"
        nebula_cert("ca", "-name", name, "-duration", "2h", "-out-crt", str(crt), "-out-key", str(key))
        return crt, key

    def sign(self, name: str, ip: str, file: str = "", ca: tuple[Path, Path] | None = None) -> str:
        crt = self.peers / (file or f"{name}.crt")
        ca_crt, ca_key = ca or self.ca
        nebula_cert(
            "sign", "-ca-crt", str(ca_crt), "-ca-key", str(ca_key), "-name", name, "-ip", ip,
            "-out-crt", str(crt), "-out-key", str(self.d / f"{crt.stem}.key"),
        )  # fmt: skip
        return json.loads(nebula_cert("print", "-json", "-path", str(crt)))["fingerprint"]

    def config(self, own_name: str = "me", own_ip: str = "10.97.0.9/24", **pki: object) -> Path:
        path = self.d / "config.yml"
        own = self.d / "own.crt"
        if not own.exists():
            nebula_cert(
                "sign", "-ca-crt", str(self.ca[0]), "-ca-key", str(self.ca[1]), "-name", own_name,
                "-ip", own_ip, "-out-crt", str(own), "-out-key", str(self.d / "own.key"),
            )  # fmt: skip
        base = {"ca": str(self.ca[0]), "cert": str(own), "key": str(self.d / "own.key")}
        path.write_text(yaml.safe_dump({"pki": {**base, **pki}, "tun": {"dev": "nebula9"}}))
        return path

    def provider(self, **pki: object) -> NebulaProvider:
        return NebulaProvider(str(self.config(**pki)), str(self.peers))


@pytest.fixture
def pki(tmp_path) -> Pki:
    return Pki(tmp_path)


def cam(cert: str):
    return make_peer("cam", NODE_ID, "view", nebula_cert=cert)


async def test_peer_by_name_or_fingerprint_gets_its_certificates_address(pki):
    fingerprint = pki.sign("cam", "10.97.0.2/24")
    p = pki.provider()
    assert await p.resolve(cam("cam")) == "10.97.0.2"
    assert await p.resolve(cam(fingerprint)) == "10.97.0.2"
    assert p.is_overlay("10.97.0.2") and not p.is_overlay("10.97.1.2")
    assert load_config(p.config_path).dev == "nebula9"


async def test_certificate_from_another_ca_is_refused_even_with_the_right_name(pki):
    pki.sign("cam", "10.97.0.2/24", ca=pki.make_ca("rogue"))
    with pytest.raises(OverlayError, match="not trusted by this node's Nebula CA"):
        await pki.provider().resolve(cam("cam"))


async def test_a_rogue_twin_beside_the_real_certificate_is_ignored(pki):
    pki.sign("cam", "10.97.0.2/24")
    pki.sign("cam", "10.97.0.66/24", file="twin.crt", ca=pki.make_ca("rogue"))
    assert await pki.provider().resolve(cam("cam")) == "10.97.0.2"


async def test_two_valid_certificates_of_one_name_with_different_addresses_are_refused(pki):
    fingerprint = pki.sign("cam", "10.97.0.2/24")
    pki.sign("cam", "10.97.0.3/24", file="cam-new.crt")
    with pytest.raises(OverlayError, match="give different addresses"):
        await pki.provider().resolve(cam("cam"))
    assert await pki.provider().resolve(cam(fingerprint)) == "10.97.0.2"


async def test_blocklisted_certificate_is_refused(pki):
    fingerprint = pki.sign("cam", "10.97.0.2/24")
    with pytest.raises(OverlayError, match=r"pki\.blocklist"):
        await pki.provider(blocklist=[fingerprint]).resolve(cam("cam"))


async def test_inline_ca_in_the_config_is_used(pki):
    pki.sign("cam", "10.97.0.2/24")
    assert await pki.provider(ca=pki.ca[0].read_text()).resolve(cam("cam")) == "10.97.0.2"


async def test_unknown_certificate_and_missing_binding_are_refused(pki):
    pki.sign("cam", "10.97.0.2/24")
    p = pki.provider()
    with pytest.raises(OverlayError, match=r"no certificate 'door'"):
        await p.resolve(cam("door"))
    with pytest.raises(OverlayError, match="no nebula_cert"):
        await p.resolve(make_peer("cam", NODE_ID, "view", address="10.97.0.2"))


async def test_own_address_needs_nebulas_interface(pki):
    with pytest.raises(OverlayError, match=r"nebula9.*does not exist"):
        await pki.provider().local_address()


def test_config_without_pki_is_refused(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("tun: {dev: nebula1}\n")
    with pytest.raises(OverlayError, match=r"no pki\.ca and pki\.cert"):
        load_config(path)
    path.write_text("pki: [unclosed\n")
    with pytest.raises(OverlayError, match="not valid YAML"):
        load_config(path)
