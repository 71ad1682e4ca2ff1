"""`demo` (two nodes on this machine, node/demo.py) and `bench` (the benchmark suite,
node/bench.py)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import NodeError
from .common import AUDIO_HELP, VIDEO_HELP, Parser, command, default_text, echo, path_option


def demo(parser: Parser) -> None:
    command(parser, run_demo_command)
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="Seconds of streaming." + default_text(5.0)
    )
    path_option(
        parser,
        "--dir",
        "workdir",
        "Where the two demo homes and the recording go (default: a new temp dir, kept).",
        folder=True,
    )
    parser.add_argument(
        "--json", dest="as_json", action="store_true", help="Print the viewer's JSON summary instead."
    )
    parser.add_argument(
        "--video", default="testsrc", metavar="SOURCE", help=VIDEO_HELP + default_text("testsrc")
    )
    parser.add_argument("--audio", default="tone", metavar="SOURCE", help=AUDIO_HELP + default_text("tone"))


def run_demo_command(args: argparse.Namespace) -> None:
    """Two nodes on this machine: a camera (test pattern + tone) and a viewer, fresh
    homes trusting each other, loopback as the overlay, a signed file-drop handshake,
    video and audio over WebRTC, a recording written, a summary printed."""
    import asyncio

    from ..demo import format_demo, run_demo
    from ..media.select import parse_audio, parse_video

    seconds: float = args.seconds
    video: str = args.video
    audio: str = args.audio
    if seconds <= 0:
        raise NodeError("--seconds must be positive")
    parse_video(video)
    parse_audio(audio)
    summary = asyncio.run(run_demo(seconds, args.workdir, video=video, audio=audio))
    echo(json.dumps(summary) if args.as_json else format_demo(summary))
    if not summary["ok"]:
        sys.exit(1)


def bench(parser: Parser) -> None:
    command(parser, run_bench_command)
    parser.add_argument(
        "--quick", action="store_true", help="A smoke run (under 3 minutes): 720p only, short windows."
    )
    parser.add_argument(
        "--json", dest="as_json", action="store_true", help="Print every figure as JSON on stdout."
    )
    path_option(
        parser,
        "--out",
        "out_dir",
        "Where inputs, logs, results and plots go (default: ./media-node-bench, else one in the temp dir).",
        folder=True,
    )
    path_option(parser, "--docs", "docs_file", "Also write the report there (e.g. docs/benchmarks.md).")


def run_bench_command(args: argparse.Namespace) -> None:
    """Measure the node side by side with aiortc's own paths and GStreamer webrtcbin:
    sender CPU, time to first frame, latency, fan-out, memory, link sizes.
    Progress goes to stderr; the report to OUT/benchmarks-MODE.md."""
    from ..bench import run_bench

    results = run_bench(args.quick, args.out_dir, args.docs_file)
    if args.as_json:
        echo(json.dumps(results, indent=2))
    else:
        echo(f"report: {results['report']}")
