"""Integration: pinned host keys are never bypassed, the printed way to re-pin works, and no
private key text ends up in a message, a log or a file (the key files, fixture runs and re-pin
hints without sshd: tests/unit/test_trust.py).

The tests use the real sshd of tests/helpers/sshd_fixtures.py (a namespace of this test's
own, loopback only) and then follow the printed re-pin instructions literally.
"""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import HostError, TransportError
from labctl.labs import sshd
from labctl.transport.ssh import SshTransport
from tests.helpers import assert_no_secrets, files_under
from tests.helpers.keys import repin_commands, ssh_fingerprint

integration = pytest.mark.integration


# --------------------------------------------------------------------------- pinned host keys (real sshd)

def refusal(target: Any) -> str:
    with pytest.raises(TransportError) as caught:
        SshTransport(target, connect_timeout=5).open()
    return str(caught.value)


@integration
def test_unknown_host_key_refused_then_repinned_as_told(sshd_netns: Any, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line("127.0.0.9", 22, sshd_netns.host_pubkey) + "\n")
    offered = ssh_fingerprint(sshd_netns.host_pubkey)
    message = refusal(sshd_netns.target("root", known_hosts=str(known)))
    assert "unknown host key for 127.0.0.1" in message and f"ssh-ed25519 {offered}" in message
    assert str(known) in message and "`labctl down && labctl up`" in message
    commands = repin_commands(message)
    assert commands[0].startswith(f"nsenter --net=/run/netns/{sshd_netns.netns} ssh-keyscan -p 22 -t ed25519 "
                                  "127.0.0.1")
    assert not any("ssh-keygen -R" in c for c in commands)          # nothing to remove
    follow(commands, offered)
    with SshTransport(sshd_netns.target("root", known_hosts=str(known))) as transport:
        assert transport.run("echo pinned").stdout == "pinned\n"


@integration
def test_changed_host_key_refused_then_repinned_as_told(sshd_netns: Any, tmp_path: Path) -> None:
    sshd.generate_keypair(tmp_path / "impostor", "impostor")
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line("127.0.0.1", 22, tmp_path / "impostor.pub") + "\n")
    offered, pinned = ssh_fingerprint(sshd_netns.host_pubkey), ssh_fingerprint(tmp_path / "impostor.pub")
    message = refusal(sshd_netns.target("root", known_hosts=str(known)))
    assert f"host key changed: the server offers ssh-ed25519 {offered}, but {known} pins " \
           f"ssh-ed25519 {pinned}; refusing to connect." in message
    assert "`labctl down && labctl up`" in message and f"verify {offered} out of band" in message
    commands = repin_commands(message)
    assert commands[0] == f"ssh-keygen -R 127.0.0.1 -f {known}"
    follow(commands, offered)
    assert (tmp_path / "impostor.pub").read_text().split()[1] not in known.read_text()
    with SshTransport(sshd_netns.target("root", known_hosts=str(known))) as transport:
        assert transport.run("echo repinned").stdout == "repinned\n"


def follow(commands: list[str], offered: str) -> None:
    """Run the hint's commands as printed; the fingerprint check must show the offered key."""
    for command in commands:
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"{command}: {done.stderr}"
        if command.startswith("ssh-keygen -lf"):
            assert done.stdout.split()[1] == offered


@integration
def test_lab_made_known_hosts_gets_the_labctl_hint_only(sshd_netns: Any, tmp_path: Path) -> None:
    """A known_hosts under .labctl/<lab>/ssh/ was written by a provider: re-create the lab."""
    sshd.generate_keypair(tmp_path / "impostor", "impostor")
    known = tmp_path / "inv" / ".labctl" / "blog" / "ssh" / "known_hosts"
    known.parent.mkdir(parents=True)
    known.write_text(sshd.known_hosts_line("127.0.0.1", 22, tmp_path / "impostor.pub") + "\n")
    message = refusal(sshd_netns.target("root", known_hosts=str(known)))
    assert "host key changed" in message and "`labctl down && labctl up`" in message
    assert "ssh-keyscan" not in message and not repin_commands(message)


@integration
def test_no_key_text_in_messages_logs_or_files(sshd_netns: Any, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """Connecting, running, copying, failing (bad key, changed host key, failing command):
    paramiko's own DEBUG log, labctl's messages, the files fetched and the sshd lab directory
    hold no private key text."""
    caplog.set_level(logging.DEBUG)
    sshd.generate_keypair(tmp_path / "keys" / "stranger", "stranger")
    secrets = [sshd_netns.key_file, sshd_netns.dir / "host_ed25519", tmp_path / "keys" / "stranger"]
    run_dir = tmp_path / "run"
    messages = []
    with SshTransport(sshd_netns.root) as transport:
        transport.put_text("/tmp/labctl-trust-test.txt", "payload\n", 0o600)
        transport.get_file("/tmp/labctl-trust-test.txt", run_dir / "dut" / "fetched.txt")
        transport.run("rm -f /tmp/labctl-trust-test.txt")
        with pytest.raises(HostError) as failed:
            transport.run(f"cat {sshd_netns.key_file}.missing")
        messages.append(str(failed.value))
    for target in (sshd_netns.target("root", key_file=str(secrets[2])),
                   sshd_netns.target("root", known_hosts=str(tmp_path / "absent"))):
        messages.append(refusal(target))
    (run_dir / "messages.txt").write_text("\n".join(messages) + "\n" + caplog.text)
    assert caplog.text and re.search(r"authentication with key .*stranger failed", messages[1])
    scanned = assert_no_secrets([run_dir, sshd_netns.dir], secrets)
    assert {"fetched.txt", "messages.txt", "sshd.log", "known_hosts"} <= {f.name for f in scanned}
    assert len(files_under([run_dir])) == 2
