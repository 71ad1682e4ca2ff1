"""aioice's mDNS module (and dnspython behind it) is loaded only when used: never by
this node, which drops `.local` candidates. Pinned to what aioice 0.13.0 reads from it
at import time, so an upgrade that reads more fails here instead of misbehaving."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys

import aioice
import aioice.ice

from node import lazyimports


def run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()


def test_daemon_imports_leave_dnspython_out():
    out = run(
        "import sys, node.service, node.calls, aiortc\n"
        "print(sorted(m for m in sys.modules if m == 'dns' or m.startswith('dns.')))"
    )
    assert out == "[]"


def test_first_real_use_loads_the_real_module():
    out = run(
        "import sys, node, aioice.ice as ice\n"
        "name = ice.mdns.create_mdns_hostname()\n"
        "real = type(sys.modules['aioice.mdns']).__name__\n"
        "print(name.endswith('.local'), 'dns.message' in sys.modules, real, ice.mdns.MDnsProtocol.__module__)"
    )
    assert out == "True True module aioice.mdns"


def test_aioice_reads_only_the_placeholders_at_import():
    assert aioice.__version__ == "0.13.0", "aioice changed: re-check node/lazyimports.py"
    tree = ast.parse(inspect.getsource(aioice.ice))
    eager = set()
    for node in tree.body:  # module level, and what a def evaluates when defined
        parts: list[ast.AST] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            parts = [*node.decorator_list, *(a.annotation for a in node.args.args if a.annotation)]
            parts += [node.returns] if node.returns else []
            parts += node.args.defaults
        elif not isinstance(node, ast.ClassDef):
            parts = [node]
        for part in parts:
            for sub in ast.walk(part):
                if (
                    isinstance(sub, ast.Attribute)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id == "mdns"
                ):
                    eager.add(sub.attr)
    assert eager <= set(lazyimports.LAZY["aioice.mdns"]), eager
    # and no class body in aioice.ice touches mdns when it is defined
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    assert "mdns." not in ast.unparse(stmt)
