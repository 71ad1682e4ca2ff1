"""Smoke test of the benchmark machinery (bench/): one tiny run of every figure through
the same code as `media-node bench`, checking that each figure is produced and is made
of real measurements (frames arrived, AUs matched, calls made). No timing assertions:
speed is measured by `media-node bench`, never asserted."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from unit.clirun import invoke

pytestmark = pytest.mark.timeout(170)


def test_bench_command_is_wired():
    code, output, err = invoke("bench", "--help")
    assert code == 0, err
    assert "--quick" in output and "--json" in output


def test_tiny_run_produces_every_figure(tmp_path):
    # ffmpeg and mosquitto come with `make test` (Makefile APT_PACKAGES); without them this
    # fails rather than skips, so CI can never pass while the benchmark cannot run.
    assert shutil.which("ffmpeg"), "ffmpeg is missing (make system-packages)"
    assert shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto"), "mosquitto is missing"
    from node.bench import _import_suite

    suite, report = _import_suite()  # the repo's bench/ (not an installed package)
    from bench.inputs import ClipSpec

    tiny = suite.Plan(
        "tiny",
        ["tiny"],
        4,
        cpu_warmup=0.5,
        cpu_window=1.0,
        latency_window=1.5,
        latency_senders=[],
        fanout=[2],
        fanout_window=1.0,
        ttff_calls=1,
        churn_calls=2,
        profile_seconds=0.0,
        senders=["aiortc_passthrough"],
        specs={"tiny": ClipSpec("tiny", 320, 240, 30, 400_000, 4)},
        churn_warmup=1,
        churn_settle=0.5,
        cli_runs=2,
    )
    results = suite.run(False, tmp_path, plan=tiny)
    assert results["not_measured"] == {}, results["not_measured"]
    # every figure, as `media-node bench --json` prints it
    keys = (
        "machine",
        "inputs",
        "sender_cpu",
        "ttff",
        "latency",
        "fanout",
        "memory",
        "link_sizes",
        "snapshots",
    )
    for key in keys:
        assert key in results, key
    rows = results["sender_cpu"]["tiny"]["senders"]
    assert rows["node_daemon"]["frames_max"] > 0 and rows["node_daemon"]["cpu_s"] >= 0
    assert rows["aiortc_passthrough"]["aus_received"] > 0
    assert (
        "aiortc_passthrough/node_daemon" in results["sender_cpu"]["tiny"]["ratios"]
        or rows["node_daemon"]["cpu_percent"] == 0
    )
    assert results["ttff"]["filedrop"]["n"] == 1 and results["ttff"]["mqtt"]["n"] == 1
    assert results["latency"]["node_daemon"]["matched"] > 0
    assert results["fanout"]["rows"][0]["viewers"] == 2 and results["fanout"]["rows"][0]["frames_min"] > 0
    churn = results["memory"]["calls_in_a_row"]
    assert churn["calls"] == 2 and churn["failed"] == 0 and churn["after"]["fds"] > 0
    assert churn["middle"]["fds"] > 0 and "rss_growth_second_half_mib" in churn
    assert results["memory"]["streaming_rss_no_clip_mib"] > 0  # the RTSP camera figure
    assert results["memory"]["streaming_rss_no_clip"]["frames_min"] > 0
    startup = results["cli_startup"]["over_python_ms"]
    assert set(startup) == {"id", "link_make", "link_inspect"}
    sizes = results["link_sizes"]
    assert sizes["plain"]["view_request_chars"] < sizes["sealed"]["view_request_chars"]
    json.dumps(results)  # all of it is JSON
    images, note = report.plots(results, tmp_path / "img")
    text = report.markdown(results, images, note)
    snap = results["snapshots"]["tiny"]
    assert snap["size"] == "320x240" and snap["jpeg_bytes_median"] > 0
    assert (
        "## 6. Link sizes" in text
        and "## 7. Snapshot cost" in text
        and "## 8. CLI start-up" in text
        and "Not measured" not in text
    )
