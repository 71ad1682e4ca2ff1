"""The Ansible tree passes ansible-lint's production profile, and every role variable is
documented (a comment above it in defaults/main.yml) and defined before use."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ANSIBLE = Path(__file__).resolve().parents[2] / "deploy/ansible"
ROLES = sorted(p for p in (ANSIBLE / "roles").iterdir() if p.is_dir())
PREFIXES = {"media_node": "media_node_", "mqtt_broker": "mqtt_broker_", "yggdrasil": "yggdrasil_"}


def test_ansible_lint_production_profile():
    r = subprocess.run(
        ["ansible-lint", "--profile", "production", "--nocolor", "-q"],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ANSIBLE.parent)},
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_playbook_syntax():
    r = subprocess.run(
        ["ansible-playbook", "--syntax-check", "-i", "inventory/hosts.example.yml", "site.yml"],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_default_has_a_comment():
    for role in ROLES:
        lines = (role / "defaults/main.yml").read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^([a-z_]+):", line)
            if m:
                above = lines[i - 1].strip()
                assert above.startswith("#"), f"{role.name}: {m.group(1)} has no comment above it"
                assert m.group(1).startswith(PREFIXES[role.name]), (
                    f"{role.name}: {m.group(1)} lacks the role prefix"
                )


def defined_names() -> set[str]:
    names: set[str] = set()
    for role in ROLES:
        names |= set(yaml.safe_load((role / "defaults/main.yml").read_text()))
        for f in list((role / "tasks").glob("*.yml")) + list((role / "handlers").glob("*.yml")):
            tasks = list(yaml.safe_load(f.read_text()) or [])
            for task in tasks:
                tasks.extend(task.get("block", []))  # tasks inside a block count too
                if "register" in task:
                    names.add(task["register"])
                names |= set(task.get("ansible.builtin.set_fact", {}) or {})
                names |= set(task.get("vars", {}) or {})
    return names


def test_every_role_variable_is_defined():
    defined = defined_names()
    # not after a dot: peer.yggdrasil_key is an attribute of an inventory entry
    pattern = re.compile(r"(?<![.\w])((?:media_node|mqtt_broker|yggdrasil)_[a-z0-9_]+)\b(?!\.py)")
    for role in ROLES:
        for f in role.rglob("*"):
            if f.suffix not in (".yml", ".j2") or f.name == "argument_specs.yml":  # that one is prose
                continue
            text = f.read_text()
            if f.suffix == ".j2":  # only what Jinja evaluates, not literal TOML keys
                text = " ".join(re.findall(r"{[{%](.*?)[}%]}", text, re.S))
            else:  # not the prose in comments
                text = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
            for name in pattern.findall(text):
                assert name in defined, f"{f.relative_to(ANSIBLE)}: {name} is used but never defined"


def test_every_role_has_argument_specs_and_a_readme_for_its_defaults():
    """The Galaxy convention: meta/argument_specs.yml names every variable of
    defaults/main.yml (Ansible checks their types before the role runs), with the same
    description, and README.md documents the role."""
    for role in ROLES:
        defaults = yaml.safe_load((role / "defaults/main.yml").read_text())
        spec = yaml.safe_load((role / "meta/argument_specs.yml").read_text())
        options = spec["argument_specs"]["main"]["options"]
        assert set(options) == set(defaults), (role.name, set(options) ^ set(defaults))
        for name, option in options.items():
            assert option["description"] and option["type"], (role.name, name)
            first = option["description"].split()[0]
            assert first in (role / "defaults/main.yml").read_text(), (role.name, name)
        readme = (role / "README.md").read_text()
        assert "defaults/main.yml" in readme and "Trixie" in readme, role.name
