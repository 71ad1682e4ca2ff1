"""The link commands' config memo: same values as the full config model, refreshed by
any change to config.toml, never a way around validation; and the short commands do
not import the config model (pydantic) at all once it holds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from node.config import load_config
from node.errors import NodeError
from node.home import Home
from node.linksettings import MEMO_NAME, link_settings


@pytest.fixture
def home(tmp_path) -> Home:
    h = Home(tmp_path / "h")
    h.create("memo")
    return h


def full(home: Home) -> tuple:
    c = load_config(home.config_file)
    return (c.links.ttl, c.links.clock_skew, c.links.seal, c.overlay.provider)


def test_memo_holds_the_validated_values_and_follows_edits(home):
    first = link_settings(home)
    assert (first.ttl, first.clock_skew, first.seal, first.provider) == full(home)
    assert (home.path / MEMO_NAME).exists()
    home.config_file.write_text('[links]\nttl = 300\nseal = true\n[overlay]\nprovider = "yggdrasil"\n')
    second = link_settings(home)
    assert (second.ttl, second.clock_skew, second.seal, second.provider) == full(home)
    assert (second.ttl, second.seal, second.provider) == (300, True, "yggdrasil")
    assert link_settings(home) == second  # from the memo now


def test_a_broken_config_is_refused_even_with_a_memo(home):
    link_settings(home)
    home.config_file.write_text("[links]\nttl = 5\n")  # below the model's minimum
    with pytest.raises(NodeError, match=r"links\.ttl"):
        link_settings(home)
    home.config_file.write_text("[links]\nttl = 60\nbogus = 1\n")
    with pytest.raises(NodeError, match="bogus"):
        link_settings(home)


def test_a_forged_memo_for_other_bytes_is_ignored(home):
    link_settings(home)
    memo = home.path / MEMO_NAME
    saved = json.loads(memo.read_text())
    saved["links"]["ttl"] = 99999  # what no valid config could say
    memo.write_text(json.dumps(saved))
    assert link_settings(home).ttl == 99999  # same key: the memo is trusted like the file
    home.config_file.write_text(home.config_file.read_text() + "\n")
    assert link_settings(home).ttl == full(home)[0]  # any edit: validated again
    memo.write_text("not json")
    assert link_settings(home).ttl == full(home)[0]


def test_a_memo_that_cannot_be_written_only_costs_time(home):
    (home.path / MEMO_NAME).mkdir()  # unwritable as a file, even for root
    assert link_settings(home).ttl == full(home)[0]
    assert link_settings(home).ttl == full(home)[0]
    assert [p.name for p in home.path.iterdir() if p.name.endswith(".tmp")] == []


def test_short_commands_do_not_import_the_config_model(home, tmp_path):
    """id and link make (memo in place) stay clear of pydantic, aiortc and av."""
    sdp = tmp_path / "o.sdp"
    sdp.write_text("v=0\r\n")
    probe = (
        "import sys, runpy; sys.argv = ['media-node'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('node.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('pydantic', 'aiortc', 'av', 'node.config') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    me = subprocess.run(
        [sys.executable, "-m", "node.cli", "id", "--home", str(home.path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    make = [
        "link",
        "make",
        "error",
        "--to",
        me,
        "--error-code",
        "busy",
        "--answers",
        "x" * 43,
        "--home",
        str(home.path),
    ]
    seen = []
    for args in (["id", "--home", str(home.path)], make, make):
        r = subprocess.run(
            [sys.executable, "-c", probe, *args], check=False, capture_output=True, text=True, timeout=60
        )
        assert "HEAVY" in r.stderr and "error:" not in r.stderr, r.stderr
        seen.append(r.stderr.split("HEAVY", 1)[1].strip())
    # id never needs the config; the first link make validates it, the next reads the memo
    assert seen[0] == "[]" and "pydantic" in seen[1] and seen[2] == "[]", seen
