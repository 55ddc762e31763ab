"""The libvirt lab's pure parts: layout, accelerator choice, domain values, the NoCloud seed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labctl.input.model import Inventory
from labctl.labs import vmlab
from labctl.labs.seed import (
    GuestSeed,
    network_config,
    seed_files,
    user_data,
    write_seed_iso,
)
from labctl.labs.xmlrender import render
from tests.helpers import ROOT


def default_inventory() -> Inventory:
    return Inventory.model_validate(yaml.safe_load((ROOT / "inventory.yaml").read_text()))


def test_layout_of_the_default_lab() -> None:
    lay = vmlab.layout(default_inventory())
    assert (lay.mgmt_network, lay.data_network) == ("blog-mgmt", "blog-data")
    assert all(len(b) <= 15 for b in (lay.mgmt_bridge, lay.data_bridge))    # IFNAMSIZ
    dut, loadgen = lay.guests
    assert (dut.domain, dut.mgmt_ip, loadgen.mgmt_ip) == ("blog-dut", "198.19.0.10", "198.19.0.11")
    assert (dut.vcpus, dut.memory_mib) == (8, 768)
    macs = {dut.mgmt_mac, dut.data_mac, loadgen.mgmt_mac, loadgen.data_mac}
    assert len(macs) == 4 and all(m.startswith("52:54:00:") for m in macs)
    assert vmlab.layout(default_inventory()) == lay                    # stable


@pytest.mark.parametrize("requested,flags,kvm,expected", [
    ("auto", {"vmx"}, True, "kvm"),
    ("auto", {"svm"}, True, "kvm"),
    ("auto", set(), True, "qemu"),        # /dev/kvm without vmx/svm: Debian kernels hang
    ("auto", {"vmx"}, False, "qemu"),
    ("tcg", {"vmx"}, True, "qemu"),
    ("kvm", set(), False, "kvm"),
])
def test_accelerator(requested: str, flags: set[str], kvm: bool, expected: str) -> None:
    assert vmlab.choose_accel(requested, flags, kvm) == expected


def test_domain_values_render_with_queues_and_backend() -> None:
    inventory = default_inventory()
    lay = vmlab.layout(inventory)
    values = vmlab.domain_values(inventory, lay, lay.guests[0], domain_type="qemu",
                                 backend="qemu", disk="/d.qcow2", seed_iso="/s.iso",
                                 console_log="/c.log")
    xml = render("domain.xml.j2", **values)
    assert "<driver name='qemu' queues='4'/>" in xml.replace('"', "'")
    assert "type='qemu'" in xml.replace('"', "'") and "qemu64" in xml
    mgmt = render("network.xml.j2", **vmlab.mgmt_network_values(lay))
    assert "198.19.0.10" in mgmt and lay.guests[0].mgmt_mac in mgmt
    data = render("network.xml.j2", **vmlab.data_network_values(lay))
    assert "<ip" not in data



def igb_inventory() -> Inventory:
    return Inventory.model_validate(yaml.safe_load((ROOT / "inventories" / "igb.yaml").read_text()))


def test_igb_dut_renders_the_igb_model_without_virtio_queues() -> None:
    inventory = igb_inventory()
    lay = vmlab.layout(inventory)
    dut, loadgen = lay.guests
    assert (dut.nic, loadgen.nic) == ("igb", "virtio")
    xml = render("domain.xml.j2", **vmlab.domain_values(
        inventory, lay, dut, domain_type="qemu", backend="qemu", disk="/d.qcow2",
        seed_iso="/s.iso", console_log="/c.log")).replace('"', "'")
    assert xml.count("<model type='igb'/>") == 1 and xml.count("<model type='virtio'/>") == 1
    assert "queues=" not in xml            # igb's driver picks its queues; no virtio backend
    other = render("domain.xml.j2", **vmlab.domain_values(
        inventory, lay, loadgen, domain_type="qemu", backend="qemu", disk="/d.qcow2",
        seed_iso="/s.iso", console_log="/c.log")).replace('"', "'")
    assert "<driver name='qemu' queues='4'/>" in other


@pytest.mark.parametrize("qemu,refused", [(7_002_000, True), (7_002_019, True), (8_000_000, False),
                                          (10_000_002, False)])
def test_igb_needs_qemu_8(qemu: int, refused: bool) -> None:
    problems = vmlab.nic_model_problems(vmlab.layout(igb_inventory()), qemu, 9_000_000)
    assert bool(problems) == refused
    if refused:
        assert problems[0].startswith("dut: vm.nic igb needs QEMU >= 8.0")
        assert f"QEMU {vmlab.version_text(qemu)}, libvirt 9.0.0" in problems[0]
        assert "bookworm-backports" in problems[0]
    assert vmlab.nic_model_problems(vmlab.layout(default_inventory()), qemu, 9_000_000) == []


def test_version_text() -> None:
    assert vmlab.version_text(10_000_002) == "10.0.2"
    assert vmlab.version_text(11_003_000) == "11.3.0"


SEED = GuestSeed("dut", "i-1", "ssh-ed25519 AAAAlab lab", "-----BEGIN OPENSSH PRIVATE KEY-----\n"
                 "b3Bl\n-----END OPENSSH PRIVATE KEY-----\n", "ssh-ed25519 AAAAhost dut",
                 "52:54:00:00:00:01", "52:54:00:00:00:02", "198.18.0.1/24")


def test_seed_carries_keys_and_addresses() -> None:
    data = yaml.safe_load(user_data(SEED))
    assert user_data(SEED).startswith("#cloud-config\n")
    assert data["ssh_keys"]["ed25519_private"] == SEED.host_key_private
    assert data["ssh_keys"]["ed25519_public"] == SEED.host_key_public
    assert data["users"][0]["ssh_authorized_keys"] == ["ssh-ed25519 AAAAlab lab"]
    net = yaml.safe_load(network_config(SEED))["ethernets"]
    assert net["eth0"]["dhcp4"] is True and net["eth0"]["match"]["macaddress"] == SEED.mgmt_mac
    assert net["eth1"]["addresses"] == ["198.18.0.1/24"]


def test_seed_iso_is_cidata_with_the_three_files(tmp_path: Path) -> None:
    import pycdlib
    path = tmp_path / "seed.iso"
    write_seed_iso(path, seed_files(SEED))
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        names = {iso.full_path_from_dirrecord(c, rockridge=True)
                 for c in iso.list_children(rr_path="/") if c.is_file()}
        assert names == {"/user-data", "/meta-data", "/network-config"}
    finally:
        iso.close()


def test_igb_guest_names_its_nics_outside_eth_n() -> None:
    lay = vmlab.layout(igb_inventory())
    dut, loadgen = lay.guests
    assert (dut.mgmt_interface, dut.interface) == ("mgmt0", "data0")
    assert (loadgen.mgmt_interface, loadgen.interface) == ("eth0", "eth1")
    seed = GuestSeed("dut", "i-1", "k", "p", "h", "52:54:00:00:00:01", "52:54:00:00:00:02",
                     "198.18.0.1/24", mgmt_interface=dut.mgmt_interface, data_interface=dut.interface)
    config = yaml.safe_load(network_config(seed))["ethernets"]
    assert config["mgmt0"] == {"match": {"macaddress": "52:54:00:00:00:01"}, "set-name": "mgmt0", "dhcp4": True}
    assert config["data0"]["set-name"] == "data0" and config["data0"]["addresses"] == ["198.18.0.1/24"]


def test_igb_test_nic_named_eth_n_is_refused() -> None:
    from pydantic import ValidationError
    data = yaml.safe_load((ROOT / "inventories" / "igb.yaml").read_text())
    data["hosts"]["dut"]["interface"] = "eth1"
    with pytest.raises(ValidationError, match="needs a name outside eth<N>, e.g. data0"):
        Inventory.model_validate(data)


def models_inventory() -> Inventory:
    return Inventory.model_validate(yaml.safe_load((ROOT / "inventories" / "nic-models.yaml").read_text()))


def test_every_nic_model_of_the_input_has_its_facts() -> None:
    from typing import get_args

    from labctl.input.model import NicModelName
    assert set(vmlab.NIC_MODELS) == set(get_args(NicModelName))
    assert [m for m, facts in vmlab.NIC_MODELS.items() if facts.libvirt_queues] == ["virtio"]


def test_vmxnet3_and_e1000e_guests_render_their_models_named_outside_eth_n() -> None:
    inventory = models_inventory()
    lay = vmlab.layout(inventory)
    dut, loadgen = lay.guests
    assert (dut.nic, loadgen.nic) == ("vmxnet3", "e1000e")
    assert [(g.mgmt_interface, g.interface) for g in lay.guests] == [("mgmt0", "data0")] * 2
    for guest in lay.guests:
        xml = render("domain.xml.j2", **vmlab.domain_values(
            inventory, lay, guest, domain_type="qemu", backend="qemu", disk="/d.qcow2",
            seed_iso="/s.iso", console_log="/c.log")).replace('"', "'")
        assert xml.count(f"<model type='{guest.nic}'/>") == 1 and xml.count("<model type='virtio'/>") == 1
        assert "queues=" not in xml and "<driver name='qemu'/>" not in xml    # the driver picks its queues
    # no QEMU floor for them (both in QEMU 7.2, Debian 12's own)
    assert vmlab.nic_model_problems(lay, 7_002_000, 9_000_000) == []


@pytest.mark.parametrize("model", ["igb", "e1000e", "vmxnet3"])
def test_any_test_nic_other_than_virtio_named_eth_n_is_refused(model: str) -> None:
    from pydantic import ValidationError
    data = yaml.safe_load((ROOT / "inventories" / "nic-models.yaml").read_text())
    data["hosts"]["loadgen"]["vm"]["nic"] = model
    data["hosts"]["loadgen"]["interface"] = "eth1"
    with pytest.raises(ValidationError, match=f"vm.nic {model}: .* needs a name outside eth<N>"):
        Inventory.model_validate(data)
    data["hosts"]["loadgen"]["vm"]["nic"] = "virtio"
    Inventory.model_validate(data)
