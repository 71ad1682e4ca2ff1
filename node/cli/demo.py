"""`demo` (two nodes on this machine, node/demo.py) and `bench` (the benchmark suite,
node/bench.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import NodeError
from .common import AUDIO_HELP, VIDEO_HELP, path_option


@click.command(short_help="Two nodes on this machine stream to each other: a self-test.")
@click.option("--seconds", type=float, default=5.0, show_default=True, help="Seconds of streaming.")
@path_option(
    "--dir",
    "workdir",
    "Where the two demo homes and the recording go (default: a new temp dir, kept).",
    folder=True,
)
@click.option("--json", "as_json", is_flag=True, help="Print the viewer's JSON summary instead.")
@click.option("--video", default="testsrc", show_default=True, metavar="SOURCE", help=VIDEO_HELP)
@click.option("--audio", default="tone", show_default=True, metavar="SOURCE", help=AUDIO_HELP)
def demo(seconds: float, workdir: Path | None, as_json: bool, video: str, audio: str) -> None:
    """Two nodes on this machine: a camera (test pattern + tone) and a viewer, fresh
    homes trusting each other, loopback as the overlay, a signed file-drop handshake,
    video and audio over WebRTC, a recording written, a summary printed."""
    import asyncio

    from ..demo import format_demo, run_demo
    from ..media.select import parse_audio, parse_video

    if seconds <= 0:
        raise NodeError("--seconds must be positive")
    parse_video(video)
    parse_audio(audio)
    summary = asyncio.run(run_demo(seconds, workdir, video=video, audio=audio))
    click.echo(json.dumps(summary) if as_json else format_demo(summary))
    if not summary["ok"]:
        sys.exit(1)


@click.command(short_help="Benchmark against aiortc and GStreamer (report to OUT/).")
@click.option("--quick", is_flag=True, help="A smoke run (under 3 minutes): 720p only, short windows.")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON on stdout.")
@path_option(
    "--out",
    "out_dir",
    "Where inputs, logs, results and plots go (default: ./media-node-bench, else one in the temp dir).",
    folder=True,
)
@path_option("--docs", "docs_file", "Also write the report there (e.g. docs/benchmarks.md).")
def bench(quick: bool, as_json: bool, out_dir: Path | None, docs_file: Path | None) -> None:
    """Measure the node side by side with aiortc's own paths and GStreamer webrtcbin:
    sender CPU, time to first frame, latency, fan-out, memory, link sizes.
    Progress goes to stderr; the report to OUT/benchmarks-MODE.md."""
    from ..bench import run_bench

    results = run_bench(quick, out_dir, docs_file)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        click.echo(f"report: {results['report']}")
