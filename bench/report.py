"""Results (the JSON of bench/suite.py) -> Markdown tables and PNG plots.

Plots need matplotlib (pip install 'media-node[bench]'); without it the report says so
and keeps the tables."""

from __future__ import annotations

from pathlib import Path

from .baselines import SENDERS

LABELS = {
    "node_daemon": "our node (daemon, passthrough)",
    **SENDERS,
    "node_publisher_to_aiortc_receiver": "our publisher -> aiortc's stock receiver",
}


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "n/m"
    if isinstance(v, float):
        v = f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
    return f"{v}{unit}"


def plots(results: dict, folder: Path, prefix: str = "bench") -> tuple[list[str], str]:
    """Writes PNGs into `folder`; returns their file names and a note ('' if fine)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return [], "plots skipped: matplotlib is not installed (pip install 'media-node[bench]')"
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    cpu = results.get("sender_cpu") or {}
    clips = [k for k in cpu if k != "method"]
    if clips:
        fig, ax = plt.subplots(figsize=(8, 5))
        kinds = [k for k in LABELS if any(k in (cpu[c].get("senders") or {}) for c in clips)]
        width = 0.8 / max(1, len(kinds))
        top = 1.0
        for i, k in enumerate(kinds):
            vals = [((cpu[c].get("senders") or {}).get(k) or {}).get("cpu_percent", 0) for c in clips]
            xs = [x + i * width for x in range(len(clips))]
            ax.bar(xs, vals, width, label=LABELS[k])
            for x, v in zip(xs, vals, strict=False):
                if v:
                    ax.annotate(f"{v:.1f}", (x, v), ha="center", va="bottom", fontsize=7)
            top = max([top, *vals])
        ax.set_xticks([x + width * (len(kinds) - 1) / 2 for x in range(len(clips))], clips)
        ax.set_ylabel("sender CPU, % of one core (log scale)")
        ax.set_yscale("log")
        ax.set_ylim(1, top * 2)
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_title("Fig. 1: sender CPU, one viewer")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
        fig.tight_layout()
        name = f"{prefix}-sender-cpu.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        made.append(name)
    rows = (results.get("fanout") or {}).get("rows") or []
    if rows:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([r["viewers"] for r in rows], [r["cpu_percent"] for r in rows], "o-")
        ax.set_xlabel("viewers")
        ax.set_ylabel("daemon CPU, % of one core")
        ax.set_xticks([r["viewers"] for r in rows])
        ax.set_ylim(0, None)
        ax.set_title("Fig. 4: fan-out")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        name = f"{prefix}-fanout.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        made.append(name)
    lat = {k: v for k, v in (results.get("latency") or {}).items() if isinstance(v, dict) and v.get("n")}
    ttff = {k: v for k, v in (results.get("ttff") or {}).items() if isinstance(v, dict) and v.get("n")}
    if lat or ttff:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, data, title, hi in (
            (axes[0], lat, "Fig. 3: latency, ms (p50 / p99)", "p99_ms"),
            (axes[1], ttff, "Fig. 2: time to first frame, ms (p50 / p95)", "p95_ms"),
        ):
            names = list(data)
            ax.barh(names, [data[n]["p50_ms"] for n in names], label="p50")
            ax.barh(
                names,
                [data[n][hi] - data[n]["p50_ms"] for n in names],
                left=[data[n]["p50_ms"] for n in names],
                alpha=0.5,
                label=hi.split("_")[0],
            )
            ax.set_title(title, fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
            ax.legend(fontsize=7)
        fig.tight_layout()
        name = f"{prefix}-latency-ttff.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        made.append(name)
    return made, ""


def markdown(results: dict, images: list[str], note: str, image_dir: str = "") -> str:
    m = results.get("machine", {})
    out = ["# Benchmarks", ""]
    out += [
        f"Run: `media-node bench{' --quick' if results.get('mode') == 'quick' else ''}` "
        f"({results.get('mode')}), {results.get('started_utc', '')}, {results.get('elapsed_s', '?')} s.",
        "",
    ]
    out += ["Machine: " + ", ".join(f"{k} {v}" for k, v in m.items() if k not in ("ffmpeg",)) + ".", ""]
    if results.get("loadavg_start"):
        out += [
            f"Load average (1/5/15 min) at start {results['loadavg_start']}, at end {results.get('loadavg_end')} "
            "(other work on the machine during a run skews CPU figures).",
            "",
        ]
    ins = results.get("inputs") or {}
    if ins:
        out += [
            "Inputs (made with ffmpeg/libx264, constrained baseline, SPS/PPS before every IDR, IDR every 2 s, "
            "testsrc2 + temporal noise so every frame costs bits):",
            "",
        ]
        out += ["| clip | size | frames | measured bitrate |", "|---|---|---|---|"]
        for k, c in ins.items():
            out.append(
                f"| {k} | {c['width']}x{c['height']} @ {c['fps']} | {c['frames']} | "
                f"{c['measured_bitrate'] / 1e6:.2f} Mb/s |"
            )
        out.append("")
    for n in results.get("notes", []):
        out += [f"> {n}", ""]
    nm = results.get("not_measured") or {}
    if nm:
        out += ["**Not measured in this run** (reason as raised):", ""]
        out += [f"- `{k}`: {v}" for k, v in nm.items()] + [""]
    if note:
        out += [f"_{note}_", ""]
    for img in images:
        out += [f"![{img}]({image_dir}{img})", ""]

    cpu = results.get("sender_cpu") or {}
    out += ["## 1. Sender CPU", "", cpu.get("method", ""), ""]
    for clip, data in cpu.items():
        if clip == "method":
            continue
        out += [
            f"**{clip}**",
            "",
            "| sender | CPU % of one core | RSS max MiB | AUs at the receiver (whole connection) | Mb received |",
            "|---|---|---|---|---|",
        ]
        for k, r in (data.get("senders") or {}).items():
            out.append(
                f"| {LABELS.get(k, k)} | {_fmt(r.get('cpu_percent'))} | {_fmt(r.get('rss_max_mib'))} | "
                f"{r.get('aus_received', r.get('frames_max', 'n/m'))} | {_fmt(r.get('mbit_received'))} |"
            )
        if data.get("ratios"):
            out += [
                "",
                "Ratios to our daemon: "
                + ", ".join(f"{k.split('/')[0]} x{v}" for k, v in data["ratios"].items()),
            ]
        out.append("")
    prof = None
    for clip, data in cpu.items():
        if clip != "method":
            prof = prof or ((data.get("senders") or {}).get("node_daemon") or {}).get("profile")
    if prof:
        out += ["### Where the daemon's CPU goes (py-spy)", ""]
        out += _profile_tables(prof)

    tt = results.get("ttff") or {}
    out += [
        "## 2. Time to first frame",
        "",
        tt.get("method", ""),
        "",
        "| transport | calls (s apart) | p50 ms | p95 ms | answer p50 ms | connected p50 ms | first AU p50 ms | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, r in tt.items():
        if isinstance(r, dict):
            out.append(
                f"| {k} | {r['n']} ({r.get('pause_s', 0)}) | {_fmt(r['p50_ms'])} | {_fmt(r['p95_ms'])} | "
                f"{_fmt(r['answer']['p50_ms'])} | {_fmt((r.get('connected') or {}).get('p50_ms'))} | "
                f"{_fmt(r['first_au']['p50_ms'])} | {r['failed']} |"
            )
    out.append("")

    lat = results.get("latency") or {}
    out += [
        "## 3. Latency",
        "",
        lat.get("method", ""),
        "",
        "| path | AUs matched | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for k, r in lat.items():
        if isinstance(r, dict):
            out.append(
                f"| {LABELS.get(k, k)} | {r['matched']}/{r['sent']} | {_fmt(r['p50_ms'])} | "
                f"{_fmt(r['p99_ms'])} | {_fmt(r['max_ms'])} |"
            )
    out.append("")

    fan = results.get("fanout") or {}
    out += [
        "## 4. Fan-out",
        "",
        fan.get("method", ""),
        "",
        "| viewers | daemon CPU % | RSS max MiB | frames per viewer (min-max) | failed |",
        "|---|---|---|---|---|",
    ]
    for r in fan.get("rows", []):
        out.append(
            f"| {r['viewers']} | {_fmt(r['cpu_percent'])} | {_fmt(r['rss_max_mib'])} | "
            f"{r['frames_min']}-{r['frames_max']} | {r['failed']} |"
        )
    out.append("")
    if fan.get("per_viewer_marginal_cpu_percent") is not None:
        out += [
            f"Each extra viewer: {fan['per_viewer_marginal_cpu_percent']} % of one core (least-squares "
            f"slope over the rows; first to last row: {fan.get('per_viewer_first_to_last_cpu_percent')} %).",
            "",
        ]
    for r in fan.get("rows", []):
        if (r.get("profile") or {}).get("groups"):
            out += [f"Where the daemon's CPU goes with {r['viewers']} viewers (py-spy):", ""]
            out += _profile_tables(r["profile"])

    mem = results.get("memory") or {}
    out += ["## 5. Memory", ""]
    if "streaming_rss_mib" in mem:
        out.append(f"- Daemon RSS while streaming to one viewer: {mem['streaming_rss_mib']} MiB.")
    if mem.get("streaming_rss_by_viewers"):
        out.append(
            "- By viewers: "
            + ", ".join(f"{k}: {v} MiB" for k, v in mem["streaming_rss_by_viewers"].items())
            + "."
        )
    if mem.get("streaming_rss_no_clip_mib") is not None:
        src = (mem.get("streaming_rss_no_clip") or {}).get("source", "rtsp")
        out.append(
            f"- Daemon RSS while streaming to one viewer from a source that holds no clip in memory "
            f"({src}: a loopback RTSP camera): {mem['streaming_rss_no_clip_mib']} MiB."
        )
    c = mem.get("calls_in_a_row")
    if c:
        out += [
            "",
            f"{c['calls']} calls in a row over {c.get('via', '?')} ({c['failed']} failed, {c['seconds']} s), "
            f"each until its first frame; daemon after {c.get('warmup_calls', 5)} warm-up calls vs after all of them"
            + (
                f", each {c['settle_s']:g} s after the last call (the daemon's heap trim is done by then)"
                if "settle_s" in c
                else ""
            )
            + ":",
            "",
            "| | RSS MiB | open fds | threads |",
            "|---|---|---|---|",
            f"| before | {c['before']['rss_mib']} | {c['before']['fds']} | {c['before']['threads']} |",
            *(
                [f"| half-way | {c['middle']['rss_mib']} | {c['middle']['fds']} | {c['middle']['threads']} |"]
                if "middle" in c
                else []
            ),
            f"| after | {c['after']['rss_mib']} | {c['after']['fds']} | {c['after']['threads']} |",
            "",
            f"Growth: RSS {c['rss_growth_mib']} MiB, fds {c['fd_growth']}, threads {c['thread_growth']}"
            + (
                f"; RSS over the second half {c['rss_growth_second_half_mib']} MiB." if "middle" in c else "."
            ),
        ]
    out.append("")

    ls = results.get("link_sizes") or {}
    out += [
        "## 6. Link sizes",
        "",
        ls.get("note", ""),
        "",
        "| link | plain | sealed | plain, IPv6 overlay | sealed, IPv6 overlay |",
        "|---|---|---|---|---|",
    ]
    for key, label in (
        ("view_request_chars", "view-request (the viewer's offer)"),
        ("view_answer_chars", "answer to it"),
        ("call_offer_chars", "offer (the node calls)"),
        ("call_answer_chars", "answer to it"),
    ):
        if "plain" in ls:
            cells = [
                (ls.get(v) or {}).get(key, "n/m")
                for v in ("plain", "sealed", "plain_ipv6_overlay", "sealed_ipv6_overlay")
            ]
            out.append(f"| {label} | " + " | ".join(str(c) for c in cells) + " |")
    out.append("")

    snaps = results.get("snapshots") or {}
    out += [
        "## 7. Snapshot cost",
        "",
        snaps.get("method", ""),
        "",
        "| clip | size | IDR bytes | wall ms (median / max) | CPU ms | JPEG bytes | quantiser |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in snaps.items():
        if isinstance(r, dict):
            out.append(
                f"| {name} | {r['size']} | {r['idr_bytes_median']} | {r['wall_ms_median']} / "
                f"{r['wall_ms_max']} | {r['cpu_ms_median']} | {r['jpeg_bytes_median']} | "
                f"{r['quantiser_median']} |"
            )
    out.append("")

    cli = results.get("cli_startup") or {}
    if cli:
        out += [
            "## 8. CLI start-up",
            "",
            cli.get("method", ""),
            "",
            "| command | over `python -c pass`, ms | wall, fastest ms | wall, median ms "
            "| CPU over pass, ms |",
            "|---|---|---|---|---|",
        ]
        for name, label in (
            ("id", "`media-node id`"),
            ("link_make", "`link make`"),
            ("link_inspect", "`link inspect`"),
        ):
            out.append(
                f"| {label} | {_fmt(cli['over_python_ms'].get(name))} "
                f"| {_fmt(cli['wall_min_ms'].get(name))} | {_fmt(cli['wall_median_ms'].get(name))} "
                f"| {_fmt(cli['cpu_over_python_ms'].get(name))} |"
            )
        out += [
            f"| `python -c pass` | | {_fmt(cli['wall_min_ms'].get('pass'))} | "
            f"{_fmt(cli['wall_median_ms'].get('pass'))} | |",
            "",
        ]
    return "\n".join(out)


def _profile_tables(prof: dict) -> list[str]:
    if prof.get("skipped"):
        return [f"Profile skipped: {prof['skipped']}", ""]
    out = [f"{prof['samples']} samples; {prof['note']}.", "", "| part | share of samples |", "|---|---|"]
    out += [f"| {k} | {v} % |" for k, v in prof["groups"].items()]
    out += ["", "Top functions (self):", "", "| function | share |", "|---|---|"]
    out += [f"| `{f['function']}` | {f['share']} % |" for f in prof["top_functions"][:8]]
    out.append("")
    return out


MARKER = "<!-- analysis: kept when the report is regenerated -->"


def write_docs(results: dict, docs: Path) -> None:
    """Render into `docs` (images in its folder/bench/), keeping the hand-written
    analysis below MARKER in an existing file."""
    kept = ""
    if docs.exists():
        old = docs.read_text()
        if MARKER in old:
            kept = old[old.index(MARKER) :]
    images, note = plots(results, docs.parent / "bench", prefix="bench")
    text = markdown(results, images, note, image_dir="bench/")
    docs.write_text(text + ("\n" + kept if kept else ""))


def main(argv=None) -> None:
    """python -m bench.report RESULTS.json DOCS.md: re-render a saved run (images go to
    DOCS.md's folder/bench/)."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=(main.__doc__ or "").splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("docs", type=Path)
    args = ap.parse_args(argv)
    write_docs(json.loads(args.results.read_text()), args.docs)
    print(args.docs)


if __name__ == "__main__":
    main()
