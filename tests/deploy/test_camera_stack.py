"""The media_node role's camera stack and wheelhouse checks, run by Ansible itself on
this machine (local connection, paths under a temp dir).

python3-picamera2 lives in the Raspberry Pi archive, which is not reachable here, so the
apt step is proven against a local apt repository holding a stand-in package of that
name, built with dpkg-deb in the test (it installs one documentation file, no Python
module). apt reads only that repository: APT_CONFIG points its sources, lists and cache
into the temp dir; the stand-in is removed again at the end."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from .conftest import wheel_tag
from .test_roles import MEDIA, ansible_env

STANDIN = "python3-picamera2"


def require_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the camera-stack test needs root (apt, dpkg) and must run under CI")
        pytest.skip("needs root (apt, dpkg)")


def build_repo(folder: Path, with_package: bool) -> Path:
    """A flat apt repository (`deb [trusted=yes] file:DIR ./`), and an apt.conf that
    makes apt use only it."""
    repo = folder / "repo"
    repo.mkdir(parents=True)
    packages = ""
    if with_package:
        pkg = folder / "pkg"
        (pkg / "DEBIAN").mkdir(parents=True)
        (pkg / "usr/share/doc" / STANDIN).mkdir(parents=True)
        (pkg / "usr/share/doc" / STANDIN / "README").write_text("media-node test stand-in, no code\n")
        control = (
            f"Package: {STANDIN}\nVersion: 0.0.1+mediaNodeTest\nArchitecture: all\n"
            "Maintainer: media-node tests <tests@invalid>\nSection: python\nPriority: optional\n"
            "Description: stand-in for the Raspberry Pi archive's picamera2 (tests only)\n"
        )
        (pkg / "DEBIAN/control").write_text(control)
        deb = repo / f"{STANDIN}_0.0.1_all.deb"
        subprocess.run(
            ["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        data = deb.read_bytes()
        packages = control.replace(
            "Description:",
            f"Filename: ./{deb.name}\nSize: {len(data)}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\nDescription:",
        )
    (repo / "Packages").write_text(packages)
    state = folder / "apt"
    for d in ("lists/partial", "cache/archives/partial", "parts", "prefs"):
        (state / d).mkdir(parents=True)
    (state / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    conf = folder / "apt.conf"
    conf.write_text(
        f'Dir::Etc::sourcelist "{state / "sources.list"}";\n'
        f'Dir::Etc::sourceparts "{state / "parts"}";\n'
        f'Dir::Etc::preferencesparts "{state / "prefs"}";\n'
        f'Dir::State::lists "{state / "lists"}";\n'
        f'Dir::Cache "{state / "cache"}";\n'
        'APT::Get::List-Cleanup "false";\n'
        'Acquire::Languages "none";\n'
        'DPkg::Lock::Timeout "600";\n'
    )
    return conf


def run_tasks(tmp: Path, task_file: str, variables: dict, apt_conf: Path | None = None):
    """One task file of the role, with the role's defaults and a stand-in handler."""
    plays = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars_files": [str(MEDIA / "defaults/main.yml")],
            "tasks": [{"ansible.builtin.include_tasks": str(MEDIA / "tasks" / task_file)}],
            "handlers": [{"name": "Restart media-node", "ansible.builtin.debug": {"msg": "restart"}}],
        }
    ]
    (tmp / "pb.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    # extra vars: above the role defaults read through vars_files
    (tmp / "vars.json").write_text(json.dumps({"playbook_dir": str(tmp), **variables}))
    env = ansible_env(tmp)
    if apt_conf is not None:
        env["APT_CONFIG"] = str(apt_conf)
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            str(tmp / "pb.yml"),
            "-e",
            f"@{tmp / 'vars.json'}",
            "-e",
            "ansible_python_interpreter=/usr/bin/python3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def changed(out: str) -> int:
    line = next(ln for ln in out.splitlines() if ln.startswith("localhost") and "changed=" in ln)
    return int(line.split("changed=")[1].split()[0])


def site_packages(prefix: Path) -> str:
    cfg = (prefix / "venv/pyvenv.cfg").read_text()
    return next(ln.split("=")[1].strip() for ln in cfg.splitlines() if ln.startswith("include-system"))


def standin_wheel(folder: Path) -> Path:
    """A media-node wheel with no dependencies and a `media-node` script: what the role's
    venv steps install (offline, from <prefix>/wheelhouse), in seconds instead of minutes."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "media_node-0.0.1-py3-none-any.whl"
    dist = "media_node-0.0.1.dist-info"
    files = {
        "media_node_standin/__init__.py": "def main():\n    print('stand-in')\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: media-node\nVersion: 0.0.1\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[console_scripts]\nmedia-node = media_node_standin:main\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{dist}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return wheel


@pytest.fixture
def installed_prefix(tmp_path):
    """A prefix as install.yml leaves it: the unpacked wheelhouse and a venv without
    system site-packages (what a first run on a Pi makes before the profile is read)."""
    prefix = tmp_path / "opt"
    standin_wheel(prefix / "wheelhouse")
    subprocess.run(
        ["/usr/bin/python3", "-m", "venv", "--without-pip", str(prefix / "venv")], check=True, timeout=120
    )
    return prefix


def camera_vars(prefix: Path, **extra) -> dict:
    return {
        "media_node_prefix": str(prefix),
        "media_node_python": "/usr/bin/python3",
        "media_node_board": {"name": "pi4", "video": {"source": "picamera2"}},
        "media_node_video": "",
        **extra,
    }


def test_picamera2_profile_gets_the_apt_package_and_a_system_site_packages_venv(tmp_path, installed_prefix):
    require_root()
    prefix = installed_prefix
    conf = build_repo(tmp_path / "aptrepo", with_package=True)
    try:
        first = run_tasks(tmp_path, "camera.yml", camera_vars(prefix), conf)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status} ${Version}", STANDIN],
            capture_output=True,
            text=True,
            check=False,
        )
        assert status.stdout == "install ok installed 0.0.1+mediaNodeTest", status.stdout
        assert site_packages(prefix) == "true"
        assert (prefix / "venv/bin/media-node").exists()  # recreated and reinstalled offline
        again = run_tasks(tmp_path, "camera.yml", camera_vars(prefix), conf)
        assert again.returncode == 0 and changed(again.stdout) == 0, again.stdout[-4000:]
        # flipping the setting recreates the venv (and only then is something changed)
        flipped = run_tasks(
            tmp_path, "camera.yml", camera_vars(prefix, media_node_system_site_packages=False), conf
        )
        assert flipped.returncode == 0, flipped.stdout[-4000:]
        assert changed(flipped.stdout) > 0 and site_packages(prefix) == "false"
        assert (prefix / "venv/bin/media-node").exists()
        # a source that needs no picamera2 (a USB camera on a Pi) keeps a plain venv
        usb = run_tasks(tmp_path, "camera.yml", camera_vars(prefix, media_node_video="v4l2:/dev/video0"))
        assert usb.returncode == 0 and changed(usb.stdout) == 0, usb.stdout[-4000:]
    finally:
        subprocess.run(["dpkg", "--purge", STANDIN], capture_output=True, timeout=300, check=False)


def test_the_role_fails_clearly_where_python3_picamera2_does_not_exist(tmp_path):
    require_root()
    conf = build_repo(tmp_path / "emptyrepo", with_package=False)
    out = run_tasks(tmp_path, "camera.yml", camera_vars(tmp_path / "opt"), conf)
    assert out.returncode != 0
    assert "python3-picamera2 is not available from this device's apt sources" in out.stdout
    assert "Raspberry Pi archive" in out.stdout


def test_a_wheelhouse_for_another_python_is_refused(tmp_path):
    root = tmp_path / "wheelhouse"
    other = "cp399-" + wheel_tag().split("-", 1)[1]
    (root / other).mkdir(parents=True)
    (root / other / "media_node-0.1.0-py3-none-any.whl").write_bytes(b"")
    out = run_tasks(
        tmp_path,
        "wheelhouse.yml",
        {"media_node_wheelhouse": str(root), "media_node_python": "/usr/bin/python3"},
    )
    assert out.returncode != 0
    assert f"no wheelhouse for this device's Python and CPU ({wheel_tag()})" in out.stdout, out.stdout[-3000:]
    assert other in out.stdout  # what was found is named
    # the right folder, but holding a wheel built for another Python
    mine = root / wheel_tag()
    mine.mkdir()
    (mine / "media_node-0.1.0-py3-none-any.whl").write_bytes(b"")
    (mine / "pydantic_core-2.0-cp399-cp399-manylinux_2_17_x86_64.manylinux2014_x86_64.whl").write_bytes(b"")
    out = run_tasks(
        tmp_path,
        "wheelhouse.yml",
        {"media_node_wheelhouse": str(root), "media_node_python": "/usr/bin/python3"},
    )
    assert out.returncode != 0
    assert "wheels for another Python or CPU: pydantic_core-2.0-cp399" in out.stdout, out.stdout[-3000:]
