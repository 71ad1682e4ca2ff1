"""Benchmarks for media-node (not tests): `media-node bench [--quick] [--json]`.

Everything here measures; nothing asserts speed. Inputs and raw results go to
bench/out/ (git-ignored); docs/benchmarks.md holds a full run."""
