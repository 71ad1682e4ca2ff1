"""media-node command line. Thin: parse arguments, call into the modules.

Every command takes --home (env MEDIA_NODE_HOME). Errors print one line to stderr and
exit non-zero; link rejections exit 3 with the reason code first."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

import click

from . import __version__
from .config import Config, load_config
from .errors import NodeError
from .home import Home, default_home
from .identity import Identity
from .peers import PERMISSION_HELP, PeerStore, make_peer

F = TypeVar("F", bound=Callable[..., object])

# Start-up time matters for the short commands (id, link make, link inspect): modules
# only some commands use (links, media, aiortc) are imported inside those commands.


class NodeGroup(click.Group):
    """Turns NodeError into `error: ...` on stderr and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except NodeError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)


def home_option(f: F) -> F:
    return click.option(
        "--home",
        "home_dir",
        type=click.Path(path_type=Path),
        envvar="MEDIA_NODE_HOME",
        default=None,
        show_envvar=True,
        help="The node's home directory (default: ~/.local/share/media-node; the service uses "
        "/var/lib/media-node).",
    )(f)


def get_home(home_dir: Path | None) -> Home:
    return Home((home_dir or default_home()).expanduser())


def load_identity(home: Home) -> Identity:
    return Identity.load(home.key_file)


@click.group(cls=NodeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="media-node")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """media-node: publish a camera and microphone over WebRTC to trusted peers, on
    overlay-network addresses only, with Ed25519-signed handshake links.

    Start with `media-node init`, add peers with `media-node peers add`, then
    `media-node run` (the daemon) or `media-node demo` (two nodes on this machine)."""
    from .logs import setup_logging

    # Under systemd (JOURNAL_STREAM set) no own timestamp and <N> priority prefixes.
    setup_logging(max(logging.WARNING - 10 * verbose, logging.DEBUG))


# --- identity -----------------------------------------------------------------------


@main.command()
@home_option
@click.option("--name", default=None, help="Human name for this node (status, logs).")
@click.option("--force", is_flag=True, help="Keep an existing key but rewrite a missing config.")
def init(home_dir: Path | None, name: str | None, force: bool) -> None:
    """Create the home: config.toml (every field commented), an Ed25519 identity key
    (mode 0600) and the drop folders. Prints the node id as the last line."""
    home = get_home(home_dir)
    if home.key_file.exists() and not force:
        raise NodeError(f"{home.path} already has an identity ({home.key_file}); nothing changed")
    home.create(name)
    identity = load_identity(home)
    click.echo(f"home: {home.path}", err=True)
    click.echo(identity.node_id)


@main.command("id")
@home_option
def show_id(home_dir: Path | None) -> None:
    """Print this node's id (Crockford base32 of its Ed25519 public key)."""
    click.echo(load_identity(get_home(home_dir)).node_id)


# --- allowlist ----------------------------------------------------------------------


@main.group()
def peers() -> None:
    """The allowlist: which nodes this node trusts and what each may do."""


_ALLOW_HELP = "Comma-separated permissions: " + "; ".join(f"{p}: {h}" for p, h in PERMISSION_HELP.items())


@peers.command("add")
@home_option
@click.argument("name")
@click.argument("node_id")
@click.option("--allow", default="view", show_default=True, help=_ALLOW_HELP)
@click.option("--address", default="", help="static overlay: the peer's overlay address.")
@click.option("--yggdrasil-key", default="", help="yggdrasil overlay: the peer's Yggdrasil public key (hex).")
@click.option("--staex-id", default="", help="staex overlay: the peer's Staex id (default: its node id).")
@click.option(
    "--wireguard-key", default="", help="wireguard overlay: the peer's WireGuard public key (base64)."
)
@click.option("--nebula-cert", default="", help="nebula overlay: the peer's certificate name or fingerprint.")
@click.option(
    "--tailscale-node", default="", help="tailscale overlay: the peer's node key (nodekey:HEX) or stable id."
)
@click.option(
    "--via", default="", metavar="file:DIR|mqtt", help="How view and web reach this peer (default: --via)."
)
@click.option("--replace", is_flag=True, help="Overwrite a peer of the same name.")
def peers_add(
    home_dir: Path | None,
    name: str,
    node_id: str,
    allow: str,
    address: str,
    yggdrasil_key: str,
    staex_id: str,
    wireguard_key: str,
    nebula_cert: str,
    tailscale_node: str,
    via: str,
    replace: bool,
) -> None:
    """Trust NODE_ID under NAME (docs/overlays.md: which binding each overlay needs)."""
    home = get_home(home_dir)
    bindings = (address, yggdrasil_key, staex_id, wireguard_key, nebula_cert, tailscale_node)
    peer = make_peer(name, node_id, allow, *bindings, via=via)
    PeerStore(home.peers_file).add(peer, replace=replace)
    click.echo(f"added {peer.name} ({peer.node_id}) allow={','.join(sorted(peer.allow)) or '-'}")


@peers.command("list")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def peers_list(home_dir: Path | None, as_json: bool) -> None:
    """List trusted peers."""
    found = PeerStore(get_home(home_dir).peers_file).load()
    if as_json:
        click.echo(json.dumps({n: p.to_toml() for n, p in found.items()}, indent=2))
        return
    for p in found.values():
        binding = (
            p.address
            or (p.yggdrasil_key and f"ygg:{p.yggdrasil_key[:16]}...")
            or p.staex_id
            or (p.wireguard_key and f"wg:{p.wireguard_key}")
            or (p.nebula_cert and f"nebula:{p.nebula_cert}")
            or (p.tailscale_node and f"ts:{p.tailscale_node}")
            or "-"
        )
        click.echo(f"{p.name}\t{p.node_id}\t{','.join(sorted(p.allow)) or '-'}\t{binding}")


@peers.command("remove")
@home_option
@click.argument("name_or_id")
def peers_remove(home_dir: Path | None, name_or_id: str) -> None:
    """Stop trusting a peer (by name or node id)."""
    peer = PeerStore(get_home(home_dir).peers_file).remove(name_or_id)
    click.echo(f"removed {peer.name} ({peer.node_id})")


@main.group()
def wireguard() -> None:
    """The WireGuard overlay's peer table (docs/overlays.md)."""


@wireguard.command("export")
@click.argument("interface")
@click.option(
    "--to",
    "to",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the table.",
)
@click.option("--group", default="", help="Group that may read it (the service user's group).")
@click.option("--wg", default="wg", show_default=True, help="The wg program.")
def wireguard_export(interface: str, to: Path, group: str, wg: str) -> None:
    """As root: write INTERFACE's peer public keys and allowed IPs (never a private key)
    to a file the unprivileged service reads (mode 0640, group --group)."""
    from .overlay.wgtable import export_table

    try:
        table = export_table(interface, to, group, wg)
    except KeyError:
        raise NodeError(f"no group named {group!r}") from None
    except OSError as e:
        raise NodeError(f"cannot write {to}: {e.strerror or e}") from None
    click.echo(f"{to}: {len(table.peers)} peer(s) of {interface}")


# --- links --------------------------------------------------------------------------


@main.group()
def link() -> None:
    """Make and inspect signed handshake links (docs/link-format.md)."""


def _read_arg(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


@link.command("inspect")
@home_option
@click.argument("link_text", metavar="LINK|-")
@click.option(
    "--replay/--no-replay",
    default=False,
    show_default=True,
    help="Check (and record) the nonce in this home's replay cache.",
)
@click.option("--no-allowlist", is_flag=True, help="Skip the allowlist and permission checks.")
@click.option(
    "--offer",
    "offer_link",
    default=None,
    help="For an answer or error: the offer it must answer, as its digest (from "
    "`link inspect` or `link make --digest`), the unsealed link, or @FILE.",
)
def link_inspect(
    home_dir: Path | None, link_text: str, replay: bool, no_allowlist: bool, offer_link: str | None
) -> None:
    """Verify a link addressed to this node and print its claims as JSON.

    A rejected link exits 3 and prints `rejected: REASON: message`; reasons are
    oversized, malformed, unseal-failed, tampered, bad-signature, wrong-audience,
    not-yet-valid, expired, unknown-sender, no-permission, wrong-offer, replayed
    (and allowlist-unreadable when this home's peers.toml is broken)."""
    from .links import LinkError, LinkOpener, ReplayCache

    home = get_home(home_dir)
    identity = load_identity(home)
    config = load_config(home.config_file)
    cache = ReplayCache(home.replay_db, config.links.clock_skew) if replay else None
    opener = LinkOpener(
        identity, None if no_allowlist else PeerStore(home.peers_file), cache, skew=config.links.clock_skew
    )
    expect = None
    if offer_link:
        from .links.jws import jws_digest
        from .links.link import PREFIX, SEALED_PREFIX

        text = (Path(offer_link[1:]).read_text() if offer_link.startswith("@") else offer_link).strip()
        if text.startswith(SEALED_PREFIX):
            raise NodeError(
                "--offer: a sealed link can only be opened by its recipient; pass the "
                "offer's digest (printed by `link make --digest`) instead"
            )
        # a digest is 43 base64url characters; anything with dots is a JWS
        expect = text if "." not in text and len(text) == 43 else jws_digest(text.removeprefix(PREFIX))
    try:
        opened = opener.open(_read_arg(link_text), expect_offer=expect)
    except LinkError as e:
        click.echo(f"rejected: {e.reason}: {e.detail}", err=True)
        sys.exit(e.exit_code)
    out = {
        "valid": True,
        "sealed": opened.sealed,
        "digest": opened.digest,
        "peer": opened.peer.name if opened.peer else None,
        "claims": opened.claims.to_json(),
    }
    click.echo(json.dumps(out, indent=2))


@link.command("make")
@home_option
@click.argument("kind", type=click.Choice(["view-request", "offer", "answer", "error"]))
@click.option("--to", "to", required=True, help="Recipient node id (or a peer name).")
@click.option("--seal", is_flag=True, help="Seal the link to the recipient.")
@click.option(
    "--sdp-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SDP to carry (offer/answer/view-request). '-' is not accepted: use a file.",
)
@click.option("--answers", default="", help="answer/error: the digest of the link it answers.")
@click.option("--error-code", default="", help="error: the error code (e.g. busy).")
@click.option(
    "--ttl", type=int, default=None, help="Seconds the link stays valid (default: config links.ttl)."
)
@click.option(
    "--digest",
    "show_digest",
    is_flag=True,
    help="Also print the link's digest (what an answer's ofh must equal) on stderr.",
)
def link_make(
    home_dir: Path | None,
    kind: str,
    to: str,
    seal: bool,
    sdp_file: Path | None,
    answers: str,
    error_code: str,
    ttl: int | None,
    show_digest: bool,
) -> None:
    """Print a signed link from this node (for scripts and for checking a setup)."""
    from .links import make_link

    home = get_home(home_dir)
    identity = load_identity(home)
    config = load_config(home.config_file)
    peer = PeerStore(home.peers_file).find(to)
    to_id = peer.node_id if peer else to
    from .identity import normalize_node_id

    try:
        to_id = normalize_node_id(to_id)
    except NodeError as e:
        raise NodeError(f"--to: not a peer name or node id: {e}") from None
    sdp = sdp_file.read_text() if sdp_file else ""
    if kind in ("view-request", "offer", "answer") and not sdp:
        raise NodeError(f"a {kind} carries an SDP: pass --sdp-file")
    err = {"code": error_code, "message": ""} if kind == "error" else None
    if kind == "error" and not error_code:
        raise NodeError("an error link needs --error-code")
    made = make_link(
        identity,
        kind,
        to_id,
        ttl=ttl or config.links.ttl,
        sdp=sdp,
        ofh=answers,
        err=err,
        sealed=seal or config.links.seal,
        prov=config.overlay.provider,
    )
    click.echo(made.text)
    if show_digest:
        click.echo(f"digest: {made.digest}", err=True)


# --- deployment: board profiles and doctor (node/profiles.py, node/doctor.py) ---------


@main.group("profile")
def profile_group() -> None:
    """Board profiles (firmware_config/): video source, encoder, bounds, audio, config.txt."""


@profile_group.command("list")
def profile_list() -> None:
    """List the shipped board profiles."""
    from .profiles import load_profiles

    for p in load_profiles().values():
        click.echo(f"{p.name}\t{'hardware' if p.video.hardware else 'software'}\t{p.title}")


@profile_group.command("show")
@home_option
@click.argument("name", default="auto")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (Ansible reads this).")
@click.option("--config-txt", is_flag=True, help="Print only the Pi config.txt fragment.")
def profile_show(home_dir: Path | None, name: str, as_json: bool, config_txt: bool) -> None:
    """Show profile NAME, or with `auto` the one matching this machine and its config."""
    from .profiles import Machine, match_profile

    config = load_config(get_home(home_dir).config_file)
    video = config.media.video
    if name == "auto":
        name = config.media.profile
    match = match_profile(Machine.probe(), name, video)
    if config_txt:
        click.echo(match.profile.config_txt)
    elif as_json:
        click.echo(json.dumps({**match.profile.to_json(), "reason": match.reason}, indent=2))
    else:
        p = match.profile
        click.echo(f"{p.name}: {p.title} ({match.reason})")
        click.echo(f"video: {p.video.source or '(set media.video)'} via {p.video.encoder}")
        click.echo(f"  {'hardware' if p.video.hardware else 'software'}: {p.video.why}")
        click.echo(
            f"  {p.video.width}x{p.video.height}@{p.video.fps}, {p.video.bitrate} bit/s "
            f"[{p.video.min_bitrate}..{p.video.max_bitrate}], I-period {p.video.iperiod}"
        )
        click.echo(f"audio: {p.audio.source} ({p.audio.why})")
        click.echo(f"speaker (talkback, set media.speaker to use it): {p.audio.speaker}")
        click.echo(f"doorbell: {p.doorbell.gpio or '(set doorbell.gpio)'} ({p.doorbell.why})")
        for key, value in p.sysctl.items():
            click.echo(f"sysctl {key} = {value}")


@main.command()
@home_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--timeout",
    type=float,
    default=3.0,
    show_default=True,
    help="Seconds each network check (overlay, broker, RTSP camera) may take.",
)
def doctor(home_dir: Path | None, as_json: bool, timeout: float) -> None:
    """Which board profile matches this machine, and what is missing (camera, encoder,
    ALSA device, config.txt, overlay, broker, key permissions), with the fix for each.
    Exits 1 when a required piece is missing."""
    from .doctor import diagnose

    home = get_home(home_dir)
    report = diagnose(home, load_config(home.config_file), timeout=timeout)
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.render())
    if not report.ok:
        sys.exit(1)


# --- calls: daemon, viewer, demo (node/service.py, node/viewer.py, node/demo.py) -------


def _log_level_from(config: Config) -> None:
    """-v/-vv win; otherwise config [node] log_level (default info) for long-running commands."""
    verbose = click.get_current_context().find_root().params.get("verbose", 0)
    if not verbose:
        logging.getLogger().setLevel(config.node.log_level.upper())
    if verbose < 2:  # aioice narrates every candidate pair at INFO
        logging.getLogger("aioice").setLevel(logging.WARNING)


_VIDEO_HELP = (
    "Video source: testsrc, file:PATH (.h264, .mp4, .ts), rtsp://..., picamera2, "
    "v4l2:/dev/videoN (default: config media.video, else the board profile's)."
)
_AUDIO_HELP = (
    "Audio source: tone, alsa:DEVICE or none (default: config media.audio, else the board profile's)."
)


@main.command()
@home_option
@click.option("--video", default=None, metavar="SOURCE", help=_VIDEO_HELP)
@click.option("--audio", default=None, metavar="SOURCE", help=_AUDIO_HELP)
@click.option(
    "--speaker",
    default=None,
    metavar="alsa:DEVICE|none",
    help="Where peers allowed 'talk' are heard (default: config media.speaker; none).",
)
def run(home_dir: Path | None, video: str | None, audio: str | None, speaker: str | None) -> None:
    """The daemon: serve view requests (and calls) arriving in the home's inbox/ (file
    drop) until SIGTERM or SIGINT, which end every call cleanly. Overlay, media and
    limits come from the home's config.toml."""
    import asyncio

    from .media import apply_overrides
    from .service import run_service

    home = get_home(home_dir)
    config = load_config(home.config_file)
    apply_overrides(config.media, video=video, audio=audio, speaker=speaker)
    _log_level_from(config)
    asyncio.run(run_service(home, config))


@main.command()
@home_option
@click.argument("peer")
@click.option(
    "--via",
    required=True,
    metavar="file:DIR|mqtt|manual",
    help="file:DIR: drop the request into DIR/inbox and wait for DIR/outbox (DIR is the "
    "peer's home or drop folder); mqtt: through the broker in this home's [mqtt] config; "
    "manual: print the request, paste the reply.",
)
@click.option(
    "--seconds",
    type=float,
    default=None,
    help="Seconds to receive (default 10; with --play or --record -: an hour, or until the player closes).",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    default=None,
    help="Record the video as it arrived (H.264, not re-encoded) to FILE (.mkv, .mp4, .ts); "
    "`-`: live MPEG-TS (H.264 as it arrived + AAC audio) on stdout, e.g. `| ffplay -`.",
)
@click.option(
    "--play", is_flag=True, help="Play live in the first of mpv, ffplay, gst-play-1.0 found on PATH."
)
@click.option(
    "--talk",
    default=None,
    metavar="tone|alsa:DEVICE|file:PATH.wav",
    help="Also send this audio to PEER's speaker (PEER must allow this node 'talk').",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON summary.")
def view(
    home_dir: Path | None,
    peer: str,
    via: str,
    seconds: float | None,
    record: Path | None,
    play: bool,
    talk: str | None,
    as_json: bool,
) -> None:
    """Watch PEER's camera and microphone: a signed view-request, its signed answer,
    then media over the overlay for --seconds. Prints a JSON summary (ttff_ms,
    video_frames, audio_frames, kbps, local_address, remote_address, record); exits 1
    if no video arrived. With `--record -` the summary goes to stderr (stdout is the
    stream)."""
    import asyncio

    from .transports.base import client_transport
    from .viewer import format_summary, start_player
    from .viewer import view as run_view

    home = get_home(home_dir)
    live = play or str(record) == "-"
    if play and record is not None:
        raise NodeError("--play and --record cannot be combined (pipe `--record -` into a player instead)")
    seconds = seconds if seconds is not None else (3600.0 if live else 10.0)
    if live and via == "manual":
        raise NodeError("--via manual prints its request on stdout: use file:DIR or mqtt with a live pipe")
    if seconds <= 0:
        raise NodeError("--seconds must be positive")
    if talk:
        from .media.select import parse_talk

        parse_talk(talk)
    transport = client_transport(via, home)
    player = start_player() if play else None
    target: Path | BinaryIO | None = record
    if player is not None:
        target = cast(BinaryIO, player.stdin)
    elif live:
        target = sys.stdout.buffer
    until = (lambda: player.poll() is not None) if player is not None else None
    try:
        summary = asyncio.run(run_view(home, peer, transport, seconds, target, talk=talk, until=until))
    finally:
        if player is not None:
            _stop_player(player)
    summary["via"] = via if via in ("manual", "mqtt") else "file"
    if not as_json:
        click.echo(format_summary(summary), err=True)
    click.echo(json.dumps(summary), err=live)
    if not summary["ok"]:
        sys.exit(1)


def _stop_player(player: subprocess.Popen[bytes]) -> None:
    import contextlib

    with contextlib.suppress(OSError):
        if player.stdin is not None:
            player.stdin.close()
    try:
        player.wait(5)
    except subprocess.TimeoutExpired:
        player.terminate()
        player.wait(5)


@main.command()
@home_option
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 (default: config web.port, 8765).")
@click.option(
    "--via",
    default=None,
    metavar="file:DIR|mqtt",
    help="How to reach cameras without their own `via` in peers.toml (default: mqtt when [mqtt] is on).",
)
@click.option("--new-token", is_flag=True, help="Replace the access token (old bookmarks stop working).")
def web(home_dir: Path | None, port: int | None, via: str | None, new_token: bool) -> None:
    """The browser viewer: serve a page on 127.0.0.1 only that lists this node's peers and
    watches one live (video, audio, push-to-talk, snapshot, stats), and rings when a camera
    calls this node. This node relays the media between the page and the camera without
    decoding; only the two nodes' overlay addresses ever leave the machine. Prints the URL
    (with its access token, kept 0600 in the home) and serves until Ctrl-C."""
    import asyncio

    from .web.run import run_web

    home = get_home(home_dir)
    config = load_config(home.config_file)
    if via is not None and not (via == "mqtt" or (via.startswith("file:") and len(via) > 5)):
        raise NodeError(f"--via {via!r}: use file:DIR or mqtt")
    _log_level_from(config)
    asyncio.run(
        run_web(home, config, port=config.web.port if port is None else port, via=via, new_token=new_token)
    )


@main.command()
@click.option("--seconds", type=float, default=5.0, show_default=True, help="Seconds of streaming.")
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the two demo homes and the recording go (default: a new temp dir, kept).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the viewer's JSON summary instead.")
@click.option("--video", default="testsrc", show_default=True, metavar="SOURCE", help=_VIDEO_HELP)
@click.option("--audio", default="tone", show_default=True, metavar="SOURCE", help=_AUDIO_HELP)
def demo(seconds: float, workdir: Path | None, as_json: bool, video: str, audio: str) -> None:
    """Two nodes on this machine: a camera (test pattern + tone) and a viewer, fresh
    homes trusting each other, loopback as the overlay, a signed file-drop handshake,
    video and audio over WebRTC, a recording written, a summary printed."""
    import asyncio

    from .demo import format_demo, run_demo
    from .media.select import parse_audio, parse_video

    if seconds <= 0:
        raise NodeError("--seconds must be positive")
    parse_video(video)
    parse_audio(audio)
    summary = asyncio.run(run_demo(seconds, workdir, video=video, audio=audio))
    click.echo(json.dumps(summary) if as_json else format_demo(summary))
    if not summary["ok"]:
        sys.exit(1)


@main.command()
@click.option("--quick", is_flag=True, help="A smoke run (under 3 minutes): 720p only, short windows.")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON on stdout.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where inputs, logs, results and plots go (default: ./media-node-bench, else one in the temp dir).",
)
@click.option(
    "--docs",
    "docs_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the report there (e.g. docs/benchmarks.md).",
)
def bench(quick: bool, as_json: bool, out_dir: Path | None, docs_file: Path | None) -> None:
    """Measure the node side by side with aiortc's own paths and GStreamer webrtcbin:
    sender CPU, time to first frame, latency, fan-out, memory, link sizes.
    Progress goes to stderr; the report to OUT/benchmarks-MODE.md."""
    from .bench import run_bench

    results = run_bench(quick, out_dir, docs_file)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        click.echo(f"report: {results['report']}")


if __name__ == "__main__":
    main()
