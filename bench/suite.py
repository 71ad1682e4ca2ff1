"""`media-node bench`: every figure in one run, side by side on the same inputs.

Each figure runs on its own; one that cannot run (a missing part, a tool that is not
installed) is recorded under "not_measured" with the reason, never invented."""

from __future__ import annotations

import functools
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import baselines, machine
from .inputs import CLIPS, ClipSpec, default_out, ensure_clip


@dataclass
class Plan:
    mode: str
    clips: list[str]
    clip_seconds: int
    cpu_warmup: float
    cpu_window: float
    latency_window: float
    latency_senders: list[str]
    fanout: list[int]
    fanout_window: float
    ttff_calls: int
    churn_calls: int
    profile_seconds: float
    notes: list[str] = field(default_factory=list)
    cli_runs: int = 15
    senders: list[str] = field(default_factory=lambda: list(baselines.SENDERS))
    specs: dict[str, ClipSpec] = field(default_factory=lambda: dict(CLIPS))
    churn_warmup: int = 5
    churn_settle: float = 13.0  # s before each churn snapshot (bench/nodes.py CHURN_SETTLE)


QUICK = Plan(
    "quick",
    ["720p30"],
    10,
    1.0,
    4.0,
    3.0,
    ["gstreamer_webrtcbin"],
    [1, 2, 4],
    3.0,
    5,
    30,
    0.0,
    [
        "quick: 720p30 only, 10 s clip, 4 s CPU windows, fan-out 1/2/4, 5 calls per TTFF "
        "transport, 30 calls in a row: for a smoke check, not for quoting"
    ],
    cli_runs=5,
)
FULL = Plan(
    "full",
    ["720p30", "1080p30"],
    30,
    3.0,
    15.0,
    10.0,
    ["node_publisher", "aiortc_passthrough", "gstreamer_webrtcbin"],
    [1, 2, 4, 8, 16],
    10.0,
    20,
    1000,
    20.0,
)


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Runner:
    def __init__(self, plan: Plan, out: Path):
        self.plan = plan
        self.out = out
        self.logdir = out / "logs"
        self.rig = out / "rig"
        self.results: dict = {"mode": plan.mode, "notes": list(plan.notes), "not_measured": {}}

    def attempt(self, key: str, what: str, fn: Callable[[], object]):
        say(what)
        t0 = time.monotonic()
        try:
            value = fn()
            say(f"  done in {time.monotonic() - t0:.0f} s")
            return value
        except Exception as e:
            reason = f"{type(e).__name__}: {e}"
            say(f"  NOT MEASURED: {reason}")
            (self.logdir / "errors.log").open("a").write(f"== {key}\n{traceback.format_exc()}\n")
            self.results["not_measured"][key] = reason[:500]
            return None

    def run(self) -> dict:
        p = self.plan
        self.logdir.mkdir(parents=True, exist_ok=True)
        (self.logdir / "errors.log").write_text("")
        started = time.monotonic()
        self.results["machine"] = machine.describe()
        # Other work on the machine skews CPU figures: keep the load beside them.
        self.results["loadavg_start"] = [round(x, 2) for x in __import__("os").getloadavg()]
        self.results["started_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        clips = {}
        for name in p.clips:
            clip = self.attempt(
                f"inputs.{name}",
                f"input {name} ({p.clip_seconds} s)",
                functools.partial(ensure_clip, p.specs[name], p.clip_seconds, out=self.out),
            )
            if clip:
                clips[name] = clip
        self.results["inputs"] = {k: c.to_json() for k, c in clips.items()}
        self.sender_cpu(clips)
        self.snapshots(clips)
        first = next(iter(clips.values()), None)
        if first is not None:
            self.latency(first)
            self.ttff(first)
            self.fanout(first)
            self.memory(first)
            self.links(first)
        self.cli_startup()
        self.results["elapsed_s"] = round(time.monotonic() - started, 1)
        self.results["loadavg_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
        return self.results

    # --- figures ------------------------------------------------------------------------

    def sender_cpu(self, clips) -> None:
        from . import nodes

        p = self.plan
        fig: dict = {}
        for name, clip in clips.items():
            rows: dict = {}
            profile = p.profile_seconds if name == p.clips[0] else 0.0
            rows["node_daemon"] = self.attempt(
                f"sender_cpu.{name}.node_daemon",
                f"fig 1 {name}: our daemon (file: source, 1 viewer)",
                functools.partial(
                    nodes.streaming, self.rig, clip, self.logdir, 1, p.cpu_warmup, p.cpu_window, profile
                ),
            )
            for kind in p.senders:
                rows[kind] = self.attempt(
                    f"sender_cpu.{name}.{kind}",
                    f"fig 1 {name}: {baselines.SENDERS[kind]}",
                    functools.partial(
                        baselines.sender_cpu, kind, clip, self.logdir, self.out, p.cpu_warmup, p.cpu_window
                    ),
                )
            rows = {k: v for k, v in rows.items() if v}
            ours = (rows.get("node_daemon") or {}).get("cpu_percent")
            ratios = {}
            if ours:
                for k, v in rows.items():
                    if k != "node_daemon":
                        ratios[f"{k}/node_daemon"] = round(v["cpu_percent"] / ours, 2)
            fig[name] = {"senders": rows, "ratios": ratios}
        fig["method"] = (
            "user+sys CPU of the sender's process tree over a steady window after "
            f"{p.cpu_warmup:.0f} s of media, 100 % = one core; one receiver in its own process "
            "(our viewer for the daemon, a bench aiortc receiver without decoding for the others); "
            "video only"
        )
        self.results["sender_cpu"] = fig

    def latency(self, clip) -> None:
        from . import nodes

        p = self.plan
        fig: dict = {}
        fig["node_daemon"] = self.attempt(
            "latency.node_daemon",
            "fig 3: latency through our daemon to our viewer",
            lambda: nodes.latency(self.rig, clip, self.logdir, 1.0, p.latency_window),
        )
        for kind in p.latency_senders:
            fig[kind] = self.attempt(
                f"latency.{kind}",
                f"fig 3: latency {kind} -> our receiver",
                functools.partial(
                    baselines.latency, kind, clip, self.logdir, self.out, 1.0, p.latency_window
                ),
            )
        if "node_publisher" in p.latency_senders:
            fig["node_publisher_to_aiortc_receiver"] = self.attempt(
                "latency.node_publisher_to_aiortc_receiver",
                "fig 3: latency to aiortc's stock receiver",
                lambda: baselines.latency(
                    "node_publisher", clip, self.logdir, self.out, 1.0, p.latency_window, node_receiver=False
                ),
            )
        fig = {k: v for k, v in fig.items() if v}
        fig["method"] = (
            "AU handed over by the source (sender-side probe) -> the same AU complete at the "
            "viewer (its jitter buffer hands it on), matched by a hash of its slice NAL units, "
            f"both on CLOCK_MONOTONIC; {clip.spec.label}, steady state (first second left out)"
        )
        self.results["latency"] = fig

    def ttff(self, clip) -> None:
        from . import nodes

        p = self.plan
        fig: dict = {}
        fig["filedrop"] = self.attempt(
            "ttff.filedrop",
            f"fig 2: time to first frame, file drop ({p.ttff_calls} calls)",
            lambda: nodes.ttff(self.rig, clip, self.logdir, "file", p.ttff_calls),
        )
        fig["mqtt"] = self.attempt(
            "ttff.mqtt",
            f"fig 2: time to first frame, MQTT ({p.ttff_calls} calls)",
            lambda: nodes.ttff(self.rig, clip, self.logdir, "mqtt", p.ttff_calls),
        )
        fig = {k: v for k, v in fig.items() if v}
        fig["method"] = (
            "viewer node (own process) hands its signed view-request to the transport -> first "
            "decoded video frame at that viewer; the daemon serves the clip with a tone as audio; "
            "calls 1 s apart, one warm-up call not counted"
        )
        self.results["ttff"] = fig

    def fanout(self, clip) -> None:
        from . import nodes

        p = self.plan
        rows = []
        top = max(p.fanout) if len(p.fanout) > 1 else 0  # profiled, like the 1-viewer daemon
        for n in p.fanout:
            r = self.attempt(
                f"fanout.{n}",
                f"fig 4: fan-out, {n} viewer(s)",
                functools.partial(
                    nodes.streaming,
                    self.rig,
                    clip,
                    self.logdir,
                    n,
                    2.0,
                    p.fanout_window,
                    p.profile_seconds / 2 if n == top else 0.0,
                ),
            )
            if r:
                rows.append(r)
        self.results["fanout"] = {
            "rows": rows,
            **marginal(rows),
            "method": (
                "daemon CPU with N viewer nodes (one process each, recording without decoding) over a "
                f"{p.fanout_window:.0f} s window; the viewers share the same 2 cores"
            ),
        }

    def memory(self, clip) -> None:
        from . import nodes

        p = self.plan
        fig: dict = {}
        streaming = [
            r
            for r in ((self.results.get("sender_cpu") or {}).get(clip.spec.name) or {})
            .get("senders", {})
            .items()
            if r[0] == "node_daemon"
        ]
        if streaming:
            fig["streaming_rss_mib"] = streaming[0][1]["rss_max_mib"]
        fan = (self.results.get("fanout") or {}).get("rows") or []
        if fan:
            fig["streaming_rss_by_viewers"] = {r["viewers"]: r["rss_max_mib"] for r in fan}
        fig["streaming_rss_no_clip"] = self.attempt(
            "memory.streaming_rss_no_clip",
            "fig 5: daemon memory with an RTSP camera (no clip in memory), 1 viewer",
            lambda: self._no_clip(clip),
        )
        if fig["streaming_rss_no_clip"]:
            fig["streaming_rss_no_clip_mib"] = fig["streaming_rss_no_clip"]["rss_max_mib"]
        else:
            fig.pop("streaming_rss_no_clip")
        fig["calls_in_a_row"] = self.attempt(
            "memory.calls_in_a_row",
            f"fig 5: {p.churn_calls} calls in a row",
            lambda: nodes.churn(
                self.rig, clip, self.logdir, p.churn_calls, warmup=p.churn_warmup, settle=p.churn_settle
            ),
        )
        if not fig["calls_in_a_row"]:
            fig.pop("calls_in_a_row")
        self.results["memory"] = fig

    def snapshots(self, clips) -> None:
        from . import snapshot

        fig: dict = {}
        for name, clip in clips.items():
            measure = functools.partial(snapshot.measure, clip.h264)
            r = self.attempt(f"snapshots.{name}", f"fig 7 {name}: one snapshot", measure)
            if r:
                fig[name] = r
        fig["method"] = snapshot.METHOD
        self.results["snapshots"] = fig

    def _no_clip(self, clip) -> dict:
        from . import nodes
        from .rtspcam import RtspCamera

        camera = RtspCamera(clip, self.out / "rtsp")
        try:
            return nodes.streaming(
                self.rig, clip, self.logdir, 1, 3.0, self.plan.fanout_window, video=camera.url
            )
        finally:
            camera.stop()

    def cli_startup(self) -> None:
        from . import clistart

        r = self.attempt(
            "cli_startup",
            f"fig 8: CLI start-up ({self.plan.cli_runs} cold runs per command)",
            lambda: clistart.measure(self.rig / "cli", self.plan.cli_runs),
        )
        if r:
            self.results["cli_startup"] = r

    def links(self, clip) -> None:
        from . import linksizes

        r = self.attempt("link_sizes", "fig 6: link sizes", lambda: linksizes.measure(clip.h264))
        if r:
            self.results["link_sizes"] = r


def marginal(rows: list[dict]) -> dict:
    """What one more viewer costs: the least-squares slope of daemon CPU over viewers,
    and the same from the first to the last row."""
    pts = [(r["viewers"], r["cpu_percent"]) for r in rows if r.get("cpu_percent") is not None]
    if len(pts) < 2:
        return {}
    n = len(pts)
    mx, my = sum(x for x, _ in pts) / n, sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else 0.0
    (x0, y0), (x1, y1) = pts[0], pts[-1]
    return {
        "per_viewer_marginal_cpu_percent": round(slope, 3),
        "per_viewer_first_to_last_cpu_percent": round((y1 - y0) / (x1 - x0), 3) if x1 != x0 else None,
    }


def run(quick: bool, out: Path | None = None, plan: Plan | None = None) -> dict:
    plan = plan or (QUICK if quick else FULL)
    out = Path(out) if out else default_out()
    out.mkdir(parents=True, exist_ok=True)
    results = Runner(plan, out).run()
    (out / f"results-{plan.mode}.json").write_text(json.dumps(results, indent=2))
    return results
