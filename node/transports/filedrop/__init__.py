"""File-drop transport: links arrive as files in the home's inbox/, replies leave as
files of the same name in outbox/, refusals go to rejected/ with reasons/NAME.

watcher.py decides when a file is complete, handling.py takes it from the claim to
done/ or rejected/ exactly once (also across a stop), folders.py names what the node
writes so that nothing it writes can replace a file someone dropped, client.py is the
sending side. docs/operations.md states each guarantee and its limits."""

from __future__ import annotations

from .client import FileDropClient, new_drop_name
from .folders import write_atomic
from .watcher import HANDLE_TIMEOUT, FileDropWatcher
from .writers import is_unfinished, open_for_writing

__all__ = [
    "HANDLE_TIMEOUT",
    "FileDropClient",
    "FileDropWatcher",
    "is_unfinished",
    "new_drop_name",
    "open_for_writing",
    "write_atomic",
]
