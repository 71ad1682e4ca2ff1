"""docs/link-format.md's test vectors: current, and verifiable by a third party with a
stock JOSE library (PyJWT) that the package itself never uses."""

import base64
import json
import re
import zlib
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node.identity import Identity
from node.links import LinkOpener, vectors

DOC = (Path(__file__).parents[2] / "docs" / "link-format.md").read_text()
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def between(marker: str) -> str:
    return DOC.split(f"<!-- {marker}:begin -->\n")[1].split(f"\n<!-- {marker}:end -->")[0]


def doc_dictionary() -> bytes:
    block = between("dictionary").strip().strip("`").strip()
    return base64.b64decode("".join(block.split()))


def doc_vectors():
    section = between("vectors")
    links = re.findall(r"```\n(mnode:[^\n]+)\n```", section)
    claims = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", section, re.S)]
    seeds = re.findall(r"signer seed \(hex\): `([0-9a-f]{64})`", section)
    assert len(links) == len(claims) == len(seeds) == 3
    return list(zip(seeds, claims, links, strict=False))


def test_doc_is_current():
    assert between("vectors").strip() == vectors.markdown().strip()
    from node.links.payload import PAYLOAD_DICTIONARY_V1

    assert doc_dictionary() == PAYLOAD_DICTIONARY_V1


def key_from_node_id(node_id: str) -> Ed25519PublicKey:
    n = 0
    for c in node_id:
        n = n * 32 + ALPHABET.index(c)
    return Ed25519PublicKey.from_public_bytes((n >> 4).to_bytes(32, "big"))


def inflate(data: bytes, dictionary: bytes) -> bytes:
    return zlib.decompressobj(-15, zdict=dictionary).decompress(data)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_third_party_verifies_vector(index):
    seed, claims, link = doc_vectors()[index]
    dictionary = doc_dictionary()
    jws = link.removeprefix("mnode:")
    # The signer's key comes from the iss claim, as a third party would do it.
    payload_segment = jws.split(".")[1]
    unverified = json.loads(
        inflate(base64.urlsafe_b64decode(payload_segment + "=" * (-len(payload_segment) % 4)), dictionary)
    )
    key = key_from_node_id(unverified["iss"])
    payload = jwt.api_jws.PyJWS().decode(jws, key, algorithms=["EdDSA"])
    assert json.loads(inflate(payload, dictionary)) == claims
    # ... and the key in iss is the seed's public key.
    assert unverified["iss"] == Identity.from_seed(bytes.fromhex(seed)).node_id
    # A flipped signature byte fails the stock verifier too.
    head, body, sig = jws.split(".")
    forged = f"{head}.{body}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
    with pytest.raises(jwt.exceptions.InvalidSignatureError):
        jwt.api_jws.PyJWS().decode(forged, key, algorithms=["EdDSA"])


def test_vectors_open_with_our_code():
    seed_a, _, request = doc_vectors()[0]
    _, _, answer = doc_vectors()[1]
    camera = Identity.from_seed(vectors.SEED_B)
    viewer = Identity.from_seed(vectors.SEED_A)
    clock = lambda: vectors.IAT + 5  # noqa: E731
    opened = LinkOpener(camera, None, None, clock=clock).open(request)
    assert opened.claims.kind == "view-request" and opened.claims.addr == vectors.ADDR_A
    answered = LinkOpener(viewer, None, None, clock=clock).open(answer, expect_offer=opened.digest)
    assert answered.claims.ofh == opened.digest


def test_offer_fits_a_chat_message():
    for title, plain, _ in vectors.sizes():
        assert plain <= 1000, title
