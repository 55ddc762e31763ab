#!/bin/bash
# Install everything labctl and its tests need on a Debian 12 machine (run as root):
# Debian packages, then a virtualenv in .venv with labctl and its test dependencies.
# Idempotent: packages already installed are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh: run as root (labctl creates network namespaces, starts sshd and libvirtd)" >&2
  exit 1
fi

packages=(
  # the core and the netns lab
  python3 python3-venv python3-pip openssh-server openssh-client iproute2 ethtool iperf3
  procps netcat-openbsd util-linux ca-certificates
  # the ssh provider's tests: a plain user that becomes root with sudo
  sudo
  # the libvirt lab: a private libvirtd (no systemd needed), QEMU, Debian's libvirt binding
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils qemu-system-x86
  qemu-utils dnsmasq-base iptables python3-libvirt
  # the guest image build
  debootstrap fdisk e2fsprogs mount
  # perf on this machine: the fold benchmark and the netns lab's profiling
  linux-perf
  # headless Chromium for the browser test of report.html / compare.html (tests/integration/test_browser.py)
  chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Downloads go to a cache directory when one is given (CI), never required.
if [[ -n ${LABCTL_CACHE:-} ]]; then
  mkdir -p "$LABCTL_CACHE/pip" && export PIP_CACHE_DIR=$LABCTL_CACHE/pip
fi
# Debian's python with its site packages: python3-libvirt comes from there.
if ! grep -qs "include-system-site-packages = true" .venv/pyvenv.cfg ||
   [[ $(readlink -f .venv/bin/python) != $(readlink -f /usr/bin/python3) ]]; then
  rm -rf .venv
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
echo "setup: ready ($(.venv/bin/labctl --version))"
