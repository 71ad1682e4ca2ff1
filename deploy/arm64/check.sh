#!/bin/sh
# `make arm64-check`: an emulated Raspberry Pi OS Trixie device (arm64 Debian 13 under
# qemu-user-static), media-node installed on it the way the Ansible role installs it,
# then `media-node doctor` and a short `media-node demo` run inside it.
#
# What it proves: the package installs on arm64 / Python 3.13 from aarch64 wheels (plus
# pyalsaaudio compiled on the device), the CLI and the daemon start, doctor reports the
# truth about an emulated device (no camera, no picamera2), and a call sets up (signed
# handshake, ICE, DTLS) between two nodes on the device's loopback. What it does not
# prove: speed. Emulation is roughly 50 times slower than a Pi, so frame counts are
# printed, labelled, and only "at least one frame arrived" is asserted.
#
# It also leaves the device wheelhouse in $CACHE/wheelhouse/<tag>/ (e.g. cp313-aarch64),
# the layout the role deploys from, so a controller needs no Pi to build one.
#
# Usage: deploy/arm64/check.sh CACHE_DIR   (run as root: debootstrap, chroot, mounts)
# Stages are cached under CACHE_DIR (the root file system, its apt packages, pip's
# download cache); delete CACHE_DIR to start from nothing.
set -eu

CACHE=${1:?usage: check.sh CACHE_DIR}
SUITE=trixie
ROOT=$CACHE/root
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DEVICE_PACKAGES="python3 python3-venv python3-dev gcc libc6-dev libasound2-dev alsa-utils ca-certificates"
T0=$(date +%s)

say() { printf '[arm64-check %4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf '[arm64-check] FAILED: %s\n' "$*" >&2; exit 1; }
stage_time() { printf '%s=%ss\n' "$1" "$2" >>"$CACHE/figures.txt"; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and bind mounts need it)"
for tool in debootstrap qemu-aarch64-static chroot apt-get; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install debootstrap qemu-user-static"
done
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
ROOT=$CACHE/root
: >"$CACHE/figures.txt"

# --- binfmt: let the kernel run aarch64 binaries through qemu -----------------------------
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  # Debian's entry has the F flag: the interpreter is opened now, so the root needs no copy.
  cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register \
    || die "cannot register qemu-aarch64 with binfmt_misc"
fi

# --- mounts inside the root, always undone ---------------------------------------------------
MOUNTED=""
mount_in() {  # mount_in TYPE-OR-bind SOURCE TARGET
  mkdir -p "$ROOT/$3"
  if [ "$1" = bind ]; then mount --bind "$2" "$ROOT/$3"; else mount -t "$1" "$2" "$ROOT/$3"; fi
  MOUNTED="$ROOT/$3 $MOUNTED"
}
cleanup() {
  for m in $MOUNTED; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

# --- stage 1: debootstrap (first stage on this machine, second under qemu) -----------------
if [ ! -e "$ROOT/.mn-debootstrap" ]; then
  # The mirror is whatever Debian archive this machine's apt already uses (never a
  # name written into the repository).
  MIRROR=$(apt-get indextargets --format '$(REPO_URI) $(ORIGIN) $(RELEASE)' 'Created-By: Packages' \
    | awk '$2 == "Debian" && $3 !~ /security/ {print $1; exit}')
  [ -n "$MIRROR" ] || die "no Debian archive in this machine's apt configuration"
  say "debootstrap $SUITE arm64 (minbase) from $MIRROR"
  rm -rf "$ROOT"
  t=$(date +%s)
  debootstrap --foreign --arch=arm64 --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || die "debootstrap first stage (see $CACHE/debootstrap.log)"
  stage_time debootstrap_first_stage $(($(date +%s) - t))
  t=$(date +%s)
  say "debootstrap second stage under qemu-aarch64"
  chroot "$ROOT" /debootstrap/debootstrap --second-stage >>"$CACHE/debootstrap.log" 2>&1 \
    || die "debootstrap second stage (see $CACHE/debootstrap.log)"
  stage_time debootstrap_second_stage $(($(date +%s) - t))
  touch "$ROOT/.mn-debootstrap"
fi

mount_in proc proc proc
mount_in sysfs sysfs sys
mount_in bind /dev dev
mount_in devpts devpts dev/pts
# Name resolution and the CA bundle of this machine, for pip inside the root.
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
mkdir -p "$ROOT/usr/local/share/mn-host-ca"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/usr/local/share/mn-host-ca/ca-certificates.crt"

# --- stage 2: the device's packages (what the role installs, plus a compiler to build
# pyalsaaudio: a Pi has none by default, which is why the wheelhouse is built here) -----------
if [ ! -e "$ROOT/.mn-apt" ]; then
  say "apt-get install $DEVICE_PACKAGES"
  t=$(date +%s)
  in_root apt-get -q update >"$CACHE/apt.log" 2>&1 || die "apt-get update in the root (see $CACHE/apt.log)"
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $DEVICE_PACKAGES \
    >>"$CACHE/apt.log" 2>&1 || die "apt-get install in the root (see $CACHE/apt.log)"
  stage_time apt_install $(($(date +%s) - t))
  touch "$ROOT/.mn-apt"
fi

PY=$(in_root python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
TAG=$(in_root python3 -c 'import platform, sys; print("cp%d%d-%s" % (sys.version_info[0], sys.version_info[1], platform.machine()))')
ARCH=$(in_root uname -m)
say "device: $(. "$ROOT/etc/os-release" && echo "$PRETTY_NAME"), $ARCH, Python $PY (wheelhouse tag $TAG)"
[ "$ARCH" = aarch64 ] || die "the root runs $ARCH, not aarch64"

# The install (stages 3 and 4, the slow ones under emulation) is redone when the sources
# changed since the last run; ARM64_REUSE=1 keeps a previous install even so (it says so).
SRC_HASH=$(cd "$REPO" && tar --sort=name --mtime=@0 --owner=0 --group=0 --exclude=__pycache__ \
  -cf - pyproject.toml README.md node firmware_config | sha256sum | cut -c1-16)
if [ -x "$ROOT/opt/media-node/venv/bin/media-node" ] && [ -d "$ROOT/wheelhouse" ] && \
   { [ "$(cat "$ROOT/.mn-installed" 2>/dev/null)" = "$SRC_HASH" ] || [ "${ARM64_REUSE:-}" = 1 ]; }; then
  if [ "$(cat "$ROOT/.mn-installed" 2>/dev/null)" = "$SRC_HASH" ]; then
    say "sources unchanged since the last run ($SRC_HASH): reusing its wheelhouse and install"
  else
    say "ARM64_REUSE=1: reusing a previous install (built from other sources than $SRC_HASH)"
  fi
  ls "$ROOT/wheelhouse" >"$CACHE/wheels.txt"
else
  # --- stage 3: the wheelhouse, built on the device ------------------------------------------
  say "building the wheelhouse on the device (pip wheel; pyalsaaudio compiles here)"
  rm -rf "$ROOT/src" "$ROOT/wheelhouse" "$ROOT/tmp/wh"
  mkdir -p "$ROOT/src"
  cp "$REPO/pyproject.toml" "$REPO/README.md" "$ROOT/src/"
  cp -r "$REPO/node" "$REPO/firmware_config" "$ROOT/src/"
  find "$ROOT/src" -name __pycache__ -prune -exec rm -rf {} +
  t=$(date +%s)
  PIPENV="PIP_CERT=/usr/local/share/mn-host-ca/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1"
  in_root env $PIPENV python3 -m venv /tmp/wh || die "python3 -m venv in the root"
  in_root env $PIPENV /tmp/wh/bin/pip wheel -q -w /wheelhouse /src >"$CACHE/pip-wheel.log" 2>&1 \
    || die "pip wheel on the device (see $CACHE/pip-wheel.log)"
  stage_time pip_wheel $(($(date +%s) - t))
  ls "$ROOT/wheelhouse" >"$CACHE/wheels.txt"
  say "$(wc -l <"$CACHE/wheels.txt") wheels"
  # Every compiled wheel must be for this Python and aarch64 (abi3 wheels count for any 3.x).
  bad=$(grep -v -E -- '-(py3|py2\.py3|cp3[0-9]*)-(none|abi3|cp'"${TAG%%-*}"'|'"${TAG%%-*}"')-(any|[a-z0-9_]*aarch64[a-z0-9_.]*)\.whl$' "$CACHE/wheels.txt" || true)
  [ -z "$bad" ] || die "wheels that do not fit $TAG: $bad"
  grep -q '^pyalsaaudio-.*aarch64\.whl$' "$CACHE/wheels.txt" || die "pyalsaaudio was not built for aarch64"

  # --- stage 4: install the way the role does (fresh venv, offline, wheelhouse only) -----------
  say "installing into /opt/media-node/venv from the wheelhouse only (no index)"
  rm -rf "$ROOT/opt/media-node"
  t=$(date +%s)
  in_root python3 -m venv /opt/media-node/venv || die "venv"
  in_root env PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheelhouse PIP_DISABLE_PIP_VERSION_CHECK=1 \
    /opt/media-node/venv/bin/pip install -q media-node >"$CACHE/pip-install.log" 2>&1 \
    || die "offline install from the wheelhouse (see $CACHE/pip-install.log)"
  stage_time pip_install_offline $(($(date +%s) - t))
  echo "$SRC_HASH" >"$ROOT/.mn-installed"
fi
VERSION=$(in_root /opt/media-node/venv/bin/media-node --version) || die "media-node --version"
say "installed: $VERSION"

# --- stage 5: doctor --------------------------------------------------------------------------
# A device home the way the role makes one (static overlay on loopback, as nothing else
# exists in the root), first with the test pattern: every required check must pass.
t=$(date +%s)
rm -rf "$ROOT/var/lib/media-node-check"
in_root /opt/media-node/venv/bin/media-node init --home /var/lib/media-node-check --name arm64-check >/dev/null \
  || die "media-node init"
CONF=$ROOT/var/lib/media-node-check/config.toml
# setconf SECTION.KEY=VALUE ...: through the package's own config model (validated).
setconf() {
  in_root /opt/media-node/venv/bin/python3 - /var/lib/media-node-check/config.toml "$@" <<'PYEOF' || die "editing config.toml: $*"
import sys
from pathlib import Path
from node.config import load_config, render_default_config
path, pairs = Path(sys.argv[1]), sys.argv[2:]
config = load_config(path)
for pair in pairs:
    key, value = pair.split("=", 1)
    section, field = key.split(".")
    setattr(getattr(config, section), field, value)
open(path, "w").write(render_default_config(config))
PYEOF
}
setconf overlay.address=127.0.0.1 overlay.cidr=127.0.0.0/8 media.video=testsrc media.audio=none
in_root /opt/media-node/venv/bin/media-node doctor --home /var/lib/media-node-check >"$CACHE/doctor-testsrc.txt" 2>&1 \
  || { cat "$CACHE/doctor-testsrc.txt"; die "doctor failed on a test-pattern home"; }
say "doctor (testsrc home): all required checks passed"
# Then as a Pi 4 would be configured: doctor must say picamera2 is missing (Debian has no
# python3-picamera2; it comes from the Raspberry Pi archive) and exit non-zero.
setconf media.video= media.profile=pi4
grep -q '^profile = "pi4"' "$CONF" || die "could not set media.profile in config.toml"
if in_root /opt/media-node/venv/bin/media-node doctor --json --home /var/lib/media-node-check >"$CACHE/doctor-pi4.json" 2>"$CACHE/doctor-pi4.err"; then
  die "doctor passed a pi4 profile on a device without a camera or picamera2"
fi
python3 - "$CACHE/doctor-pi4.json" <<'EOF' || die "doctor's pi4 report is not what an emulated device should show"
import json, sys
report = json.load(open(sys.argv[1]))
checks = {c["name"]: c for c in report["checks"]}
assert report["profile"] == "pi4" and not report["ok"], report
pc = checks.get("picamera2")
assert pc and pc["status"] == "missing" and "python3-picamera2" in pc["fix"], pc
assert checks["camera"]["status"] == "missing", checks["camera"]
for c in report["checks"]:
    print("   %-10s %-7s %s" % (c["name"], c["status"], c["detail"]))
EOF
stage_time doctor $(($(date +%s) - t))
say "doctor (pi4 home): exits non-zero, picamera2 and camera missing, each with its fix"

# --- stage 6: the demo ----------------------------------------------------------------------
say "media-node demo --seconds 8 (two nodes on the device's loopback)"
t=$(date +%s)
in_root /opt/media-node/venv/bin/media-node demo --seconds 8 --json --dir /tmp/mn-demo >"$CACHE/demo.json" 2>"$CACHE/demo.err" || true
rm -rf "$ROOT/tmp/mn-demo"
stage_time demo $(($(date +%s) - t))
python3 - "$CACHE/demo.json" "$CACHE/figures.txt" <<'EOF' || { tail -20 "$CACHE/demo.err"; die "the demo's call did not set up on arm64"; }
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except ValueError:
    raise SystemExit("no JSON summary from the demo")
frames = s.get("video_frames", 0)
lines = {
    "demo_connected": s.get("local_address") is not None,
    "demo_pair": "%s->%s" % (s.get("local_address"), s.get("remote_address")),
    "demo_video_frames": frames,
    "demo_video_keyframes": s.get("video_keyframes"),
    "demo_first_frame_ms": s.get("ttff_ms"),
    "demo_audio_frames": s.get("audio_frames"),
    "demo_kbps": s.get("kbps"),
    "demo_ended": s.get("ended"),
}
with open(sys.argv[2], "a") as f:
    for k, v in lines.items():
        f.write("%s=%s\n" % (k, v))
for k, v in lines.items():
    print("   %s: %s" % (k, v))
assert lines["demo_connected"], "ICE did not select a pair"
assert frames >= 1, "no video frame arrived"
EOF

# --- stage 7: hand the wheelhouse to the controller ---------------------------------------------
rm -rf "$CACHE/wheelhouse/$TAG"
mkdir -p "$CACHE/wheelhouse"
cp -r "$ROOT/wheelhouse" "$CACHE/wheelhouse/$TAG"
stage_time total $(($(date +%s) - T0))
say "device wheelhouse: $CACHE/wheelhouse/$TAG (point media_node_wheelhouse at $CACHE/wheelhouse)"
echo "--- figures (emulated: ~50x slower than a Pi; times are this machine's, not a Pi's)"
cat "$CACHE/figures.txt"
say "PASSED"
