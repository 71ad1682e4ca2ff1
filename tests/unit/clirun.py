"""Run the media-node command line in this process, as a shell would: argv in; exit
code, stdout and stderr out; `input` as stdin."""

from __future__ import annotations

import contextlib
import io
import sys

from node.cli import main


def invoke(*args: object, input: str | None = None) -> tuple[int, str, str]:
    """`main(argv)`, its SystemExit turned into the exit code the shell would see."""
    out, err = io.StringIO(), io.StringIO()
    stdin = sys.stdin
    sys.stdin = io.StringIO(input or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
    finally:
        sys.stdin = stdin
    return code, out.getvalue(), err.getvalue()
