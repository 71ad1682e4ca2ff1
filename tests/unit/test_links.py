import dataclasses
import time

import pytest

from node.identity import Identity
from node.links import LinkError, LinkOpener, ReplayCache, make_link
from node.links.sdp import compact_sdp

from .linkhelpers import SDP, resign, signed_raw, swap_payload


@pytest.fixture
def pair(make_node):
    cam, viewer = make_node("cam"), make_node("viewer")
    cam.trust(viewer, "view")
    viewer.trust(cam, "")
    return cam, viewer


def opener_for(node, replay=True, clock=time.time):
    cache = ReplayCache(node.home.replay_db) if replay else None
    return LinkOpener(node.identity, node.peers, cache, skew=30, clock=clock)


def reason(fn):
    with pytest.raises(LinkError) as e:
        fn()
    return e.value.reason


def test_round_trip_plain_and_sealed(pair):
    cam, viewer = pair
    for sealed in (False, True):
        link = make_link(
            viewer.identity,
            "view-request",
            cam.node_id,
            sdp=SDP,
            addr="100.64.0.1",
            prov="static",
            sealed=sealed,
        )
        assert link.text.startswith("mnode-sealed:" if sealed else "mnode:")
        opened = opener_for(cam).open(link.text)
        assert opened.peer.name == "viewer"
        assert opened.claims.sdp == compact_sdp(SDP)
        assert opened.claims.addr == "100.64.0.1"
        assert opened.sealed is sealed
        assert opened.digest == link.digest


def test_sealed_link_hides_everything(pair):
    cam, viewer = pair
    link = make_link(viewer.identity, "view-request", cam.node_id, sdp=SDP, addr="100.64.0.1", sealed=True)
    for secret in (viewer.node_id, cam.node_id, "100.64.0.1", "eyJ"):
        assert secret not in link.text


def test_answer_binds_to_offer(pair):
    cam, viewer = pair
    request = make_link(viewer.identity, "view-request", cam.node_id, sdp=SDP)
    other = make_link(viewer.identity, "view-request", cam.node_id, sdp=SDP)
    answer = make_link(cam.identity, "answer", viewer.node_id, sdp=SDP, ofh=request.digest)
    assert opener_for(viewer, replay=False).open(answer.text, expect_offer=request.digest)
    assert reason(lambda: opener_for(viewer).open(answer.text, expect_offer=other.digest)) == "wrong-offer"


@pytest.mark.parametrize(
    "case",
    [
        "bad-signature",
        "tampered",
        "wrong-audience",
        "expired",
        "not-yet-valid",
        "replayed",
        "unknown-sender",
        "no-permission",
        "malformed",
        "oversized",
        "unseal-failed",
    ],
)
def test_every_rejection_reason(pair, make_node, case):
    cam, viewer = pair
    stranger = make_node("stranger")
    good = make_link(viewer.identity, "view-request", cam.node_id, sdp=SDP)
    text = {
        "bad-signature": lambda: resign(good.text, stranger.identity),
        "tampered": lambda: swap_payload(
            good.text, dataclasses.replace(good.claims, exp=good.claims.exp + 999)
        ),
        "wrong-audience": lambda: make_link(viewer.identity, "view-request", stranger.node_id, sdp=SDP).text,
        "expired": lambda: (
            make_link(
                viewer.identity, "view-request", cam.node_id, sdp=SDP, ttl=60, now=time.time() - 3600
            ).text
        ),
        "not-yet-valid": lambda: (
            make_link(viewer.identity, "view-request", cam.node_id, sdp=SDP, now=time.time() + 3600).text
        ),
        "replayed": lambda: good.text,
        "unknown-sender": lambda: make_link(stranger.identity, "view-request", cam.node_id, sdp=SDP).text,
        "no-permission": lambda: make_link(viewer.identity, "offer", cam.node_id, sdp=SDP).text,
        "malformed": lambda: "mnode:not.a.link",
        "oversized": lambda: "mnode:" + "A" * 70000,
        "unseal-failed": lambda: (
            make_link(viewer.identity, "view-request", stranger.node_id, sdp=SDP, sealed=True).text
        ),
    }[case]()
    opener = opener_for(cam)
    if case == "replayed":
        opener.open(text)
    assert reason(lambda: opener.open(text)) == case


def test_clock_skew_tolerated(pair):
    cam, viewer = pair
    link = make_link(viewer.identity, "view-request", cam.node_id, sdp=SDP, now=time.time() + 20)
    assert opener_for(cam).open(link.text)
    late = make_link(viewer.identity, "view-request", cam.node_id, sdp=SDP, ttl=10, now=time.time() - 35)
    assert opener_for(cam).open(late.text)


def test_replay_cache_survives_restart_and_prunes(pair):
    cam, viewer = pair
    link = make_link(viewer.identity, "view-request", cam.node_id, sdp=SDP)
    opener_for(cam).open(link.text)
    assert reason(lambda: opener_for(cam).open(link.text)) == "replayed"  # a new cache object, same file
    cache = ReplayCache(cam.home.replay_db)
    assert cache.claim("x", "n", exp=int(time.time()) - 1000)
    cache.claim("y", "m", exp=int(time.time()) + 100)  # the insert prunes expired entries
    assert cache.claim("x", "n", exp=int(time.time()) + 100)  # pruned, so claimable again
    assert not cache.claim("y", "m", exp=int(time.time()) + 100)  # still held


def test_structural_checks(pair):
    cam, viewer = pair
    for payload in (b"", b"\x00" * 10, b"not deflate at all"):
        assert reason(lambda p=payload: opener_for(cam).open(signed_raw(viewer.identity, p))) == "malformed"
    with pytest.raises(ValueError):
        make_link(viewer.identity, "hello", cam.node_id)
    with pytest.raises(LinkError, match="must carry an SDP"):
        make_link(viewer.identity, "offer", cam.node_id)
    with pytest.raises(LinkError, match="ofh"):
        make_link(cam.identity, "answer", viewer.node_id, sdp=SDP)


def test_identity_from_other_process_verifies(pair):
    cam, viewer = pair
    again = Identity.load(viewer.home.key_file)
    link = make_link(again, "view-request", cam.node_id, sdp=SDP)
    assert opener_for(cam).open(link.text).peer.name == "viewer"


def test_broken_allowlist_is_named_not_blamed_on_the_link(pair):
    cam, viewer = pair
    link = make_link(viewer.identity, "view-request", cam.node_id, sdp=SDP)
    cam.home.peers_file.write_text("[peers.viewer\n")  # a hand edit gone wrong
    with pytest.raises(LinkError) as e:
        opener_for(cam).open(link.text)
    assert e.value.reason == "allowlist-unreadable" and "peers.toml" in e.value.detail
    cam.home.peers_file.unlink()  # repaired: the same link is still good (its nonce was not used)
    cam.trust(viewer, "view")
    assert opener_for(cam).open(link.text).peer.name == "viewer"


def test_json_with_a_huge_integer_is_malformed(pair):
    import zlib

    from node.links.payload import PAYLOAD_DICTIONARY_V1

    from .linkhelpers import signed_raw

    cam, viewer = pair
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, PAYLOAD_DICTIONARY_V1)
    payload = comp.compress(b'{"v":' + b"9" * 5000 + b"}") + comp.flush()
    with pytest.raises(LinkError) as e:
        LinkOpener(cam.identity, None).open(signed_raw(viewer.identity, payload))
    assert e.value.reason == "malformed" and "not JSON" in e.value.detail


def test_sealed_offer_has_the_same_digest_and_is_smaller_than_sealing_text(pair):
    from node.links.link import SEALED_PREFIX
    from node.links.seal import pack_jws, unpack_jws

    cam, viewer = pair
    sealed = make_link(viewer.identity, "view-request", cam.node_id, sdp=SDP, sealed=True)
    opened = opener_for(cam).open(sealed.text)
    assert opened.digest == sealed.digest and opened.jws == sealed.jws
    assert unpack_jws(pack_jws(sealed.jws)) == sealed.jws
    # binary sealing: about the plain link's length plus the box's 48 bytes, not a third more
    plain_len = len(sealed.jws) + len("mnode:")
    assert len(sealed.text) - len(SEALED_PREFIX) < plain_len + 80
