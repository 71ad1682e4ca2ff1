"""`media-node bench`: a thin entry into the benchmark suite in bench/ (a source
checkout's top-level folder, not part of the installed package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import NodeError


def _import_suite() -> tuple[ModuleType, ModuleType]:
    """bench/ from the source checkout this package runs from, loaded by its path: no
    sys.path change, so nothing else at the checkout's top level becomes importable."""
    root = Path(__file__).resolve().parent.parent / "bench"
    try:
        if "bench" not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                "bench", root / "__init__.py", submodule_search_locations=[str(root)]
            )
            if spec is None or spec.loader is None or not (root / "suite.py").exists():
                raise ImportError(f"no bench/suite.py in {root.parent}")
            package = importlib.util.module_from_spec(spec)
            sys.modules["bench"] = package
            spec.loader.exec_module(package)
        from bench import report, suite
    except ImportError as e:
        sys.modules.pop("bench", None)
        raise NodeError(
            f"the benchmark suite (bench/) is not here: run it from a source checkout ({e})"
        ) from None
    return suite, report


def run_bench(quick: bool, out: Path | None, docs: Path | None) -> dict[str, Any]:
    """Runs every figure; writes OUT/results-MODE.json, OUT/benchmarks-MODE.md and the
    PNGs; with `docs`, also that Markdown file (images beside it in bench/)."""
    suite, report = _import_suite()
    results: dict[str, Any] = suite.run(quick, out)
    folder = Path(out) if out else suite.default_out()
    images, note = report.plots(results, folder, prefix=f"bench-{results['mode']}")
    (folder / f"benchmarks-{results['mode']}.md").write_text(report.markdown(results, images, note))
    if docs is not None:
        report.write_docs(results, Path(docs))
    results["report"] = str(folder / f"benchmarks-{results['mode']}.md")
    if note:
        results.setdefault("notes", []).append(note)
    return results
