"""libvirt XML from Jinja2 templates (pure: reads template files, runs nothing).

Templates live in ``templates/`` at the repository root, beside the ``labctl`` package; that
holds for a source checkout and for an editable install (``pip install -e``). Every value is
XML-escaped (autoescape) and a missing value is an error (StrictUndefined), so a template
mistake fails at render time, not at ``virsh start``.

``network.xml.j2``: name, bridge, optional ip {address, prefix, dhcp_range_start,
dhcp_range_end, hosts: [{mac, ip, name}]}; with ip a management network (isolated,
host<->guest only, DHCP with a fixed address per MAC), without ip (absent or None) an isolated
data network with no host address.

``domain.xml.j2``: name, lab, role, domain_type ("qemu" = TCG, or "kvm"), cpu_model (TCG
only; KVM uses host-passthrough), vcpus, memory_mib, disk (qcow2 path or None), seed_iso
(path or None), console_log (file the serial console is copied to, or None), interfaces:
[{network, mac, model, queues: int | None, driver: "vhost" | "qemu" | None}], the first
being the management NIC (eth0), the second the data NIC (eth1).
"""

from __future__ import annotations

from typing import Any

import jinja2

from labctl.errors import LabError
from labctl.packaged import template_environment, templates_dir

METADATA_NS = "urn:x-labctl:libvirt:domain:1"
"""Namespace of the ``<labctl:lab name=... role=...>`` element in each domain's <metadata>
(read it with ``dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)``)."""

METADATA_PREFIX = "labctl"




def render(template_name: str, **values: Any) -> str:
    """Render ``templates/<template_name>`` with ``values`` (all escaped, none missing)."""
    env = template_environment()
    try:
        template = env.get_template(template_name)
    except jinja2.TemplateNotFound:
        raise LabError(f"no template {template_name!r} in {templates_dir()}") from None
    try:
        return template.render(metadata_ns=METADATA_NS, metadata_prefix=METADATA_PREFIX,
                               **values)
    except jinja2.UndefinedError as exc:
        raise LabError(f"template {template_name}: {exc} (give every value the template "
                       "uses)") from None
