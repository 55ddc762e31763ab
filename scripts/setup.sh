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

export DEBIAN_FRONTEND=noninteractive
# The VM lab's Intel igb NIC needs QEMU >= 8 and a libvirt that knows the model (>= 9.3); Debian 12
# has QEMU 7.2 and libvirt 9.0: there both come from bookworm-backports, together, so they match.
virt=(qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu
      libvirt-daemon-driver-network libvirt-clients)
qemu_major=$(qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p' || true)
if grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release && (( ${qemu_major:-0} < 8 )); then
  mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "${mirror:-http://deb.debian.org/debian}" /usr/share/keyrings/debian-archive-keyring.gpg \
    > /etc/apt/sources.list.d/labctl-bookworm-backports.sources
  echo "setup: QEMU ${qemu_major:-none} cannot emulate igb: QEMU and libvirt from bookworm-backports"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -t bookworm-backports "${virt[@]}" >/dev/null
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
