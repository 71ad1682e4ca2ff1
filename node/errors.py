"""Errors every module may raise to the CLI: a message a person can act on."""


class NodeError(Exception):
    """A user-facing error: the CLI prints it and exits non-zero (no traceback)."""

    exit_code = 1
