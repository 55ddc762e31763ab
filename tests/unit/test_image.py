"""labctl.labs.image: the pure helpers — apt sources, the image key, the cache, grub defaults,
progress lines (the real build and boot: tests/integration/test_image.py)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.labs import image
from labctl.labs.image import (
    ImageSpec,
    LineCondenser,
    classify_apt,
    classify_debootstrap,
    grub_defaults,
    image_key,
    parse_deb822_sources,
    parse_one_line_sources,
    pick_mirror,
    sources_for_suite,
)

MIRROR = "http://deb.example.org/debian"

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.example.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
Enabled: no
URIs: http://old.example.org/debian
Suites: bookworm
Components: main
"""
THIRD_PARTY = """\
Types: deb
URIs: https://deb.nodesource.example/node_20.x
Suites: nodistro
Components: main
Signed-By: /usr/share/keyrings/nodesource.gpg
"""
ONE_LINE = """\
# a comment
deb [arch=amd64 signed-by=/usr/share/keyrings/local.gpg] http://mirror.example/debian bookworm main contrib
deb-src http://mirror.example/debian bookworm main
deb https://packages.cloud.example/apt cloud-sdk-bookworm main
"""


# ------------------------------------------------------------------- apt sources

def test_deb822_entries_keep_their_text_and_skip_disabled() -> None:
    sources = parse_deb822_sources(DEB822)
    assert [s.uris for s in sources] == [("http://deb.example.org/debian",),
                                         ("http://deb.example.org/debian-security",)]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[0].signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert sources[0].text.startswith("Types: deb\n# http://snapshot") and sources[0].deb822


def test_one_line_entries_with_options() -> None:
    sources = parse_one_line_sources(ONE_LINE)
    assert [(s.types, s.uris[0], s.suites) for s in sources] == [
        (("deb",), "http://mirror.example/debian", ("bookworm",)),
        (("deb-src",), "http://mirror.example/debian", ("bookworm",)),
        (("deb",), "https://packages.cloud.example/apt", ("cloud-sdk-bookworm",))]
    assert sources[0].signed_by == "/usr/share/keyrings/local.gpg"
    assert not sources[0].deb822 and sources[0].text.startswith("deb [arch=amd64")


def test_only_the_suites_own_binary_entries_go_into_the_chroot() -> None:
    sources = (parse_deb822_sources(THIRD_PARTY) + parse_deb822_sources(DEB822)
               + parse_one_line_sources(ONE_LINE))
    chosen = sources_for_suite(sources, "bookworm")
    assert [s.uris[0] for s in chosen] == ["http://deb.example.org/debian",
                                           "http://deb.example.org/debian-security",
                                           "http://mirror.example/debian"]
    assert sources_for_suite(sources, "trixie") == []


def test_mirror_is_the_entry_serving_the_suite_itself() -> None:
    third_first = parse_deb822_sources(THIRD_PARTY) + parse_deb822_sources(DEB822)
    assert pick_mirror(third_first, "bookworm") == "http://deb.example.org/debian"
    # a host on another release still names its Debian archive
    assert pick_mirror(third_first, "trixie") == "http://deb.example.org/debian"
    assert pick_mirror(parse_deb822_sources(THIRD_PARTY), "bookworm") is None


def test_host_sources_read_files_in_apts_order(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(ONE_LINE)
    (tmp_path / "sources.list.d" / "b.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "a.list.disabled-by-farm").write_text("deb http://x/ y main\n")
    sources = image.host_sources(tmp_path)
    assert [s.uris[0] for s in sources] == [
        "http://mirror.example/debian", "http://mirror.example/debian",
        "https://packages.cloud.example/apt", "http://deb.example.org/debian",
        "http://deb.example.org/debian-security"]


# ------------------------------------------------------------------- key, cache, grub

def test_key_depends_on_every_input_but_not_on_package_order() -> None:
    spec = ImageSpec()
    key = image_key(spec, MIRROR)
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    assert key == image_key(ImageSpec(packages=tuple(reversed(spec.packages))), MIRROR + "/")
    changed = [ImageSpec(suite="trixie"), ImageSpec(cmdline="quiet"), ImageSpec(disk_gb=8),
               ImageSpec(packages=spec.packages + ("strace",))]
    keys = {image_key(s, MIRROR) for s in changed} | {image_key(spec, "http://other/debian")}
    assert key not in keys and len(keys) == 5


def test_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABCTL_CACHE", str(tmp_path))
    assert image.cache_root() == tmp_path
    monkeypatch.delenv("LABCTL_CACHE")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert image.cache_root() == Path("/var/cache/labctl")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert image.cache_root() == tmp_path / ".cache" / "labctl"


def test_grub_defaults_edit_debians_file_in_place() -> None:
    debian = ('GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_DISTRIBUTOR=`lsb_release -i -s`\n'
              'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX=""\n#GRUB_TERMINAL=console\n')
    out = grub_defaults(debian, "net.ifnames=0 console=ttyS0,115200 console=tty0")
    assert "GRUB_TIMEOUT=1\n" in out and 'GRUB_CMDLINE_LINUX_DEFAULT=""\n' in out
    assert "GRUB_CMDLINE_LINUX='net.ifnames=0 console=ttyS0,115200 console=tty0'\n" in out
    assert 'GRUB_TERMINAL="console serial"\n' in out and "GRUB_SERIAL_COMMAND=" in out
    assert out.count("GRUB_TERMINAL") == 1 and "GRUB_DEFAULT=0\n" in out
    assert grub_defaults(out, "net.ifnames=0 console=ttyS0,115200 console=tty0") == out


def test_find_image_ignores_missing_or_foreign_manifests(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setattr(image, "host_mirror", lambda suite="bookworm": MIRROR)
    key = image_key(ImageSpec(), MIRROR)
    qcow2 = tmp_path / "images" / f"debian12-{key}.qcow2"
    manifest = qcow2.with_name(f"debian12-{key}.manifest.json")
    qcow2.parent.mkdir()
    qcow2.write_bytes(b"QFI")
    assert image.find_image(cache=tmp_path) is None            # no manifest: half built
    manifest.write_text("{not json")
    assert image.find_image(cache=tmp_path) is None
    manifest.write_text(json.dumps({"key": "0" * 16}))
    assert image.find_image(cache=tmp_path) is None
    manifest.write_text(json.dumps({"key": key, "kernel": "6.1.0-x-amd64"}))
    found = image.find_image(cache=tmp_path)
    assert found is not None and found.path == qcow2 and found.manifest["kernel"] == "6.1.0-x-amd64"


def test_building_needs_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(image, "host_mirror", lambda suite="bookworm": MIRROR)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        image.build_image(cache=tmp_path)


def test_no_mirror_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(image, "APT_DIR", tmp_path)
    with pytest.raises(LabError, match="no Debian mirror"):
        image.host_mirror()


# ------------------------------------------------------------------- progress

def test_condenser_shows_group_changes_and_one_line_per_interval() -> None:
    shown: list[str] = []
    now = [0.0]
    condenser = LineCondenser("debootstrap", classify_debootstrap, shown.append,
                              interval=10, clock=lambda: now[0])
    for index in range(100):
        now[0] = index * 0.25
        condenser.feed(f"I: Retrieving pkg{index} 1.0")
        condenser.feed(f"I: Validating pkg{index} 1.0")
    condenser.feed("W: something odd")
    condenser.feed("I: Extracting base-files...")
    condenser.feed("I: Extracting bash...")
    condenser.close()
    assert shown == ["debootstrap: I: Retrieving pkg0 1.0",
                     "debootstrap: I: Retrieving pkg40 1.0  (+79 lines)",
                     "debootstrap: I: Retrieving pkg80 1.0  (+79 lines)",
                     "debootstrap: W: something odd  (+39 lines)",
                     "debootstrap: I: Extracting base-files...",
                     "debootstrap: ... (1 more lines)"]


def test_apt_lines_are_grouped() -> None:
    assert classify_apt("Get:12 http://x bookworm/main amd64 udev 252") == "apt"
    assert classify_apt("Setting up udev (252.39-1) ...") == "apt"
    assert classify_apt("W: No zstd in /usr/bin:/sbin:/bin, using gzip") is None
    assert classify_apt("E: Unable to locate package nope") is None
    assert classify_debootstrap("I: Configuring libc-bin...") == "configure"
    assert classify_debootstrap("I: Base system installed successfully.") == "other"
