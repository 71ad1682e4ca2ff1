# media-node: the two commands are `make demo` and `make test`.
# Both install what they need, as root, on a fresh Debian 13 (Trixie) or 12 (Bookworm)
# machine, Raspberry Pi OS included (Trixie, Python 3.13, first; Bookworm, 3.11, still):
# missing system packages (apt), a virtual environment in .venv, and the package.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# System packages: build deps for pyalsaaudio, and the real components the tests run
# (broker, overlays, capture, sshd for Ansible, ffmpeg for RTSP fixtures).
APT_PACKAGES := python3-venv python3-dev gcc libasound2-dev alsa-utils iproute2 \
  mosquitto mosquitto-clients yggdrasil wireguard-go wireguard-tools nebula tcpdump \
  openssh-server openssh-client \
  ffmpeg libcap-dev sudo ansible ansible-lint systemd openssl \
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
  gstreamer1.0-plugins-bad gstreamer1.0-nice gstreamer1.0-libav \
  gir1.2-gst-plugins-bad-1.0 gir1.2-gst-rtsp-server-1.0 python3-gi \
  chromium firefox-esr

STAMP := $(VENV)/.installed

# `make arm64-check`: an emulated Raspberry Pi OS Trixie device (arm64, Python 3.13) built
# with debootstrap + qemu-user-static and cached here; media-node is installed on it the
# way the Ansible role does, then doctor and a short demo run. Slow (~15 min the first
# time on a quiet machine), not part of `make test`. Leaves the device wheelhouse in
# $(ARM64_CACHE)/wheelhouse.
ARM64_CACHE ?= .cache/arm64

.PHONY: demo test lint deps system-packages clean arm64-check

# What `make lint` checks (settings in pyproject.toml): ruff on the code and the tests,
# mypy (strict) on node/ and bench/.
LINT_PATHS := node bench tests

demo: system-packages $(STAMP)
	$(BIN)/media-node demo

test: system-packages $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

deps: $(STAMP)

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing system packages (run as root or install them): $$missing" >&2; exit 1; fi; \
	  echo "installing system packages: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml | system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

arm64-check:
	@command -v debootstrap >/dev/null && command -v qemu-aarch64-static >/dev/null || \
	  { echo "arm64-check needs debootstrap and qemu-user-static (apt-get install debootstrap qemu-user-static)" >&2; exit 1; }
	sh deploy/arm64/check.sh $(ARM64_CACHE)

clean:
	rm -rf $(VENV) build *.egg-info
