"""Log lines for the journal (JOURNAL_STREAM set: `<N>` priority, no timestamp) and for
a terminal (unchanged: timestamp, level, logger), through the real CLI."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

from node.logs import make_formatter, syslog_priority

CLI = [sys.executable, "-m", "node.cli"]


def record(level: int, msg: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("node.test", level, __file__, 1, msg, (), exc_info)


def test_priorities_follow_syslog():
    assert [syslog_priority(lv) for lv in (10, 20, 30, 40, 50)] == [7, 6, 4, 3, 2]
    assert syslog_priority(35) == 4  # between two levels: the less severe one it reached


def test_journal_lines_have_a_priority_and_no_timestamp():
    fmt = make_formatter({"JOURNAL_STREAM": "8:12345"})
    assert fmt.format(record(logging.WARNING, "camera gone")) == "<4>node.test: camera gone"
    lines = fmt.format(record(logging.ERROR, "failed", exc=True)).splitlines()
    assert len(lines) > 2 and all(line.startswith("<3>") for line in lines)  # traceback too


def test_terminal_lines_are_unchanged():
    line = make_formatter({}).format(record(logging.WARNING, "camera gone"))
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING node.test: camera gone$", line), line


def test_the_cli_logs_for_the_journal_only_under_systemd(tmp_path):
    home = tmp_path / "h"
    subprocess.run([*CLI, "init", "--home", str(home)], capture_output=True, timeout=60, check=True)
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    for journal in (True, False):
        # `run` on a home without an overlay address: it logs as it stops, then fails
        out = subprocess.run(
            [*CLI, "-v", "run", "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**env, "JOURNAL_STREAM": "8:1"} if journal else env,
        )
        assert out.returncode != 0
        stopped = [ln for ln in out.stderr.splitlines() if "node.service: stopped" in ln]
        assert len(stopped) == 1, out.stderr
        if journal:
            assert re.match(r"^<6>node.service: stopped in", stopped[0]), stopped
        else:
            assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO node.service: stopped", stopped[0])
