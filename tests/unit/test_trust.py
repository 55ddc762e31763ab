"""Lab private keys are private (0600 in 0700 directories, the seed ISO 0600 from its first byte),
no private key text in the fixture runs, and the re-pin hints spelled out (the host-key tests
against a real sshd: tests/integration/test_trust.py)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from labctl.labs import sshd
from labctl.labs.seed import write_seed_iso
from labctl.labs.state import LabState
from tests.helpers import FIXTURES, assert_no_secrets
from tests.helpers.keys import repin_commands
from tests.helpers.plans import two_host_inventory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    """Run with a permissive umask: modes must not depend on the caller's."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


# --------------------------------------------------------------------------- key files

def test_generate_keypair_makes_private_files(tmp_path: Path) -> None:
    key = tmp_path / "new" / "id_ed25519"
    with umask(0):
        sshd.generate_keypair(key, "test")
    assert mode(key) == 0o600
    assert mode(key.parent) == 0o700
    assert key.with_name("id_ed25519.pub").read_text().startswith("ssh-ed25519 ")


def test_generate_keypair_leaves_an_existing_directory_alone(tmp_path: Path) -> None:
    """The sshd fixture's directory is 0755 on purpose (a plain user's sshd child reads it)."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    sshd.generate_keypair(shared / "host_key", "test")
    assert mode(shared) == 0o755 and mode(shared / "host_key") == 0o600


def test_seed_iso_is_private_from_its_first_byte(tmp_path: Path) -> None:
    pytest.importorskip("pycdlib")
    seed = tmp_path / "guest.seed.iso"
    with umask(0):
        write_seed_iso(seed, {"user-data": "#cloud-config\n", "meta-data": "instance-id: x\n"})
    assert mode(seed) == 0o600
    assert not seed.with_suffix(".tmp").exists()


def test_netns_provider_keys_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The netns provider's real key setup, with namespaces, veth and sshd stubbed out:
    client key and host keys 0600 in 0700 directories; nothing else holds key text."""
    from labctl.labs.providers import netns
    monkeypatch.setattr(netns, "_ip", lambda *args, check=True: subprocess.CompletedProcess(args, 0, "", ""))
    monkeypatch.setattr(netns, "_in_ns", lambda *args, check=True: None)
    monkeypatch.setattr("labctl.labs.sshd.start_sshd_in_netns", lambda *args, **kw: 2 ** 22 + 1)
    lab_dir = tmp_path / ".labctl" / "trust"
    with umask(0):
        state = netns.NetnsProvider(two_host_inventory("trust", "netns"), lab_dir).up(lambda _: None)
    ssh_dir = lab_dir / "ssh"
    private = [ssh_dir / "id_ed25519"] + [ssh_dir / h / "ssh_host_ed25519_key" for h in ("dut", "loadgen")]
    assert mode(ssh_dir) == 0o700
    assert all(mode(k) == 0o600 and mode(k.parent) == 0o700 for k in private)
    assert {t.key_file for t in state.targets.values()} == {str(private[0])}
    scanned = assert_no_secrets([lab_dir], private)
    assert {"state.json", "known_hosts", "authorized_keys", "sshd_config"} <= {f.name for f in scanned}


def test_libvirt_provider_keys_and_seed_are_private(tmp_path: Path) -> None:
    """The libvirt provider's real key, disk and seed setup (no libvirtd needed): the seed
    carries the guest's private host key, so it is 0600 and nothing else holds key text."""
    pytest.importorskip("libvirt")
    pytest.importorskip("pycdlib")
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img missing")
    from labctl.labs.providers.libvirt import LibvirtProvider
    inventory = two_host_inventory("trust", "libvirt")
    lab_dir = tmp_path / ".labctl" / "trust"
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    provider = LibvirtProvider(inventory, lab_dir)
    state = LabState("trust", "libvirt")
    with umask(0):
        provider._ensure_dirs(state)
        client_key = provider._client_key(state)
        for guest in provider.layout.guests:
            provider._prepare_disks(state, guest, base, client_key)
    ssh_dir = lab_dir / "ssh"
    host_keys = [ssh_dir / g.host / "ssh_host_ed25519_key" for g in provider.layout.guests]
    seeds = sorted((lab_dir / "disks").glob("*.seed.iso"))
    assert mode(ssh_dir) == 0o700 and mode(client_key) == 0o600
    assert all(mode(k) == 0o600 and mode(k.parent) == 0o700 for k in host_keys)
    assert len(seeds) == 2 and all(mode(s) == 0o600 for s in seeds)
    body = host_keys[0].read_text().splitlines()[1]
    assert any(body.encode() in s.read_bytes() for s in seeds)      # why the seed is private
    assert_no_secrets([lab_dir], [client_key, *host_keys], exempt=seeds)


# --------------------------------------------------------------------------- no secret in artifacts

def test_fixture_runs_hold_no_private_key() -> None:
    """The recorded runs (manifest: inventory, lab facts, plan; summary) name key files at
    most, never their content."""
    scanned = assert_no_secrets([FIXTURES / "runs"], [])
    assert len([f for f in scanned if f.name == "manifest.json"]) == 3


def test_assert_no_secrets_finds_a_key_wherever_it_hides(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "id_ed25519"
    sshd.generate_keypair(key, "test")
    run = tmp_path / "run"
    run.mkdir()
    (run / "clean.json").write_text(f'{{"key_file": "{key}"}}')
    assert_no_secrets([run], [key])
    body = key.read_text().splitlines()[2]
    (run / "manifest.json").write_text(f'{{"seed": "{body}"}}')    # a line of it, JSON-embedded
    with pytest.raises(AssertionError, match="manifest.json: holds secret text"):
        assert_no_secrets([run], [key])
    (run / "manifest.json").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(AssertionError, match="holds a private key"):
        assert_no_secrets([run], [])


# --------------------------------------------------------------------------- re-pin hints (no sshd)

def test_repin_hint_for_an_existing_host_on_another_port(tmp_path: Path) -> None:
    """[addr]:port as known_hosts spells it, the key's own type, paths quoted for sh."""
    import paramiko

    from labctl.transport.ssh import fingerprint, repin_hint
    from labctl.transport.target import SshTarget
    key = paramiko.RSAKey.generate(1024)
    known = tmp_path / "my lab" / "known_hosts"
    target = SshTarget("dut", "192.0.2.7", 2222, "root", "id", str(known), None)
    hint = repin_hint(target, key, changed=True)
    assert repin_commands(hint) == [
        f"ssh-keygen -R '[192.0.2.7]:2222' -f '{known}'",
        f"ssh-keyscan -p 2222 -t rsa 192.0.2.7 > '{known}.new'",
        f"ssh-keygen -lf '{known}.new'      # must print {fingerprint(key)}",
        f"cat '{known}.new' >> '{known}' && rm '{known}.new'"]
    assert "/etc/ssh/ssh_host_rsa_key.pub" in hint and "hosts.dut.ssh.known_hosts" in hint
    assert "`labctl down && labctl up`" in hint


def test_repin_hint_for_a_lab_labctl_made(tmp_path: Path) -> None:
    import paramiko

    from labctl.transport.ssh import repin_hint
    from labctl.transport.target import SshTarget
    known = tmp_path / ".labctl" / "blog" / "ssh" / "known_hosts"
    target = SshTarget("dut", "198.19.0.10", 22, "root", "id", str(known), "labctl-virt")
    hint = repin_hint(target, paramiko.RSAKey.generate(1024), changed=False)
    assert "`labctl down && labctl up`" in hint and not repin_commands(hint)
