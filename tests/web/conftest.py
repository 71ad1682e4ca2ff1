"""Fixtures for the web viewer's tests: the media tests' clips (encoded once per session)."""

from media.conftest import clip_dir  # noqa: F401  (a fixture)
