#!/bin/bash
# The main job on the built-in default lab (inventory.yaml: two libvirt guests), as root:
# install everything, build the guest image (cached), bring the lab up, run the blog's
# procedure as five scenarios (the first prepares the DUT: irqbalance off, tuned realtime with
# isolated CPUs 4-7, a restart), print one table of outcomes, tear the lab down. Where no libvirtd
# runs (no systemd), a private one is started inside the network namespace `labctl-virt`
# and stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
py=.venv/bin/python
labctl=(.venv/bin/labctl -i inventory.yaml)
virt_workdir=/var/tmp/labctl-virt
own_libvirtd=0

if virsh -c qemu:///system version >/dev/null 2>&1; then
  # a libvirtd already runs in this namespace: the guests' networks live here, not in a netns
  mkdir -p .labctl && grep -v '^  netns:' inventory.yaml > .labctl/inventory.host-libvirtd.yaml
  labctl=(.venv/bin/labctl -i .labctl/inventory.host-libvirtd.yaml)
else
  $py -m labctl.labs.libvirtd start --netns labctl-virt --workdir "$virt_workdir"
  own_libvirtd=1
fi
cleanup() {
  "${labctl[@]}" down || true
  if ((own_libvirtd)); then $py -m labctl.labs.libvirtd stop --workdir "$virt_workdir"; fi
}
trap cleanup EXIT

"${labctl[@]}" image build
"${labctl[@]}" up
# the blog, step by step (the first run prepares the DUT: irqbalance off, tuned realtime, restart;
# then measures the load generator's ceiling in the scenarios' mode, once for the lab). Every
# scenario runs to its end even when one fails; one table at the end; the exit code is the
# worst outcome's: 0 all passed, 3 a DUT check failed, 5 inconclusive (generator-bound), 1 error.
status=0
"${labctl[@]}" run scenarios/baseline.yaml scenarios/combined2.yaml scenarios/irq_pin.yaml \
  scenarios/rps_isolated.yaml scenarios/rps_cpu1.yaml || status=$?
exit "$status"     # the EXIT trap tears the lab down
