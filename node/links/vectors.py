"""Link format v1 test vectors: fixed seeds, claims and the links they produce.

Ed25519 signatures and raw DEFLATE are deterministic, so make_link with these inputs
always yields these exact links; docs/link-format.md prints them (`python -m
node.links.vectors` regenerates that section) and tests verify them with a stock JOSE
library. The SDPs are real aiortc 1.16.0 output moved onto Yggdrasil addresses."""

from __future__ import annotations

import json
from typing import Any

from ..identity import Identity
from .link import make_link

SEED_A = bytes(range(32))  # the viewer
SEED_B = bytes(range(32, 64))  # the camera
IAT = 1798761600  # 2027-01-01T00:00:00Z
ADDR_A = "201:2515:516c:32b7:96d4:f61e:16cd:ffd8"
ADDR_B = "202:3f2a:59f9:ad1e:1263:8143:6a36:49de"

OFFER_SDP = (
    "v=0\r\n"
    "o=- 4004295607 4004295607 IN IP4 0.0.0.0\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "a=msid-semantic:WMS *\r\n"
    "m=audio 54584 UDP/TLS/RTP/SAVPF 96 9 0 8\r\n"
    "c=IN IP6 201:2515:516c:32b7:96d4:f61e:16cd:ffd8\r\n"
    "a=recvonly\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=mid:0\r\n"
    "a=msid:496aa37c-e919-4ec5-a1b7-a4e8aeb9f524 9a41ba58-d895-417f-be66-09f714a43ef2\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=rtcp-mux\r\n"
    "a=ssrc:1412430270 cname:b7e18748-51ea-4289-ae00-03878364d3de\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 201:2515:516c:32b7:96d4:f61e:16cd:ffd8 54584 typ host\r\n"
    "a=end-of-candidates\r\n"
    "a=ice-ufrag:pg7s\r\n"
    "a=ice-pwd:jGIpR5Pp6hpB0UvD1F48Ll\r\n"
    "a=fingerprint:sha-256 BC:11:8A:88:3D:E0:D4:C3:D1:76:3C:29:8A:F0:4D:CD:B5:B2:DD:DA:60:1C:ED:FC:96:44:E5:F3:9C:EE:F8:69\r\n"
    "a=setup:actpass\r\n"
    "m=video 54584 UDP/TLS/RTP/SAVPF 101 102\r\n"
    "c=IN IP6 201:2515:516c:32b7:96d4:f61e:16cd:ffd8\r\n"
    "a=recvonly\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=mid:1\r\n"
    "a=msid:496aa37c-e919-4ec5-a1b7-a4e8aeb9f524 3b28158d-a80b-4952-860b-ebb711e0a3ac\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=rtcp-mux\r\n"
    "a=ssrc-group:FID 369178834 1034810152\r\n"
    "a=ssrc:369178834 cname:b7e18748-51ea-4289-ae00-03878364d3de\r\n"
    "a=ssrc:1034810152 cname:b7e18748-51ea-4289-ae00-03878364d3de\r\n"
    "a=rtpmap:101 H264/90000\r\n"
    "a=rtcp-fb:101 nack\r\n"
    "a=rtcp-fb:101 nack pli\r\n"
    "a=rtcp-fb:101 goog-remb\r\n"
    "a=fmtp:101 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    "a=rtpmap:102 rtx/90000\r\n"
    "a=fmtp:102 apt=101\r\n"
    "a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 201:2515:516c:32b7:96d4:f61e:16cd:ffd8 54584 typ host\r\n"
    "a=end-of-candidates\r\n"
    "a=ice-ufrag:pg7s\r\n"
    "a=ice-pwd:jGIpR5Pp6hpB0UvD1F48Ll\r\n"
    "a=fingerprint:sha-256 BC:11:8A:88:3D:E0:D4:C3:D1:76:3C:29:8A:F0:4D:CD:B5:B2:DD:DA:60:1C:ED:FC:96:44:E5:F3:9C:EE:F8:69\r\n"
    "a=setup:actpass\r\n"
)

ANSWER_SDP = (
    "v=0\r\n"
    "o=- 4004295607 4004295607 IN IP4 0.0.0.0\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "a=msid-semantic:WMS *\r\n"
    "m=audio 43050 UDP/TLS/RTP/SAVPF 96 9 0 8\r\n"
    "c=IN IP6 202:3f2a:59f9:ad1e:1263:8143:6a36:49de\r\n"
    "a=sendonly\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=mid:0\r\n"
    "a=msid:438b2ae1-5f73-4d0e-9b7b-ad411770197b bba47c68-58f3-486c-bd8e-563b6854b7dd\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=rtcp-mux\r\n"
    "a=ssrc:176612151 cname:4b478571-f19b-46a4-8d1d-377453998cc6\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 202:3f2a:59f9:ad1e:1263:8143:6a36:49de 43050 typ host\r\n"
    "a=end-of-candidates\r\n"
    "a=ice-ufrag:8W6X\r\n"
    "a=ice-pwd:DUaIOMl9grzK0vh29FETZC\r\n"
    "a=fingerprint:sha-256 6E:89:B1:EC:AA:9E:1D:CA:8E:FE:3E:FA:5E:76:AE:3A:07:AC:AE:12:F6:9C:E4:02:30:2C:7B:02:86:E5:5F:DC\r\n"
    "a=setup:active\r\n"
    "m=video 43050 UDP/TLS/RTP/SAVPF 101 102\r\n"
    "c=IN IP6 202:3f2a:59f9:ad1e:1263:8143:6a36:49de\r\n"
    "a=sendonly\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=mid:1\r\n"
    "a=msid:438b2ae1-5f73-4d0e-9b7b-ad411770197b b69ee838-544e-449b-ade4-fdbd509d7e32\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=rtcp-mux\r\n"
    "a=ssrc-group:FID 936705955 917927477\r\n"
    "a=ssrc:936705955 cname:4b478571-f19b-46a4-8d1d-377453998cc6\r\n"
    "a=ssrc:917927477 cname:4b478571-f19b-46a4-8d1d-377453998cc6\r\n"
    "a=rtpmap:101 H264/90000\r\n"
    "a=rtcp-fb:101 nack\r\n"
    "a=rtcp-fb:101 nack pli\r\n"
    "a=rtcp-fb:101 goog-remb\r\n"
    "a=fmtp:101 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    "a=rtpmap:102 rtx/90000\r\n"
    "a=fmtp:102 apt=101\r\n"
    "a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 202:3f2a:59f9:ad1e:1263:8143:6a36:49de 43050 typ host\r\n"
    "a=end-of-candidates\r\n"
    "a=ice-ufrag:8W6X\r\n"
    "a=ice-pwd:DUaIOMl9grzK0vh29FETZC\r\n"
    "a=fingerprint:sha-256 6E:89:B1:EC:AA:9E:1D:CA:8E:FE:3E:FA:5E:76:AE:3A:07:AC:AE:12:F6:9C:E4:02:30:2C:7B:02:86:E5:5F:DC\r\n"
    "a=setup:active\r\n"
)


def vectors() -> list[dict[str, Any]]:  # JSON documents (docs/link-format.md)
    a, b = Identity.from_seed(SEED_A), Identity.from_seed(SEED_B)
    request = make_link(
        a,
        "view-request",
        b.node_id,
        ttl=120,
        sdp=OFFER_SDP,
        addr=ADDR_A,
        prov="yggdrasil",
        now=IAT,
        nonce="AAECAwQFBgcICQoLDA0ODw",
    )
    answer = make_link(
        b,
        "answer",
        a.node_id,
        ttl=120,
        sdp=ANSWER_SDP,
        addr=ADDR_B,
        prov="yggdrasil",
        ofh=request.digest,
        now=IAT + 1,
        nonce="EBESExQVFhcYGRobHB0eHw",
    )
    busy = make_link(
        b,
        "error",
        a.node_id,
        ttl=60,
        ofh=request.digest,
        err={"code": "busy", "message": "4 calls active (calls.max_calls = 4)"},
        now=IAT + 1,
        nonce="ICEiIyQlJicoKSorLC0uLw",
    )
    out = []
    for title, signer, link in (
        ("view-request (viewer A to camera B)", SEED_A, request),
        ("answer (camera B to viewer A)", SEED_B, answer),
        ("error: busy (camera B to viewer A)", SEED_B, busy),
    ):
        out.append(
            {
                "title": title,
                "seed": signer.hex(),
                "claims": link.claims.to_json(),
                "link": link.text,
                "node_id": Identity.from_seed(signer).node_id,
            }
        )
    return out


def sizes() -> list[tuple[str, int, int]]:
    """(what, plain characters, sealed characters) for the vector links."""
    from .b64 import b64url_encode
    from .link import SEALED_PREFIX
    from .seal import pack_jws

    out = []
    for v in vectors():
        binary = pack_jws(v["link"].removeprefix("mnode:"))
        # a sealed box adds 48 bytes (ephemeral public key + MAC) around the binary JWS
        sealed = len(SEALED_PREFIX) + len(b64url_encode(bytes(len(binary) + 48)))
        out.append((v["title"], len(v["link"]), sealed))
    return out


def dictionary_base64() -> str:
    import base64
    import textwrap

    from .payload import PAYLOAD_DICTIONARY_V1

    return "\n".join(textwrap.wrap(base64.b64encode(PAYLOAD_DICTIONARY_V1).decode(), 76))


def markdown() -> str:
    parts = ["| link | characters | sealed |", "|---|---|---|"]
    parts += [f"| {title} | {plain} | {sealed} |" for title, plain, sealed in sizes()]
    parts.append("")
    for i, v in enumerate(vectors(), 1):
        parts.append(f"### Vector {i}: {v['title']}\n")
        parts.append(f"- signer seed (hex): `{v['seed']}`")
        parts.append(f"- signer node id: `{v['node_id']}`")
        parts.append(f"- link ({len(v['link'])} characters):\n")
        parts.append("```\n" + v["link"] + "\n```\n")
        parts.append("Claims (the inflated payload):\n")
        parts.append("```json\n" + json.dumps(v["claims"], indent=2) + "\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(markdown())
