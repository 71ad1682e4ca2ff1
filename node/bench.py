"""`media-node bench`: a thin entry into the benchmark suite in bench/ (a source
checkout's top-level folder, not part of the installed package)."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import NodeError


def _import_suite():
    root = Path(__file__).resolve().parent.parent
    if (root / "bench" / "suite.py").exists() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from bench import report, suite
    except ImportError as e:
        raise NodeError(
            f"the benchmark suite (bench/) is not here: run it from a source checkout ({e})"
        ) from None
    return suite, report


def run_bench(quick: bool, out: Path | None, docs: Path | None) -> dict:
    """Runs every figure; writes OUT/results-MODE.json, OUT/benchmarks-MODE.md and the
    PNGs; with `docs`, also that Markdown file (images beside it in bench/)."""
    suite, report = _import_suite()
    results = suite.run(quick, out)
    folder = Path(out) if out else suite.default_out()
    images, note = report.plots(results, folder, prefix=f"bench-{results['mode']}")
    (folder / f"benchmarks-{results['mode']}.md").write_text(report.markdown(results, images, note))
    if docs is not None:
        report.write_docs(results, Path(docs))
    results["report"] = str(folder / f"benchmarks-{results['mode']}.md")
    if note:
        results.setdefault("notes", []).append(note)
    return results
