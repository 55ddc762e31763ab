"""The libvirt lab's layout (pure): names, addresses, MACs and template values of each guest.

Everything here is derived from the inventory alone, so `up`, `down` and `status` agree on
what belongs to a lab without asking libvirt.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from labctl.input.model import MGMT_NIC_MODEL, Inventory


@dataclass(frozen=True)
class NicModel:
    """What a test NIC model (`hosts.NAME.vm.nic`) needs: the oldest QEMU that has it, and
    whether libvirt's `queues` sizes it (virtio only: the others' drivers pick their queue
    count from the device and the vCPUs)."""

    min_qemu: tuple[int, int, int] = (0, 0, 0)
    libvirt_queues: bool = False


NIC_MODELS: dict[str, NicModel] = {
    "virtio": NicModel(libvirt_queues=True),       # the guest's virtio_net
    "igb": NicModel(min_qemu=(8, 0, 0)),           # QEMU's 82576, the guest's igb
    "e1000e": NicModel(),                          # QEMU's 82574L, the guest's e1000e
    "vmxnet3": NicModel(),                         # VMware's paravirtual NIC, the guest's vmxnet3
}


@dataclass(frozen=True)
class GuestLayout:
    host: str
    role: str
    domain: str
    mgmt_mac: str
    mgmt_ip: str
    data_mac: str
    vcpus: int
    memory_mib: int
    data_address: str
    nic: str = "virtio"
    interface: str = "eth1"

    @property
    def mgmt_interface(self) -> str:
        """eth0 where both NICs are virtio (the kernel names them in PCI order); with two
        drivers the kernel's order is the drivers' load order: a name outside eth<N>."""
        return "eth0" if self.nic == MGMT_NIC_MODEL else "mgmt0"


@dataclass(frozen=True)
class LabLayout:
    lab: str
    mgmt_network: str
    mgmt_bridge: str
    data_network: str
    data_bridge: str
    gateway: str
    prefix: int
    dhcp_start: str
    dhcp_end: str
    guests: tuple[GuestLayout, ...]


def mac_for(lab: str, host: str, nic: str) -> str:
    """A stable locally administered MAC in QEMU's 52:54:00 range."""
    digest = hashlib.sha256(f"{lab}/{host}/{nic}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def layout(inventory: Inventory) -> LabLayout:
    net = ipaddress.ip_network(inventory.libvirt.management_subnet)
    hosts = list(net.hosts())
    lab = inventory.lab
    guests = tuple(
        GuestLayout(host=name, role=spec.role, domain=f"{lab}-{name}",
                    mgmt_mac=mac_for(lab, name, "mgmt"), mgmt_ip=str(hosts[9 + index]),
                    data_mac=mac_for(lab, name, "data"), vcpus=spec.vm.vcpus,
                    memory_mib=spec.vm.memory_mib, data_address=spec.data_address,
                    nic=spec.vm.nic, interface=spec.interface)
        for index, (name, spec) in enumerate(inventory.hosts.items()))
    return LabLayout(lab=lab, mgmt_network=f"{lab}-mgmt", mgmt_bridge=f"{lab}-m",
                     data_network=f"{lab}-data", data_bridge=f"{lab}-d", gateway=str(hosts[0]),
                     prefix=net.prefixlen, dhcp_start=str(hosts[99]), dhcp_end=str(hosts[199]),
                     guests=guests)


def mgmt_network_values(lay: LabLayout) -> dict[str, Any]:
    return {"name": lay.mgmt_network, "bridge": lay.mgmt_bridge, "ip": {
        "address": lay.gateway, "prefix": lay.prefix, "dhcp_range_start": lay.dhcp_start,
        "dhcp_range_end": lay.dhcp_end,
        "hosts": [{"mac": g.mgmt_mac, "ip": g.mgmt_ip, "name": g.host} for g in lay.guests]}}


def data_network_values(lay: LabLayout) -> dict[str, Any]:
    return {"name": lay.data_network, "bridge": lay.data_bridge, "ip": None}


def choose_accel(requested: str, cpu_flags: set[str], kvm_device: bool) -> str:
    """libvirt domain type: KVM only where the CPU has vmx/svm (a /dev/kvm alone is not enough)."""
    if requested == "kvm":
        return "kvm"
    if requested == "tcg":
        return "qemu"
    return "kvm" if kvm_device and cpu_flags & {"vmx", "svm"} else "qemu"


def domain_values(inventory: Inventory, lay: LabLayout, guest: GuestLayout, *, domain_type: str,
                  backend: str, disk: str, seed_iso: str, console_log: str) -> dict[str, Any]:
    opts = inventory.libvirt
    return {
        "name": guest.domain, "lab": lay.lab, "role": guest.role, "domain_type": domain_type,
        "cpu_model": opts.cpu_model, "vcpus": guest.vcpus, "memory_mib": guest.memory_mib,
        "disk": disk, "seed_iso": seed_iso, "console_log": console_log,
        "interfaces": [
            {"network": lay.mgmt_network, "mac": guest.mgmt_mac, "model": MGMT_NIC_MODEL,
             "queues": None, "driver": None},
            {"network": lay.data_network, "mac": guest.data_mac, "model": guest.nic,
             "queues": opts.queues if NIC_MODELS[guest.nic].libvirt_queues else None,
             "driver": backend if NIC_MODELS[guest.nic].libvirt_queues else None},
        ],
    }


def version_text(number: int) -> str:
    """libvirt's version numbers (major * 1,000,000 + minor * 1,000 + release) as text."""
    return f"{number // 1_000_000}.{number // 1_000 % 1_000}.{number % 1_000}"


def nic_model_problems(lay: LabLayout, qemu_version: int, libvirt_version: int) -> list[str]:
    """Guests whose test NIC model this hypervisor cannot give them, each with what to do."""
    qemu = (qemu_version // 1_000_000, qemu_version // 1_000 % 1_000, qemu_version % 1_000)
    return [f"{g.host}: vm.nic {g.nic} needs QEMU >= {'.'.join(map(str, NIC_MODELS[g.nic].min_qemu[:2]))} "
            f"(this hypervisor has QEMU {version_text(qemu_version)}, libvirt "
            f"{version_text(libvirt_version)}); on Debian 12 scripts/setup.sh takes QEMU and "
            "libvirt from bookworm-backports"
            for g in lay.guests if qemu < NIC_MODELS[g.nic].min_qemu]
