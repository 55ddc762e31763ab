"""The libvirt XML templates: rendered, parsed, validated against libvirt's schemas and
defined on libvirt's in-process ``test:///default`` driver (no daemon, no root needed).

The libvirt-python tests skip where ``import libvirt`` fails under the running Python (the
project venv is made from /usr/bin/python3 with --system-site-packages so Debian's
python3-libvirt is importable there); the schema tests skip without virt-xml-validate.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.errors import LabError
from labctl.labs.xmlrender import METADATA_NS, render
from labctl.packaged import templates_dir

HOSTILE = "a<b'c&d\"e>f"
MGMT_MAC, DATA_MAC = "52:54:00:12:34:56", "52:54:00:ab:cd:ef"


def mgmt_values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"name": "lab-mgmt", "bridge": "lab-m", "ip": {
        "address": "198.19.0.1", "prefix": 24, "dhcp_range_start": "198.19.0.100",
        "dhcp_range_end": "198.19.0.200",
        "hosts": [{"mac": MGMT_MAC, "ip": "198.19.0.10", "name": "dut"},
                  {"mac": "52:54:00:12:34:57", "ip": "198.19.0.11", "name": "loadgen"}]}}
    values.update(changes)
    return values


def data_values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"name": "lab-data", "bridge": "lab-d", "ip": None}
    values.update(changes)
    return values


def domain_values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "lab-dut", "lab": "lab", "role": "dut", "domain_type": "qemu",
        "cpu_model": "qemu64", "vcpus": 8, "memory_mib": 768,
        "disk": "/var/tmp/lab/dut.qcow2", "seed_iso": "/var/tmp/lab/dut-seed.iso",
        "console_log": "/var/tmp/lab/dut-console.log",
        "interfaces": [
            {"network": "lab-mgmt", "mac": MGMT_MAC, "model": "virtio", "queues": None,
             "driver": None},
            {"network": "lab-data", "mac": DATA_MAC, "model": "virtio", "queues": 4,
             "driver": "qemu"},
        ],
    }
    values.update(changes)
    return values


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


# ---------------------------------------------------------------- rendering


def test_templates_dir_is_the_repositorys() -> None:
    assert templates_dir() == Path(__file__).resolve().parents[2] / "templates"
    assert (templates_dir() / "domain.xml.j2").is_file()


def test_management_network_is_isolated_with_fixed_dhcp_hosts() -> None:
    net = parse(render("network.xml.j2", **mgmt_values()))
    assert net.findtext("name") == "lab-mgmt"
    assert net.find("bridge").attrib == {"name": "lab-m", "stp": "off", "delay": "0"}
    assert net.find("forward") is None                 # isolated: host <-> guests only
    ip = net.find("ip")
    assert ip.attrib == {"address": "198.19.0.1", "prefix": "24"}
    assert ip.find("dhcp/range").attrib == {"start": "198.19.0.100", "end": "198.19.0.200"}
    hosts = [h.attrib for h in ip.findall("dhcp/host")]
    assert hosts[0] == {"mac": MGMT_MAC, "ip": "198.19.0.10", "name": "dut"}
    assert len(hosts) == 2


@pytest.mark.parametrize("values", [data_values(), {"name": "lab-data", "bridge": "lab-d"}],
                         ids=["ip-None", "ip-absent"])
def test_data_network_has_no_address_and_no_forward(values: dict[str, Any]) -> None:
    net = parse(render("network.xml.j2", **values))
    assert net.find("ip") is None and net.find("forward") is None
    assert net.find("bridge").get("name") == "lab-d"


def test_domain_devices_in_order_with_queues_only_on_the_data_nic() -> None:
    dom = parse(render("domain.xml.j2", **domain_values()))
    assert dom.get("type") == "qemu"
    assert dom.find("os/type").attrib == {"arch": "x86_64", "machine": "pc"}
    assert dom.find("os/boot").get("dev") == "hd"
    assert dom.findtext("vcpu") == "8"
    assert dom.find("memory").attrib == {"unit": "MiB"} and dom.findtext("memory") == "768"
    assert dom.find("cpu").get("mode") == "custom" and dom.findtext("cpu/model") == "qemu64"
    nics = dom.findall("devices/interface")
    assert [n.find("source").get("network") for n in nics] == ["lab-mgmt", "lab-data"]
    assert [n.find("mac").get("address") for n in nics] == [MGMT_MAC, DATA_MAC]
    assert nics[0].find("driver") is None
    assert nics[1].find("driver").attrib == {"name": "qemu", "queues": "4"}
    disk, cdrom = dom.findall("devices/disk")
    assert disk.find("source").get("file") == "/var/tmp/lab/dut.qcow2"
    assert disk.find("driver").get("type") == "qcow2"
    assert cdrom.get("device") == "cdrom" and cdrom.find("readonly") is not None
    assert dom.find("devices/serial/log").get("file") == "/var/tmp/lab/dut-console.log"
    assert dom.find("devices/console").get("type") == "pty"
    assert dom.find("devices/memballoon").get("model") == "none"
    assert dom.find("devices/rng").get("model") == "virtio"
    channel = dom.find("devices/channel/target")
    assert channel.get("name") == "org.qemu.guest_agent.0"


def test_domain_metadata_records_lab_and_role() -> None:
    dom = parse(render("domain.xml.j2", **domain_values()))
    mark = dom.find(f"metadata/{{{METADATA_NS}}}lab")
    assert mark is not None and mark.attrib == {"name": "lab", "role": "dut"}


def test_kvm_domain_uses_host_passthrough_and_vhost() -> None:
    nics = domain_values()["interfaces"]
    nics[1] = dict(nics[1], driver="vhost")
    dom = parse(render("domain.xml.j2", **domain_values(domain_type="kvm", interfaces=nics)))
    assert dom.get("type") == "kvm"
    assert dom.find("cpu").attrib["mode"] == "host-passthrough"
    assert dom.findall("devices/interface")[1].find("driver").get("name") == "vhost"


def test_optional_devices_can_be_left_out() -> None:
    dom = parse(render("domain.xml.j2", **domain_values(disk=None, seed_iso=None,
                                                        console_log=None)))
    assert dom.findall("devices/disk") == []
    assert dom.find("devices/serial/log") is None and dom.find("devices/serial") is not None


@pytest.mark.parametrize("template,values,missing", [
    ("domain.xml.j2", {k: v for k, v in domain_values().items() if k != "vcpus"}, "vcpus"),
    ("domain.xml.j2", {k: v for k, v in domain_values().items() if k != "role"}, "role"),
    ("network.xml.j2", {"name": "n"}, "bridge"),
])
def test_missing_value_is_an_error(template: str, values: dict[str, Any], missing: str) -> None:
    with pytest.raises(LabError, match=missing):
        render(template, **values)


def test_missing_key_of_a_nic_is_an_error() -> None:
    nics = [{"network": "lab-mgmt", "model": "virtio", "queues": None, "driver": None}]
    with pytest.raises(LabError, match="mac"):
        render("domain.xml.j2", **domain_values(interfaces=nics))


def test_unknown_template_is_a_lab_error() -> None:
    with pytest.raises(LabError, match="no template"):
        render("nope.xml.j2")


def test_hostile_values_are_escaped() -> None:
    dom = parse(render("domain.xml.j2", **domain_values(name=HOSTILE, lab=HOSTILE,
                                                        disk=f"/tmp/{HOSTILE}.qcow2")))
    assert dom.findtext("name") == HOSTILE
    assert dom.find(f"metadata/{{{METADATA_NS}}}lab").get("name") == HOSTILE
    assert dom.find("devices/disk/source").get("file") == f"/tmp/{HOSTILE}.qcow2"
    net = parse(render("network.xml.j2", **mgmt_values(name=HOSTILE)))
    assert net.findtext("name") == HOSTILE


# any text XML 1.0 can carry (no control characters, surrogates or non-characters)
XML_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), min_size=1,
                   max_size=40)


@settings(max_examples=60, deadline=None)
@given(name=XML_TEXT, lab=XML_TEXT)
def test_any_text_round_trips_through_the_xml(name: str, lab: str) -> None:
    dom = parse(render("domain.xml.j2", **domain_values(name=name, lab=lab)))
    assert dom.findtext("name") == name
    assert dom.find(f"metadata/{{{METADATA_NS}}}lab").get("name") == lab


# ---------------------------------------------------------------- libvirt's schemas


def rendered_documents() -> list[tuple[str, str, str]]:
    nics = domain_values()["interfaces"]
    vhost = [nics[0], dict(nics[1], driver="vhost")]
    return [
        ("mgmt-network", "network", render("network.xml.j2", **mgmt_values())),
        ("data-network", "network", render("network.xml.j2", **data_values())),
        ("tcg-domain", "domain", render("domain.xml.j2", **domain_values())),
        ("kvm-vhost-domain", "domain",
         render("domain.xml.j2", **domain_values(domain_type="kvm", interfaces=vhost))),
        ("bare-domain", "domain",
         render("domain.xml.j2", **domain_values(disk=None, seed_iso=None, console_log=None))),
    ]


@pytest.mark.parametrize("label,schema,xml", rendered_documents(),
                         ids=[doc[0] for doc in rendered_documents()])
def test_valid_against_libvirts_schema(label: str, schema: str, xml: str,
                                       tmp_path: Path) -> None:
    if shutil.which("virt-xml-validate") is None or shutil.which("xmllint") is None:
        pytest.skip("virt-xml-validate (libvirt-clients) and xmllint (libxml2-utils) needed")
    path = tmp_path / f"{label}.xml"
    path.write_text(xml)
    done = subprocess.run(["virt-xml-validate", str(path), schema], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- libvirt's test driver


@pytest.fixture
def test_driver() -> Iterator[Any]:
    """A connection to libvirt's in-process mock hypervisor ``test:///default``."""
    libvirt = pytest.importorskip(
        "libvirt", reason="libvirt-python not importable under this Python (Debian: "
        "python3-libvirt; run in a venv made from /usr/bin/python3 --system-site-packages)")
    conn = libvirt.open("test:///default")
    try:
        yield conn
    finally:
        conn.close()


def test_networks_define_on_libvirt(test_driver: Any) -> None:
    for values in (mgmt_values(name="lt-mgmt"), data_values(name="lt-data")):
        net = test_driver.networkDefineXML(render("network.xml.j2", **values))
        try:
            assert net.name() == values["name"]
            assert net.bridgeName() == values["bridge"]
        finally:
            net.undefine()


def test_domain_defines_on_libvirt_with_metadata_and_queues(test_driver: Any) -> None:
    import libvirt

    dom = test_driver.defineXML(render("domain.xml.j2", **domain_values(name="lt-dut")))
    try:
        mark = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
        assert ET.fromstring(mark).attrib == {"name": "lab", "role": "dut"}
        desc = parse(dom.XMLDesc())
        assert desc.findall("devices/interface")[1].find("driver").get("queues") == "4"
        assert desc.findtext("vcpu") == "8"
        assert int(desc.findtext("memory")) == 768 * 1024           # libvirt reports KiB
    finally:
        dom.undefine()


def test_hostile_names_define_on_libvirt(test_driver: Any) -> None:
    dom = test_driver.defineXML(render("domain.xml.j2", **domain_values(name=HOSTILE)))
    try:
        assert dom.name() == HOSTILE
    finally:
        dom.undefine()
