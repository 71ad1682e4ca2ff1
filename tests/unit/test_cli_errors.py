"""What a user who gets things wrong sees: every mistake is one `error: ...` line on stderr
and a non-zero exit, never a traceback; `--help` tells what each command does."""

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from node.cli import COMMANDS, main


def run(*args, input=None):
    result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    return result.exit_code, result.stdout, result.stderr


def daemon(home):
    """`media-node run` as the service starts it: its own process, the real entry point."""
    return subprocess.run(
        [sys.executable, "-m", "node.cli", "run", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    assert run("init", "--home", home)[0] == 0
    return home


@pytest.mark.parametrize(
    "text, problem",
    [
        ('[calls]\nmax_calls = "many"\n', "calls.max_calls: expected `int`, got `str`"),
        ("[calls]\nmax_calls = 0\n", "calls.max_calls: expected `int` >= 1"),
        ("[calls]\nmax_callz = 2\n", "calls.max_callz: unknown key"),
        ("[calls.extra]\nx = 1\n", "calls.extra: unknown key"),
        ("[callz]\n", "callz: unknown key"),
        ('[overlay]\nprovider = "tor"\n', "overlay.provider: invalid enum value 'tor'; use one of: static,"),
        ("[calls\n", "not valid TOML: "),
        ("calls = 3\n", "calls: expected a table ([section]), got `int`"),
        ('[mqtt]\ncontrollers = ["a", 1]\n', "mqtt.controllers[1]: expected `str`, got `int`"),
        (b"\xff[calls]\n", "not UTF-8 text"),
    ],
)
def test_the_daemon_refuses_a_wrong_config_naming_the_file_and_field(home, text, problem):
    config = home / "config.toml"
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    proc = daemon(home)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {config}: {problem}"), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line


def test_the_daemon_refuses_a_config_it_cannot_read(home):
    (home / "config.toml").unlink()
    (home / "config.toml").mkdir()
    proc = daemon(home)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr == f"error: {home / 'config.toml'}: cannot read it: Is a directory\n"


def test_a_file_system_refusal_is_one_line_not_a_traceback(tmp_path):
    """`init --home` naming a file: the OSError from mkdir becomes `error: ...`, exit 1."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "node.cli", "init", "--home", str(not_a_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == f"error: File exists: {not_a_dir}\n"


def _groups(group=main, path=()):
    yield path, group
    ctx = click.Context(group, info_name=path[-1] if path else "media-node")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _groups(command, (*path, name))


@pytest.mark.parametrize(
    ("path", "group"), [pytest.param(p, g, id=" ".join(("media-node", *p))) for p, g in _groups()]
)
def test_help_lists_every_command_with_its_whole_summary(path, group):
    """`media-node --help` (and each group's): every command on one line, its summary
    whole, not cut off with "..." at the terminal's 80 columns."""
    # 78: the width click formats for on an 80-column terminal (or none at all)
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=78)
    assert result.exit_code == 0
    out = result.stdout
    listing = out.split("Commands:\n", 1)[1].splitlines()
    ctx = click.Context(group)
    names = group.list_commands(ctx)
    if not path:
        assert set(names) == set(COMMANDS)
    assert len(listing) == len(names), listing  # one line each: no summary wraps
    for name, line in zip(names, listing, strict=True):
        summary = line.split(None, 1)[1]
        assert line.split()[0] == name and not summary.endswith("..."), line
        assert len(summary) > 10, line  # says something


@pytest.mark.parametrize(
    "args",
    [
        ("web", "--port", "99999"),  # was an OverflowError traceback from bind()
        ("web", "--port", "-1"),
        ("doctor", "--timeout", "0"),
        ("doctor", "--timeout", "-1"),
        ("link", "make", "error", "--to", "x", "--ttl", "0"),  # was silently config links.ttl
        ("link", "make", "error", "--to", "x", "--ttl", "-5"),
        ("link", "make", "error", "--to", "x", "--ttl", "86401"),
    ],
    ids=" ".join,
)
def test_a_number_option_out_of_range_is_a_usage_error(home, args):
    code, out, err = run(*args, "--home", home)
    assert code == 2, (out, err)
    assert f"Invalid value for '{args[-2]}'" in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "args",
    [
        ("peers", "list"),
        ("peers", "remove", "cam"),
        ("peers", "add", "cam", "C" * 52, "--address", "10.0.0.2"),
    ],
    ids=" ".join,
)
def test_the_peer_commands_refuse_a_home_that_was_never_made(tmp_path, args):
    """A mistyped --home: `peers list` printed nothing and exited 0; `peers add` was a
    FileNotFoundError traceback (peers.tmp in a missing folder)."""
    home = tmp_path / "typo"
    code, out, err = run(*args, "--home", home)
    assert code == 1 and out == "", (out, err)
    assert err == f"error: {home} has no identity: run `media-node init --home {home}` first\n"
    assert not home.exists()
