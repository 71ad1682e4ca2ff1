"""The browser viewer on the wire: headless Chromium in the viewer's namespace opens
`media-node web` (127.0.0.1) and watches the camera, which `media-node run` serves over
real Yggdrasil. tcpdump watches every interface of both namespaces:
- off loopback, the same rules as a CLI view: UDP only between the two overlay
  addresses, the LAN carries only Yggdrasil's own TCP peering, no DNS/mDNS/STUN;
- the browser leg stays on the viewer's loopback interface, between the viewer host's
  own addresses (none of it leaves the host);
- every link that crossed the file drop names only the two overlay addresses."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from .callrig import PLACEHOLDERS, CallRig, LinkCollector, addresses_in, media_node, wait_ready
from .netlab import Capture
from .pcap import UDP, PrivacyRules, read_sll2, tally
from .test_view_call_privacy import lan_rules

pytestmark = pytest.mark.timeout(240)


class LoopbackCapture(Capture):
    """Capture on every interface, loopback included. On `any`, libpcap sees each
    loopback packet twice and keeps one: the filter counts the other copy as received,
    not captured. Exactly that many is not a loss; anything else still is."""

    def stop(self) -> list:
        try:
            return super().stop()
        except RuntimeError:
            counts = {
                k: int(v)
                for v, k in re.findall(
                    r"(\d+) packets? (captured|received by filter|dropped by kernel)", self.stats
                )
            }
            packets = read_sll2(self.path, self.netns.name, self.interfaces)
            on_lo = sum(1 for p in packets if p.interface == "lo")
            missing = counts.get("received by filter", 0) - counts.get("captured", 0)
            if counts.get("dropped by kernel") or missing != on_lo:
                raise
            return packets


CHROMIUM_SERVICES = (".google.com.", ".googleapis.com.", ".gvt1.com.", ".gstatic.com.", ".chrome.com.")


def _dns_names(pcap) -> set[str]:
    """The names asked in DNS queries in a capture (tcpdump's own decoding)."""
    out = subprocess.run(
        ["tcpdump", "-nr", str(pcap), "udp port 53"], capture_output=True, text=True, timeout=60
    )
    return set(re.findall(r"\? (\S+\.) \(", out.stdout))


def _addrs(ns) -> set:
    return {
        ipaddress.ip_address(info["local"])
        for iface in json.loads(ns.run("ip", "-j", "addr").stdout)
        for info in iface.get("addr_info", [])
    }


def _start(argv: list[str], log, env=None) -> subprocess.Popen:
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_a_browser_view_through_media_node_web_keeps_to_the_overlay(lab, tmp_path):
    from browsers import Chromium

    rig = CallRig(lab, tmp_path, "yggdrasil")
    a, b = (ipaddress.ip_address(rig.overlay[s]) for s in "ab")
    ns_a, ns_b = lab.ns["a"], lab.ns["b"]
    notify_dir = tempfile.mkdtemp(prefix="mnp")
    notify_path = os.path.join(notify_dir, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    env.pop("WATCHDOG_USEC", None)
    captures = {side: LoopbackCapture(lab.ns[side], tmp_path / f"{side}.pcap").start() for side in "ab"}
    procs = []
    try:
        with LinkCollector(list(rig.homes.values())) as links:
            with open(tmp_path / "daemon.log", "wb") as log:
                procs.append(
                    _start(
                        ns_a.argv(*media_node(), "-v", "run", "--home", str(rig.homes["a"].path)), log, env
                    )
                )
            assert wait_ready(notify, procs[0], 30), (tmp_path / "daemon.log").read_text()[-3000:]
            out = tmp_path / "web.out"
            with open(out, "wb") as stdout, open(tmp_path / "web.log", "wb") as log:
                web = subprocess.Popen(
                    ns_b.argv(
                        *media_node(),
                        "-v",
                        "web",
                        "--home",
                        str(rig.homes["b"].path),
                        "--port",
                        "0",
                        "--via",
                        f"file:{rig.homes['a'].path}",
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=log,
                )
            procs.append(web)
            deadline = time.monotonic() + 30
            while not out.read_text().strip() and time.monotonic() < deadline and web.poll() is None:
                time.sleep(0.1)
            url = out.read_text().split()[0]
            # Chromium's own background traffic (component updates, safe browsing: DNS on
            # the LAN) is the browser's, not the viewer's: switched off, as a user can.
            quiet = ["--disable-background-networking", "--disable-component-update", "--no-pings"]
            with Chromium(tmp_path / "chromium", ns_b.argv(), quiet) as browser:
                browser.open(url + "&view=camera")
                deadline = time.monotonic() + 40
                total = 0
                while time.monotonic() < deadline and total < 30:
                    total = browser.evaluate("mn.quality().total") or 0
                    time.sleep(0.25)
                browser.evaluate("mn.closeView()")
            assert total >= 30, (
                f"the page decoded {total} frames:\n{(tmp_path / 'web.log').read_text()[-3000:]}"
            )
    finally:
        for proc in reversed(procs):
            _stop(proc)
        packets = [p for c in captures.values() for p in c.stop()]
        notify.close()
        os.unlink(notify_path)
        os.rmdir(notify_dir)
    print(f"web view: {tally(packets)}")

    # Chromium's own background lookups (its component updater: clients2.google.com,
    # update.googleapis.com, ...) are the browser's, whoever serves the page: they are
    # told apart by name, and nothing else may use DNS (media-node never resolves).
    names = _dns_names(tmp_path / "b.pcap")
    assert names and all(n.endswith(CHROMIUM_SERVICES) for n in names), f"DNS lookups: {names}"
    # Chromium also announces the random mDNS name it gives the page's host candidate
    # (`<uuid>.local`, multicast on each link, with its IGMP join): the browser's too,
    # and what docs/web.md tells users to expect.
    b_addrs = _addrs(ns_b)
    mdns = [ipaddress.ip_address("224.0.0.251"), ipaddress.ip_address("224.0.0.22")]
    browser_own = [
        p
        for p in packets
        if (53 in (p.sport, p.dport) and (p.netns == ns_b.name or p.src in b_addrs))
        or (p.src in b_addrs and p.dst in mdns)
    ]
    # Off loopback: exactly a CLI view's rules.
    wire = [p for p in packets if p.interface != "lo" and p not in browser_own]
    rules = lan_rules(frozenset({a, b}))  # the other overlays' own LAN traffic, as for a CLI view
    violations = rules.violations(wire)
    assert not violations, (
        "privacy violations on the wire:\n" + "\n".join(violations[:40]) + f"\n{tally(packets)}"
    )
    assert len(PrivacyRules.overlay_udp(wire, "ygg0", a, b)) >= 50, "capture missed the camera leg"
    # The browser leg: UDP on the viewer's loopback only, between its own addresses.
    own_b = b_addrs
    leg = [p for p in packets if p.proto == UDP and p.netns == ns_b.name and p.interface == "lo"]
    assert len(leg) >= 50, f"capture missed the browser leg: {tally(packets)}"
    strays = [p for p in leg if p.src not in own_b or p.dst not in own_b]
    assert not strays, f"browser leg packets not between this host's addresses: {strays[:10]}"
    # The links: only the two overlay addresses.
    opened, failed = rig.open_links(links.texts())
    assert not failed and opened, (opened, failed)
    for link in opened:
        stray = addresses_in(str(link.claims.to_json())) - {a, b} - PLACEHOLDERS
        assert not stray, f"{link.claims.kind}: addresses other than the two overlay ones: {stray}"
