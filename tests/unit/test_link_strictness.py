"""Links mean one thing to every reader, checked through `media-node link inspect`:
claims are type-exact (`v: true` and `v: 1.0` are not version 1) and a key named twice
in the JWS header or the claims is refused (a last-wins parser and a first-wins parser
would read two different links)."""

from __future__ import annotations

import json
import time
import zlib

import pytest

from node.identity import Identity
from node.links.b64 import b64url_encode
from node.links.jws import payload_digest
from node.links.payload import PAYLOAD_DICTIONARY_V1

from .clirun import invoke
from .linkhelpers import SDP


def run(*args, input=None):
    return invoke(*args, input=input)


@pytest.fixture
def homes(tmp_path):
    cam, viewer = tmp_path / "cam", tmp_path / "viewer"
    ids = {}
    for home in (cam, viewer):
        assert run("init", "--home", home)[0] == 0
        ids[home.name] = run("id", "--home", home)[1].strip()
    assert run("peers", "add", "--home", cam, "viewer", ids["viewer"], "--allow", "view")[0] == 0
    return cam, Identity.load(viewer / "identity.key"), ids


def claims_json(ids, **changes) -> str:
    now = int(time.time())
    claims = {"kind": "view-request", "iss": ids["viewer"], "aud": ids["cam"], "iat": now, "exp": now + 60}
    claims |= {"nonce": b64url_encode(bytes(16)), "sdp": SDP, "v": 1} | changes
    return json.dumps(claims, separators=(",", ":"))


def forge(signer: Identity, claims_text: str, header_text: str | None = None) -> str:
    """A correctly signed link over exactly these JSON texts (no re-serialisation)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, PAYLOAD_DICTIONARY_V1)
    payload = b64url_encode(comp.compress(claims_text.encode()) + comp.flush())
    if header_text is None:
        header_text = json.dumps({"alg": "EdDSA", "typ": "mnode1", "pd": payload_digest(payload)})
    header = b64url_encode(header_text.replace("PD", payload_digest(payload)).encode())
    signature = signer.sign(f"{header}.{payload}".encode())
    return f"mnode:{header}.{payload}.{b64url_encode(signature)}"


def inspect(cam, link: str):
    return run("link", "inspect", "--home", cam, "-", input=link)


def test_the_forgery_helper_makes_links_the_node_accepts(homes):
    """The control: without the defect each forged link below is a valid link."""
    cam, viewer, ids = homes
    code, out, err = inspect(cam, forge(viewer, claims_json(ids)))
    assert code == 0, err
    assert json.loads(out)["claims"]["v"] == 1


@pytest.mark.parametrize("version", ["true", "1.0", "1e0", '"1"'])
def test_version_is_the_integer_one(homes, version):
    cam, viewer, ids = homes
    text = claims_json(ids).replace('"v":1', f'"v":{version}')
    code, _, err = inspect(cam, forge(viewer, text))
    assert code == 3 and err.startswith("rejected: malformed: unsupported link version"), err


def test_a_header_parameter_named_twice_is_refused(homes):
    cam, viewer, ids = homes
    header = '{"alg":"none","alg":"EdDSA","typ":"mnode1","pd":"PD"}'
    code, _, err = inspect(cam, forge(viewer, claims_json(ids), header))
    assert code == 3 and err.startswith("rejected: malformed: the JWS header names a parameter twice"), err


def test_a_claim_named_twice_is_refused(homes):
    cam, viewer, ids = homes
    other = Identity.generate().node_id
    # last-wins reads aud = this camera; a first-wins reader sees another audience
    text = claims_json(ids).replace('"aud":', f'"aud":"{other}","aud":', 1)
    code, _, err = inspect(cam, forge(viewer, text))
    assert code == 3 and err.startswith("rejected: malformed: the claims name a claim twice"), err
    nested = claims_json(ids, kind="error", ofh="x" * 43, err={"code": "busy"}).replace(
        '"code":"busy"', '"code":"busy","code":"internal"'
    )
    code, _, err = inspect(cam, forge(viewer, nested.replace(',"sdp":' + json.dumps(SDP), "")))
    assert code == 3 and "twice" in err, err
