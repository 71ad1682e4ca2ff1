"""The Staex provider with a fake `mcc` (a script following the CLI's contract: `mcc id`,
`mcc resolve ID`) and a loopback HTTP helper in Copybara's shape (/id, /resolve?node-id=,
JSON string bodies). The real mcc needs a Staex network and cannot run here."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from node.config import OverlaySection
from node.overlay import OverlayError, make_provider
from node.overlay.staex import StaexProvider
from node.peers import Peer

pytestmark = pytest.mark.timeout(60)

OWN = "gbkjnr7ydpj13bwjf8wcpwkemrnpfch0cfdtsvvgwpedjaa3we70"
CAM = "h8syf1xcv3rveegh00p89ew8sqbzkr4ckpjz3zs4xxr5tvf4hs4g"
OTHER = "ctnsaj8135fsnm5t1fqda6093g95pjzfdhms77trjk6fy1ks6a80"

FAKE_MCC = """
import json, sys, time
from pathlib import Path
state = json.loads(Path(sys.argv[1]).read_text())
args = sys.argv[2:]
with open(state["log"], "a") as log:
    log.write(json.dumps(args) + "\\n")
time.sleep(state.get("delay", 0))
if args == ["id"]:
    print(state["id"])
elif len(args) == 2 and args[0] == "resolve":
    if args[1] not in state["table"]:
        print(f"error: unknown node {args[1]}", file=sys.stderr)
        sys.exit(2)
    print(state["table"][args[1]])
else:
    print("usage: mcc id | mcc resolve ID", file=sys.stderr)
    sys.exit(64)
"""


class FakeMcc:
    def __init__(self, tmp: Path):
        self.script = tmp / "mcc.py"
        self.script.write_text(FAKE_MCC)
        self.state_file = tmp / "mcc-state.json"
        self.log = tmp / "mcc.log"
        self.state = {"id": OWN, "table": {OWN: "10.83.0.1", CAM: "10.83.0.10"}, "log": str(self.log)}
        self.save()

    def save(self):
        self.state_file.write_text(json.dumps(self.state))

    @property
    def command(self) -> str:
        return f"{sys.executable} {self.script} {self.state_file}"

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def mcc(tmp_path):
    return FakeMcc(tmp_path)


def cam(staex_id: str = "") -> Peer:
    return Peer(name="cam", node_id=CAM if not staex_id else OTHER, staex_id=staex_id)


async def test_own_address_and_peer_resolution_through_mcc(mcc):
    provider = StaexProvider(command=mcc.command)
    assert provider.name == "staex"
    assert await provider.own_id() == OWN
    assert await provider.local_address() == "10.83.0.1"
    assert await provider.resolve(cam()) == "10.83.0.10"
    assert ["resolve", OWN] in mcc.calls() and ["resolve", CAM] in mcc.calls()


async def test_staex_id_in_the_allowlist_takes_precedence_over_the_node_id(mcc):
    mcc.state["table"][CAM] = "10.83.0.7"
    mcc.save()
    assert await StaexProvider(command=mcc.command).resolve(cam(staex_id=CAM)) == "10.83.0.7"
    assert ["resolve", OTHER] not in mcc.calls()


async def test_is_overlay_is_exact_match_on_what_was_resolved_never_substring(mcc):
    provider = StaexProvider(command=mcc.command)
    assert not provider.is_overlay("10.83.0.1")  # nothing resolved yet: nothing is provably overlay
    await provider.local_address()
    await provider.resolve(cam())
    assert provider.is_overlay("10.83.0.1") and provider.is_overlay("10.83.0.10")
    # Copybara's candidate.includes(ip) would accept all of these for 10.83.0.1:
    for other in ("10.83.0.100", "10.83.0.11", "110.83.0.1", "10.83.0.1.local", "10.83.0.2"):
        assert not provider.is_overlay(other), other


async def test_addresses_are_temporary_only_the_latest_resolution_counts(mcc):
    provider = StaexProvider(command=mcc.command)
    assert await provider.resolve(cam()) == "10.83.0.10"
    mcc.state["table"][CAM] = "10.83.0.44"
    mcc.save()
    assert await provider.resolve(cam()) == "10.83.0.44"
    assert provider.is_overlay("10.83.0.44") and not provider.is_overlay("10.83.0.10")


async def test_unknown_peer_is_an_overlay_error_with_mccs_message(mcc):
    provider = StaexProvider(command=mcc.command)
    with pytest.raises(OverlayError, match="unknown node"):
        await provider.resolve(Peer(name="x", node_id=OTHER))


async def test_ids_that_could_read_as_options_never_reach_mcc(mcc):
    provider = StaexProvider(command=mcc.command)
    for bad in ("--help", "../etc/passwd", "a b", "x" * 3, "ABC;rm -rf /"):
        with pytest.raises(OverlayError, match="not a Staex node id"):
            await provider.resolve(Peer(name="x", node_id=CAM, staex_id=bad))
    assert mcc.calls() == []


@pytest.mark.parametrize(
    "output", ["not-an-ip", "mcc.example.org", "224.0.0.251", "0.0.0.0", "10.83.0.1\n10.83.0.2", ""]
)
async def test_resolver_output_that_is_not_one_unicast_address_is_refused(mcc, output):
    mcc.state["table"][CAM] = output
    mcc.save()
    with pytest.raises(OverlayError):
        await StaexProvider(command=mcc.command).resolve(cam())


async def test_hung_mcc_is_killed_after_the_timeout(mcc):
    mcc.state["delay"] = 30
    mcc.save()
    with pytest.raises(OverlayError, match="did not finish"):
        await StaexProvider(command=mcc.command, timeout=0.5).local_address()


async def test_missing_mcc_says_so():
    with pytest.raises(OverlayError, match="is Staex mcc installed"):
        await StaexProvider(command="/nonexistent/mcc").local_address()


class Helper:
    """A loopback MCC-HTTP helper like Copybara's mcc-http.js, backed by a table."""

    def __init__(self):
        self.own = OWN
        self.table = {OWN: "10.83.0.1", CAM: "10.83.0.10"}
        self.requests: list[str] = []
        helper = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                helper.requests.append(self.path)
                url = urlsplit(self.path)
                if url.path == "/id":
                    return self.reply(200, json.dumps(helper.own))
                if url.path == "/resolve":
                    node = parse_qs(url.query).get("node-id", [""])[0]
                    if not node:
                        return self.reply(400, json.dumps("node-id is required"))
                    if node not in helper.table:
                        return self.reply(500, json.dumps(f"unknown node {node}"))
                    return self.reply(200, json.dumps(helper.table[node]))
                return self.reply(404, "")

            def reply(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def helper():
    h = Helper()
    yield h
    h.close()


async def test_http_helper_id_and_resolve(helper):
    provider = StaexProvider(http=helper.url)
    assert await provider.local_address() == "10.83.0.1"
    assert await provider.resolve(cam()) == "10.83.0.10"
    assert helper.requests == ["/id", f"/resolve?node-id={OWN}", f"/resolve?node-id={CAM}"]
    assert provider.is_overlay("10.83.0.10") and not provider.is_overlay("10.83.0.100")


async def test_http_helper_errors_are_overlay_errors(helper):
    provider = StaexProvider(http=helper.url)
    with pytest.raises(OverlayError, match="HTTP 500"):
        await provider.resolve(Peer(name="x", node_id=OTHER))
    helper.table[CAM] = "not an address"
    with pytest.raises(OverlayError, match="not a unicast IP"):
        await provider.resolve(cam())


async def test_http_helper_down(helper):
    url = helper.url
    helper.close()
    with pytest.raises(OverlayError, match="unreachable"):
        await StaexProvider(http=url, timeout=2).local_address()


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.1:9377",
        "http://localhost:9377",
        "https://127.0.0.1:9377",
        "http://mcc.example:9377",
        "ftp://127.0.0.1/",
    ],
)
def test_only_loopback_ip_helpers_are_accepted(url):
    with pytest.raises(OverlayError, match="loopback"):
        StaexProvider(http=url)


def test_make_provider_picks_http_when_configured(helper, mcc):
    assert isinstance(make_provider(OverlaySection(provider="staex", staex_http=helper.url)), StaexProvider)
    assert isinstance(
        make_provider(OverlaySection(provider="staex", staex_command=mcc.command)), StaexProvider
    )
    with pytest.raises(OverlayError, match="empty"):
        make_provider(OverlaySection(provider="staex", staex_command=" "))
