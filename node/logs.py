"""Log output for a terminal or for the systemd journal.

Under systemd, stdout/stderr go to the journal and systemd sets $JOURNAL_STREAM. The
journal stamps every line itself, so the node writes no timestamp of its own, and puts
the syslog priority in front as `<N>` (sd-daemon(3)): journald strips it and files the
line at that priority, so `journalctl -u media-node -p warning` shows warnings and
errors only. On a terminal the lines are unchanged: a timestamp, the level, the logger."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

TERMINAL_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"

# syslog priorities (sd-daemon.h SD_ERR ... SD_DEBUG)
PRIORITIES = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a Python level (levels between two map to the more severe)."""
    for level in sorted(PRIORITIES, reverse=True):
        if levelno >= level:
            return PRIORITIES[level]
    return PRIORITIES[logging.DEBUG]


class JournalFormatter(logging.Formatter):
    """`<N>logger: message`; a multi-line record (a traceback) keeps its priority on
    every line, since journald reads each line as its own entry."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines() or [""])


def under_journal(environ: Mapping[str, str] | None = None) -> bool:
    """True when stderr is the journal's stream (systemd sets JOURNAL_STREAM)."""
    env = os.environ if environ is None else environ
    return bool(env.get("JOURNAL_STREAM"))


def make_formatter(environ: Mapping[str, str] | None = None) -> logging.Formatter:
    return JournalFormatter() if under_journal(environ) else logging.Formatter(TERMINAL_FORMAT)


def setup_logging(level: int, environ: Mapping[str, str] | None = None) -> None:
    """A stderr handler on the root logger, formatted for where stderr goes. Like
    logging.basicConfig, it does nothing when the root logger already has a handler (an
    embedding program or a test harness decides then)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(environ))
    root.addHandler(handler)
    root.setLevel(level)


__all__ = ["JournalFormatter", "make_formatter", "setup_logging", "syslog_priority", "under_journal"]
