"""labctl: declarative Linux receive-path tuning experiments (RSS, IRQ affinity, RPS).

The package follows the data flow, one subpackage per stage, lowest layer first; a module
imports its own layer and lower ones only (tests/unit/test_layers.py checks it):

- base: ``errors``, ``cpulist``, ``shell`` (quoting and process commands), ``packaged``
  (the templates and the agent that ship inside the package)
- pure: ``input`` -> ``host`` -> ``plan`` -> ``runfiles`` -> ``analysis`` -> ``reports``
- side effects: ``local`` -> ``transport`` -> ``labs`` -> ``execution`` -> ``runner``
  (orchestration) -> ``cli`` (the only place errors become messages and exit codes)
- ``agent``: the load generator run on lab hosts, standard library only.

The pure stages never import the transport, the providers, subprocess or sockets.
"""

__version__ = "0.1.0"
