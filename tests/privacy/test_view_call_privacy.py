"""The product's core promise, checked on the wire: a full view call through the CLI
(`media-node run` in namespace A, `media-node view` in namespace B) uses only the two
nodes' overlay addresses. tcpdump watches every interface of both namespaces for the
whole life of both processes:
- no UDP anywhere except between the two overlay addresses (so none on the LAN veth,
  whose only traffic may be Yggdrasil's TCP peering);
- no DNS, mDNS, LLMNR, SSDP or STUN/TURN packet on any interface;
- every link that crossed the file drop, and every SDP in it, names only the two
  overlay addresses, host candidates only;
- the viewer's summary reports the overlay addresses as the selected pair.
Run over real Yggdrasil 0.4.7 (200::/7 on ygg0), the `static` provider over a second
veth (10.99.0.0/24 on ovl0), real WireGuard (wireguard-go, wg0; the camera's daemon runs
as the service user with no capabilities and reads the peer table root exported) and
real Nebula 1.6 (nebula1, a lighthouse on the LAN); the other overlays are up meanwhile,
so gathering on the wrong interface would show. On the LAN the only UDP is WireGuard's
and Nebula's own, between LAN addresses. The Yggdrasil run is repeated with talkback (`view --talk
tone`): the viewer's audio to the camera's speaker follows the same rules."""

from __future__ import annotations

import ipaddress
import json

import pytest

from .callrig import (
    PLACEHOLDERS,
    SERVICE_USER,
    CallRig,
    addresses_in,
    as_service_user,
    host_of,
    media_node,
    sdp_addresses,
)
from .netlab import LAN, LAN_UDP_PORTS, LIGHTHOUSE_LAN, NEBULA, STATIC, WIREGUARD, YGG_PORT, Capture
from .pcap import PrivacyRules, tally

pytestmark = pytest.mark.timeout(240)

UNDERLAY_TEXT = ("169.254.77.", "fd00:77:")
LAN_ADDRESSES = frozenset(ipaddress.ip_address(x) for x in (*LAN["a"], *LAN["b"], LIGHTHOUSE_LAN))


def lan_rules(overlay: frozenset) -> PrivacyRules:
    # Yggdrasil's TCP peering, WireGuard's and Nebula's UDP stay on the LAN in every run:
    # the lab keeps all overlays up; they carry no packet of the node's own.
    return PrivacyRules(
        overlay=overlay,
        lan_interfaces=frozenset({"lan0"}),
        lan_tcp_ports=frozenset({YGG_PORT}),
        lan_udp_ports=LAN_UDP_PORTS,
        lan_addresses=LAN_ADDRESSES,
    )


def overlay_addresses(lab) -> dict[str, list[str]]:
    return {
        "yggdrasil": [lab.ygg[s].address for s in "ab"],
        "static": list(STATIC.values()),
        "wireguard": list(WIREGUARD.values()),
        "nebula": [NEBULA["a"], NEBULA["b"]],
    }


@pytest.mark.parametrize(
    ("provider", "talk"),
    [("yggdrasil", False), ("static", False), ("wireguard", False), ("nebula", False), ("yggdrasil", True)],
)
def test_view_call_uses_only_overlay_addresses(lab, tmp_path, provider, talk):
    if provider == "wireguard":
        # What the unit's ExecStartPre=+ does as root; the daemon then runs unprivileged.
        for side in "ab":
            exported = lab.wg[side].export(media_node())
            assert exported.returncode == 0, exported.stderr
    rig = CallRig(lab, tmp_path, provider, unprivileged=provider == "wireguard", talk=talk)
    a, b = (ipaddress.ip_address(rig.overlay[s]) for s in "ab")
    captures = {side: Capture(lab.ns[side], tmp_path / f"{side}.pcap").start() for side in "ab"}
    try:
        result = rig.view(seconds=3)
    finally:
        packets = [p for c in captures.values() for p in c.stop()]
    print(f"{provider}: {result.timings} {tally(packets)}")
    context = (
        f"\ntimings: {result.timings}\npackets: {tally(packets)}"
        f"\n--- viewer stdout ---\n{result.stdout}\n--- viewer stderr ---\n{result.stderr[-4000:]}"
        f"\n--- daemon log ---\n{result.daemon_log[-4000:]}"
    )

    # The call happened, through the CLI, and the daemon stopped cleanly on SIGTERM.
    assert result.daemon_ready, f"media-node run sent no READY=1 to $NOTIFY_SOCKET{context}"
    assert result.returncode == 0, f"media-node view failed ({result.returncode}){context}"
    summary = result.summary
    assert summary.get("video_frames", 0) > 0, f"no video frames arrived{context}"
    if talk:  # the tone reached the camera's speaker
        assert summary.get("talk_frames", 0) > 0, f"no talk frames sent{context}"
        assert rig.speaker.exists() and rig.speaker.stat().st_size > 48000, f"nothing played{context}"
    assert result.daemon_returncode == 0, (
        f"media-node run exited {result.daemon_returncode} on SIGTERM{context}"
    )

    # On the wire.
    rules = lan_rules(frozenset({a, b}))
    violations = rules.violations(packets)
    assert not violations, "privacy violations on the wire:\n" + "\n".join(violations[:40]) + context
    media = PrivacyRules.overlay_udp(packets, rig.overlay_interface, a, b)
    # Positive control: the capture saw the call itself, on the overlay interface, in both namespaces.
    assert {p.netns for p in media} == {lab.ns["a"].name, lab.ns["b"].name}, "capture missed the call"
    assert len(media) >= 50, f"only {len(media)} overlay UDP packets seen for a 3 s call"

    # In every link and SDP that crossed the file drop.
    kinds = sorted(link.claims.kind for link in result.links)
    assert not result.unopened, f"links the harness could not open: {result.unopened}"
    assert "view-request" in kinds and "answer" in kinds, f"links seen: {kinds}"
    senders = {rig.ids["a"]: a, rig.ids["b"]: b}
    for link in result.links:
        claims = link.claims
        sender = senders[claims.iss]
        where = f"{claims.kind} from {'camera' if sender == a else 'viewer'}"
        if claims.addr:
            assert ipaddress.ip_address(claims.addr) == sender, f"{where}: addr claim {claims.addr}"
        listed = sdp_addresses(claims.sdp)
        assert listed["candidate"], f"{where}: SDP has no candidate"
        assert {ipaddress.ip_address(x) for x in listed["candidate"]} == {sender}, f"{where}: {listed}"
        assert listed["candidate-types"] == {"host"}, f"{where}: {listed}"
        assert not listed["raddr"], f"{where}: {listed}"
        for key in ("c", "o", "rtcp"):
            for value in listed[key]:
                assert ipaddress.ip_address(value) in {sender} | PLACEHOLDERS, f"{where}: {key}= {value}"
        stray = addresses_in(str(claims.to_json())) - {a, b} - PLACEHOLDERS
        assert not stray, f"{where}: addresses other than the two overlay ones: {stray}"

    # In what the viewer reports.
    assert host_of(summary.get("local_address")) == b, (
        f"local_address {summary.get('local_address')}{context}"
    )
    assert host_of(summary.get("remote_address")) == a, (
        f"remote_address {summary.get('remote_address')}{context}"
    )
    # The LAN, and the overlay this call did not use, must not show up in its output.
    unused = [x for p, xs in overlay_addresses(lab).items() if p != provider for x in xs]
    underlay = UNDERLAY_TEXT + tuple(unused)
    for text, what in (
        (result.stdout, "viewer summary"),
        (result.stderr, "viewer log"),
        (result.daemon_log, "daemon log"),
    ):
        leaked = [u for u in underlay if u in text]
        assert not leaked, f"{what} names underlay address(es) {leaked}{context}"
    if provider == "wireguard":
        # The daemon ran as the service user (the camera's key is that user's: it would
        # refuse to start as anyone else) and no private key was read, logged or stored.
        assert rig.homes["a"].key_file.stat().st_uid == int(SERVICE_USER[0])
        for side in "ab":
            secret = lab.wg[side].private_key
            assert secret not in lab.wg[side].table.read_text(), "private key in the exported table"
            assert secret not in result.daemon_log + result.stderr + result.stdout, "private key logged"
        # doctor, as the service user: the interface is up, the table readable, the viewer resolvable.
        doctor = lab.ns["a"].run(
            *as_service_user([*media_node(), "doctor", "--home", str(rig.homes["a"].path), "--json"]),
            check=False,
            timeout=60,
        )
        found = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
        assert found["overlay"]["status"] == "ok", found["overlay"]
        assert "10.98.0.1 on wg0, 1 peer(s)" in found["overlay"]["detail"], found["overlay"]
        assert found["overlay peers"]["status"] == "ok", found["overlay peers"]
    if provider == "nebula":
        # doctor: this node's certificate address is on nebula1, the viewer's certificate verifies.
        doctor = lab.ns["a"].run(
            *media_node(), "doctor", "--home", str(rig.homes["a"].path), "--json", check=False, timeout=60
        )
        found = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
        assert found["overlay"]["status"] == "ok" and NEBULA["a"] in found["overlay"]["detail"], found
        assert found["overlay peers"]["status"] == "ok", found["overlay peers"]
