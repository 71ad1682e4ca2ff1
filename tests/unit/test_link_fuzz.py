"""Property-based fuzzing of link decoding: arbitrary input and mutations of valid links
never raise anything but LinkError (and never crash the caller)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.identity import Identity
from node.links import LinkError, LinkOpener, make_link
from node.links.b64 import b64url_encode
from node.links.jws import sign_compact

from .linkhelpers import SDP

CAM = Identity.from_seed(bytes(range(32)))
VIEWER = Identity.from_seed(bytes(range(1, 33)))
NOW = 1_800_000_000
VALID = [
    make_link(VIEWER, "view-request", CAM.node_id, sdp=SDP, addr="100.64.0.1", now=NOW).text,
    make_link(VIEWER, "view-request", CAM.node_id, sdp=SDP, sealed=True, now=NOW).text,
    make_link(VIEWER, "error", CAM.node_id, ofh="x", err={"code": "busy"}, now=NOW).text,
]
OPENER = LinkOpener(CAM, None, None, clock=lambda: NOW)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def must_reject_or_accept(data):
    """Only LinkError, and never from the last-resort catch-all in LinkOpener.open: a
    decoder bug must show up here, not hide behind a generic 'malformed'."""
    try:
        OPENER.open(data)
    except LinkError as e:
        assert not e.detail.startswith("unreadable link"), e.detail


def test_valid_links_open():
    for text in VALID:
        OPENER.open(text)


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data):
    must_reject_or_accept(data)


@FUZZ
@given(st.text(max_size=2048))
def test_arbitrary_text(text):
    must_reject_or_accept(text)
    must_reject_or_accept("mnode:" + text)
    must_reject_or_accept("mnode-sealed:" + text)


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_links(text, data):
    pos = data.draw(st.integers(0, len(text) - 1))
    op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
    ch = data.draw(st.characters(codec="ascii"))
    mutated = {
        "flip": text[:pos] + ch + text[pos + 1 :],
        "delete": text[:pos] + text[pos + 1 :],
        "insert": text[:pos] + ch + text[pos:],
        "truncate": text[:pos],
        "duplicate": text[:pos] + text[pos : pos + 40] + text[pos:],
    }[op]
    must_reject_or_accept(mutated)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=512),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=6),
            max_leaves=20,
        ).map(lambda v: repr(v).encode()),
    )
)
def test_validly_signed_garbage_payloads(payload):
    """Correct signature and digest, hostile content: still only LinkError."""
    must_reject_or_accept("mnode:" + sign_compact(VIEWER, payload))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            ["v", "kind", "iss", "aud", "iat", "exp", "nonce", "addr", "prov", "sdp", "ofh", "err", "zz"]
        ),
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.text(max_size=60)
        | st.floats()
        | st.lists(st.integers(), max_size=3)
        | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    )
)
def test_signed_hostile_claims(claims):
    import json
    import zlib

    from node.links.payload import PAYLOAD_DICTIONARY_V1

    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, PAYLOAD_DICTIONARY_V1)
    raw = json.dumps(claims, allow_nan=True).encode()
    must_reject_or_accept("mnode:" + sign_compact(VIEWER, comp.compress(raw) + comp.flush()))


def test_decompression_bomb_is_refused():
    import zlib

    from node.links.payload import PAYLOAD_DICTIONARY_V1

    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, PAYLOAD_DICTIONARY_V1)
    bomb = comp.compress(b"{" + b" " * 50_000_000) + comp.flush()
    assert len(bomb) < 64 * 1024
    with pytest.raises(LinkError) as e:
        OPENER.open("mnode:" + sign_compact(VIEWER, bomb))
    assert e.value.reason == "malformed"


def test_b64_is_strict():
    from node.links.b64 import b64url_decode

    assert b64url_decode(b64url_encode(b"\xff\xfe")) == b"\xff\xfe"
    for bad in ("a", "ab=", "a+b/", "_x", " AA"):
        with pytest.raises(ValueError):
            b64url_decode(bad)


@FUZZ
@given(st.binary(max_size=2048))
def test_sealed_garbage_for_the_right_recipient(data):
    """Content sealed with the recipient's real key but not a binary JWS."""
    from nacl.public import SealedBox

    box = SealedBox(CAM.signing_key.verify_key.to_curve25519_public_key()).encrypt(data)
    must_reject_or_accept("mnode-sealed:" + b64url_encode(box))
