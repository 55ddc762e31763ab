"""Host preparation (side effects): bring hosts to their inventory's `prepare:` state, prove it,
and put their original state back (`labctl unprepare`).

The decisions are labctl.plan.hostprep's; this module reads facts over SSH, checks them before any
change, records the original state in the lab directory before the first change, runs the
steps, restarts a host whose kernel must boot with new isolated CPUs, and verifies.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labctl.cpulist import format_cpulist
from labctl.errors import LabctlError, LabError, ValidationError
from labctl.host import probes
from labctl.input.config import Loaded
from labctl.input.model import HostPrepare, Inventory
from labctl.labs.providers import Provider, Restarter
from labctl.plan import hostprep
from labctl.plan.hostprep import PrepFacts, PrepStep
from labctl.runfiles.rundir import utc_now
from labctl.transport.base import Transport
from labctl.transport.netns_socket import ssh_banner

Progress = Callable[[str], None]
REBOOT_COMMAND = "setsid sh -c 'sleep 1; systemctl reboot' </dev/null >/dev/null 2>&1 &"


class Preparer:
    """Preparation of the hosts of one lab; `transports` may get new targets after restarts."""

    def __init__(self, inventory: Loaded[Inventory], transports: Mapping[str, Transport],
                 records: Path, provider: Provider | None, progress: Progress):
        self.inventory, self.transports, self.records = inventory, transports, records
        self.provider, self.progress = provider, progress

    def specs(self) -> dict[str, HostPrepare]:
        return {h: spec for h in self.transports
                if (spec := self.inventory.model.hosts[h].prepare) is not None}

    # ------------------------------------------------------------------ reading and checking
    def read_facts(self, host: str, spec: HostPrepare) -> PrepFacts:
        script = hostprep.prep_facts_script(spec, self.inventory.model.hosts[host].interface)
        return hostprep.parse_prep_facts(host, self.transports[host].run_script(script, check=False).stdout)

    def check(self) -> dict[str, PrepFacts]:
        """Facts of every host to prepare; ValidationError (inventory positions) before any change."""
        specs = self.specs()
        facts = _parallel({h: functools.partial(self.read_facts, h, specs[h]) for h in specs})
        problems = [self.inventory.problem(("hosts", h, "prepare") + path, message)
                    for h, spec in specs.items() for path, message in hostprep.spec_problems(spec, facts[h])]
        if problems:
            raise ValidationError(problems)
        return facts

    def describe(self) -> list[str]:
        """What `prepare` would do now (for --dry-run): steps with their literal commands."""
        lines = []
        specs = self.specs()
        for host, facts in self.check().items():
            spec = specs[host]
            steps = hostprep.prep_steps(spec, facts)
            reboot = hostprep.reboot_reason(spec, facts)
            lines += hostprep.render_steps(host, steps, reboot) or [f"[{host}] prepared already"]
        return lines

    # ------------------------------------------------------------------ preparing
    def prepare(self) -> dict[str, dict[str, Any]]:
        """Prepare every host that has a `prepare:` section; returns their records."""
        facts = self.check()
        specs = self.specs()
        return _parallel({h: functools.partial(self._prepare_one, h, specs[h], facts[h]) for h in facts})

    def _prepare_one(self, host: str, spec: HostPrepare, facts: PrepFacts) -> dict[str, Any]:
        record = self._load_record(host)
        steps = hostprep.prep_steps(spec, facts)
        if not steps and not hostprep.reboot_reason(spec, facts) and not hostprep.verify(spec, facts):
            self.progress(f"{host}: prepared already (no change, no reboot)")
            if record is None:
                record = self._new_record(spec, facts)
            record.update(verified=hostprep.verified_facts(facts), checked=utc_now())
            self._save_record(host, record)
            return _public(record)
        if record is None:
            record = self._new_record(spec, facts)
            self._save_record(host, record)          # the original state, before the first change
        started = time.monotonic()
        self._run_steps(host, steps)
        after = self.read_facts(host, spec)
        reboot = hostprep.reboot_reason(spec, after)
        record["reboot"] = None
        if reboot:
            record["reboot"] = self.restart(host, reboot, spec.reboot_timeout, after.boot_id)
            after = self.read_facts(host, spec)
        problems = hostprep.verify(spec, after)
        if problems:
            raise LabError(f"{host}: preparation did not take effect: " + "; ".join(problems)
                           + f" (record of the original state: {self._record_path(host)})")
        before = record.get("sysctls_before", {})
        record.update(spec=spec.model_dump(mode="json"), steps=[s.description for s in steps],
                      verified=hostprep.verified_facts(after), checked=utc_now(),
                      sysctl_changes=hostprep.sysctl_changes(before, after.sysctls),
                      seconds=round(time.monotonic() - started, 1))
        self._save_record(host, record)
        self.progress(f"{host}: prepared and verified ({record['seconds']:.0f} s): "
                      + ", ".join(f"{k} {v}" for k, v in record["verified"].items()
                                  if k in ("isolated", "pid1_cpus_allowed", "default_smp_affinity", "tuned_profile")))
        return _public(record)

    def _run_steps(self, host: str, steps: list[PrepStep]) -> None:
        transport = self.transports[host]
        for step in steps:
            self.progress(f"{host}: {step.description}")
            if step.write_path:
                transport.put_text(step.write_path, step.content, 0o644)
            else:
                transport.run(step.command, timeout=600)

    def restart(self, host: str, reason: str, timeout: float, boot_id: str) -> dict[str, Any]:
        """Restart the host (from outside when the provider can, else `systemctl reboot`) and
        wait until the new boot has finished starting its services."""
        self.progress(f"{host}: restart needed: {reason}")
        started = time.monotonic()
        transport = self.transports[host]
        if isinstance(self.provider, Restarter):
            transport.close()
            transport.target = self.provider.restart(host, self.progress)
            method = "power off + start (provider)"
        else:
            transport.run(REBOOT_COMMAND)
            transport.close()
            method = "systemctl reboot"
        self._wait_new_boot(host, boot_id, started + timeout, started)
        seconds = round(time.monotonic() - started, 1)
        self.progress(f"{host}: back after {seconds:.0f} s ({method})")
        return {"reason": reason, "method": method, "seconds": seconds}

    def _wait_new_boot(self, host: str, old_boot_id: str, deadline: float, started: float) -> None:
        transport = self.transports[host]
        target = transport.target
        last_report = started
        while time.monotonic() < deadline:
            try:
                ssh_banner(target.netns, target.address, target.port, timeout=1.0)
                transport.open()
                boot_id = probes.BOOT_ID.parse(transport.run(probes.BOOT_ID.command).stdout)
                if boot_id and boot_id != old_boot_id:
                    remaining = max(1.0, deadline - time.monotonic())
                    transport.run("systemctl is-system-running --wait", check=False, timeout=remaining)
                    return
                transport.close()           # still the old boot, on its way down
            except LabctlError:
                transport.close()
            if time.monotonic() - last_report >= 15:
                last_report = time.monotonic()
                self.progress(f"{host}: rebooting ({last_report - started:.0f} s)")
            time.sleep(1.0)
        raise LabError(f"{host}: not back {deadline - started:.0f} s after the restart")

    # ------------------------------------------------------------------ putting it back
    def unprepare(self) -> list[str]:
        """Put back the recorded original state of every prepared host; returns their names.
        Every host is tried; the ones that failed are reported together at the end."""
        done, failed = [], []
        for host in self.transports:
            record = self._load_record(host)
            if record is None:
                continue
            try:
                self._unprepare_one(host, record)
                done.append(host)
            except LabctlError as exc:
                failed.append(str(exc))
        if failed:
            raise LabError("\n".join(failed))
        return done

    def _unprepare_one(self, host: str, record: dict[str, Any]) -> None:
        spec = HostPrepare.model_validate(record.get("spec") or {})
        original = record["original"]
        facts = self.read_facts(host, spec)
        self._run_steps(host, hostprep.unprepare_steps(original, facts))
        after = self.read_facts(host, spec)
        reason = hostprep.unprepare_reboot_reason(original, after)
        if reason:
            self.restart(host, reason, spec.reboot_timeout, after.boot_id)
            after = self.read_facts(host, spec)
        left = [s.description for s in hostprep.unprepare_steps(original, after)]
        left += [r for r in [hostprep.unprepare_reboot_reason(original, after)] if r]
        if left:
            raise LabError(f"{host}: not back to its original state: {'; '.join(left)} "
                           f"(record kept: {self._record_path(host)})")
        self._record_path(host).unlink()
        self.progress(f"{host}: original state back (tuned {after.tuned_profile or 'off'}, "
                      f"irqbalance {after.irqbalance_active}/{after.irqbalance_enabled}, "
                      f"isolated {format_cpulist(after.isolated) or 'none'})")

    # ------------------------------------------------------------------ records
    def _record_path(self, host: str) -> Path:
        return self.records / f"{host}.json"

    def _new_record(self, spec: HostPrepare, facts: PrepFacts) -> dict[str, Any]:
        return {"host": facts.host, "original": hostprep.original_state(spec, facts),
                "recorded": utc_now(), "sysctls_before": facts.sysctls,
                "spec": spec.model_dump(mode="json")}

    def _load_record(self, host: str) -> dict[str, Any] | None:
        path = self._record_path(host)
        if not path.exists():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise LabError(f"{host}: cannot read the preparation record {path}: {exc}") from None
        return data

    def _save_record(self, host: str, record: dict[str, Any]) -> None:
        path = self._record_path(host)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A record as it goes into a run manifest (without the full sysctl listing)."""
    return {k: v for k, v in record.items() if k != "sysctls_before"}



def _parallel(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    if not jobs:
        return {}
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}
