"""The CLI end to end: init, id, peers, link make / link inspect, and every rejection
reason produced through `media-node link inspect`."""

import dataclasses
import json
import subprocess
import sys
import time

import pytest

from node.identity import Identity
from node.links import make_link

from .clirun import invoke
from .linkhelpers import SDP, resign, swap_payload


def run(*args, input=None):
    return invoke(*args, input=input)


@pytest.fixture
def homes(tmp_path):
    """A camera and a viewer home made through the CLI, the camera trusting the viewer."""
    cam, viewer, stranger = (tmp_path / n for n in ("cam", "viewer", "stranger"))
    ids = {}
    for home in (cam, viewer, stranger):
        code, out, _ = run("init", "--home", home)
        assert code == 0
        ids[home.name] = out.strip().splitlines()[-1]
    assert run("peers", "add", "--home", cam, "viewer", ids["viewer"], "--allow", "view")[0] == 0
    assert run("peers", "add", "--home", viewer, "cam", ids["cam"], "--allow", "")[0] == 0
    return cam, viewer, stranger, ids


def test_init_and_id(tmp_path):
    home = tmp_path / "h"
    code, out, _ = run("init", "--home", home, "--name", "door")
    node_id = out.strip().splitlines()[-1]
    assert code == 0 and len(node_id) == 52
    assert (home / "identity.key").stat().st_mode & 0o777 == 0o600
    assert 'name = "door"' in (home / "config.toml").read_text()
    for d in ("inbox", "outbox", "done", "rejected", "work"):
        assert (home / d).is_dir()
    assert run("id", "--home", home)[1].strip() == node_id
    code, _, err = run("init", "--home", home)
    assert code != 0 and "already has an identity" in err


def test_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIA_NODE_HOME", str(tmp_path / "envhome"))
    code, out, _ = run("init")
    assert code == 0 and (tmp_path / "envhome" / "identity.key").exists()
    assert run("id")[1] == out.splitlines()[-1] + "\n"


def test_world_readable_key_refused_by_every_command(homes):
    cam, *_ = homes
    (cam / "identity.key").chmod(0o644)
    for args in (("id",), ("link", "make", "error", "--to", "viewer", "--error-code", "x", "--answers", "y")):
        code, _, err = run(*args, "--home", cam)
        assert code == 1 and "chmod 600" in err


def test_peers_commands(homes):
    cam, _, _, ids = homes
    code, out, _ = run("peers", "list", "--home", cam, "--json")
    assert json.loads(out)["viewer"]["allow"] == ["view"]
    code, _, err = run("peers", "add", "--home", cam, "x", "nonsense")
    assert code == 1 and "52 characters" in err
    code, _, err = run("peers", "add", "--home", cam, "x", ids["stranger"], "--allow", "root")
    assert code == 1 and "unknown permission" in err
    assert run("peers", "remove", "--home", cam, "viewer")[0] == 0
    assert run("peers", "list", "--home", cam)[1] == ""
    code, _, err = run("peers", "remove", "--home", cam, "viewer")
    assert code == 1 and "no peer" in err


def test_make_and_inspect(homes, tmp_path):
    cam, viewer, _, ids = homes
    sdp = tmp_path / "offer.sdp"
    sdp.write_text(SDP)
    code, link, _ = run("link", "make", "--home", viewer, "view-request", "--to", "cam", "--sdp-file", sdp)
    assert code == 0 and link.startswith("mnode:")
    code, out, _ = run("link", "inspect", "--home", cam, link.strip())
    assert code == 0
    shown = json.loads(out)
    assert shown["valid"] and shown["peer"] == "viewer"
    assert shown["claims"]["kind"] == "view-request" and shown["claims"]["iss"] == ids["viewer"]
    # from stdin, sealed
    code, sealed, _ = run(
        "link", "make", "--home", viewer, "view-request", "--to", ids["cam"], "--sdp-file", sdp, "--seal"
    )
    assert sealed.startswith("mnode-sealed:")
    code, out, _ = run("link", "inspect", "--home", cam, "-", input=sealed)
    assert code == 0 and json.loads(out)["sealed"] is True
    # an answer checked against the offer it answers
    code, answer, _ = run(
        "link",
        "make",
        "--home",
        cam,
        "answer",
        "--to",
        "viewer",
        "--sdp-file",
        sdp,
        "--answers",
        shown["digest"],
    )
    code, out, err = run("link", "inspect", "--home", viewer, answer.strip(), "--offer", link.strip())
    assert code == 0, err
    code, _, err = run("link", "inspect", "--home", viewer, answer.strip(), "--offer", shown["digest"])
    assert code == 0
    other = json.loads(run("link", "inspect", "--home", cam, "-", input=sealed)[1])["digest"]
    code, _, err = run("link", "inspect", "--home", viewer, answer.strip(), "--offer", other)
    assert code == 3 and err.startswith("rejected: wrong-offer")
    code, _, err = run("link", "inspect", "--home", viewer, answer.strip(), "--offer", sealed.strip())
    assert code == 1 and "digest" in err


def test_make_needs_sdp_and_valid_recipient(homes):
    _, viewer, _, _ = homes
    code, _, err = run("link", "make", "--home", viewer, "offer", "--to", "cam")
    assert code == 1 and "--sdp-file" in err
    code, _, err = run("link", "make", "--home", viewer, "error", "--to", "nobody", "--error-code", "x")
    assert code == 1 and "not a peer name or node id" in err


REASONS = [
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
]


@pytest.mark.parametrize("reason", REASONS)
def test_rejection_reasons_through_cli(homes, reason):
    cam, viewer, stranger, ids = homes
    v, s = Identity.load(viewer / "identity.key"), Identity.load(stranger / "identity.key")
    good = make_link(v, "view-request", ids["cam"], sdp=SDP)
    text = {
        "bad-signature": lambda: resign(good.text, s),
        "tampered": lambda: swap_payload(good.text, dataclasses.replace(good.claims, aud=ids["stranger"])),
        "wrong-audience": lambda: make_link(v, "view-request", ids["stranger"], sdp=SDP).text,
        "expired": lambda: (
            make_link(v, "view-request", ids["cam"], sdp=SDP, ttl=60, now=time.time() - 600).text
        ),
        "not-yet-valid": lambda: (
            make_link(v, "view-request", ids["cam"], sdp=SDP, now=time.time() + 600).text
        ),
        "replayed": lambda: good.text,
        "unknown-sender": lambda: make_link(s, "view-request", ids["cam"], sdp=SDP).text,
        "no-permission": lambda: make_link(v, "offer", ids["cam"], sdp=SDP).text,
        "malformed": lambda: "mnode:eyJhbGciOiJFZERTQSJ9.e30.AAAA",
        "oversized": lambda: "mnode:" + "A" * (64 * 1024 + 1),
        "unseal-failed": lambda: make_link(v, "view-request", ids["stranger"], sdp=SDP, sealed=True).text,
    }[reason]()
    args = ["link", "inspect", "--home", cam, "-", "--replay"]
    if reason == "replayed":
        assert run(*args, input=text)[0] == 0
    code, out, err = run(*args, input=text)
    assert code == 3, (out, err)
    assert err.startswith(f"rejected: {reason}: ")
    assert out == ""


def test_console_script_runs(tmp_path):
    """The installed entry point, not just main() in this process."""
    proc = subprocess.run(
        [sys.executable, "-m", "node.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "overlay" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "node.cli", "id", "--home", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "media-node init" in proc.stderr and "Traceback" not in proc.stderr


def test_peers_add_takes_each_overlay_binding(homes):
    cam, _, _, ids = homes
    key = "Wg" * 21 + "A="
    fingerprint = "ab" * 32
    for option, value, name in (
        ("--wireguard-key", key, "wg"),
        ("--nebula-cert", fingerprint, "neb"),
        ("--tailscale-node", "nodekey:" + "cd" * 32, "ts"),
    ):
        code, _, err = run("peers", "add", "--home", cam, "viewer", ids["viewer"], option, value, "--replace")
        assert code == 0, err
        listed = json.loads(run("peers", "list", "--home", cam, "--json")[1])["viewer"]
        assert listed[option[2:].replace("-", "_")] == value, (name, listed)
    code, _, err = run("peers", "add", "--home", cam, "v2", ids["stranger"], "--wireguard-key", "short")
    assert code != 0 and "44 base64" in err


LOADED = """
import sys
from node.cli import main
main(sys.argv[1:])
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""


def _modules(*args):
    proc = subprocess.run(
        [sys.executable, "-c", LOADED, *map(str, args)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return set(proc.stderr.split()), proc.stdout


def test_the_short_commands_load_only_what_they_use(homes, tmp_path):
    """Start-up time (issue 14): each command's module is imported when it runs, so `id`
    loads no config, allowlist, links or logging, and the link commands no media, aiortc,
    MQTT or web code. (Module sets, not timings: bench/clistart.py measures the time.)"""
    cam, viewer, _, ids = homes
    heavy = {
        "aiortc",
        "av",
        "aioice",
        "paho",
        "aiohttp",
        "node.media",
        "node.calls",
        "node.transports",
        "node.web",
    }
    loaded, out = _modules("id", "--home", cam)
    assert out.strip() == ids["cam"]
    assert not loaded & {"node.config", "node.peers", "node.links", "logging", "json", *heavy}, loaded
    assert "click" not in loaded  # argparse (the standard library) parses the command line
    assert not {m for m in loaded if m.startswith("node.cli.")} - {"node.cli.common", "node.cli.identity"}
    sdp = tmp_path / "offer.sdp"
    sdp.write_text(SDP)
    loaded, out = _modules("link", "make", "view-request", "--to", "cam", "--sdp-file", sdp, "--home", viewer)
    assert out.startswith("mnode:") and not loaded & heavy, loaded & heavy
    # SHA-256 comes from libsodium (already loaded to sign), the replay cache's sqlite3
    # only with a cache: OpenSSL's hashlib and sqlite3 cost ~5 ms together
    assert not loaded & {"_hashlib", "sqlite3"}, loaded & {"_hashlib", "sqlite3"}
    loaded, out = _modules("link", "inspect", out.strip(), "--home", cam)
    assert json.loads(out)["valid"] and not loaded & heavy, loaded & heavy


def test_usage_errors_exit_2_and_name_the_problem(tmp_path):
    """No command, a group without its subcommand, an unknown command or choice, a
    missing argument, an option that does not exist: exit 2 on stderr, nothing on stdout."""
    home = tmp_path / "h"
    cases = [
        ((), "commands:\n  bench"),
        (("link",), "commands:\n  inspect"),
        (("nope",), "invalid choice: 'nope'"),
        (("link", "make", "bogus", "--to", "x", "--home", home), "invalid choice: 'bogus'"),
        (("link", "make", "error", "--home", home), "the following arguments are required: --to"),
        (("link", "make", "error", "--to", "x", "--sdp-file", tmp_path / "none"), "does not exist"),
        (("id", "--hom", home), "unrecognized arguments: --hom"),
        (("demo", "--dir", __file__), "is a file"),
        (("peers", "add", "--home", home), "required: NAME, NODE_ID"),
    ]
    for args, message in cases:
        code, out, err = run(*args)
        assert (code, out) == (2, ""), (args, out, err)
        assert message in err and "Traceback" not in err, (args, err)
    assert not home.exists()  # nothing ran


def test_version_and_help():
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("media-node, version ")
    code, out, _ = run("link", "inspect", "--help")
    assert code == 0 and "LINK|-" in out and "rejected: REASON: message" in out
    assert "--replay, --no-replay" in out and "[default: no-replay]" in out


def test_verbose_is_counted_before_the_command(homes):
    cam, *_ = homes
    code, out, _ = run("-vv", "id", "--home", cam)
    assert code == 0 and len(out.strip()) == 52
    code, _, err = run("id", "-v", "--home", cam)  # a top-level flag, as with click
    assert code == 2 and "unrecognized arguments: -v" in err


def test_an_option_value_may_start_with_a_dash(homes, tmp_path):
    """A digest is base64url: one in 64 starts with '-'. `--answers -...` and `--offer
    -...` take it as the value (as click did), and an option name after an option is still
    a missing value, not taken as one."""
    cam, viewer, _, ids = homes
    digest = "-" + "A" * 42
    code, answer, err = run(
        "link", "make", "--home", cam, "error", "--to", "viewer", "--error-code", "busy", "--answers", digest
    )
    assert code == 0, err
    code, out, err = run("link", "inspect", "--home", viewer, answer.strip(), "--offer", digest)
    assert code == 0, err
    assert json.loads(out)["claims"]["ofh"] == digest
    code, _, err = run("link", "inspect", "--home", viewer, answer.strip(), "--offer", "-" + "B" * 42)
    assert code == 3 and err.startswith("rejected: wrong-offer: "), err
    code, _, err = run("link", "make", "--home", cam, "error", "--to", "--seal")
    assert code == 2 and "argument --to: expected one argument" in err, err
