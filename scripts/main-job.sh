#!/bin/bash
# The main job on the built-in default lab (inventory.yaml, run as root): set up, bring the
# lab up, run the baseline and the RPS scenario, rebuild the reports, tear the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
labctl=.venv/bin/labctl
trap '$labctl down' EXIT
$labctl up
$labctl run scenarios/netns_baseline.yaml
$labctl run scenarios/netns_rps_cpu1.yaml
$labctl collect
