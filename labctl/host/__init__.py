"""Host probes and facts (pure; imports: base, input). A probe is a read-only shell command, a
parser and a result type (``probes``); ``facts`` batches the probes a run needs before planning
(``sections``), ``snapshots`` maps every raw snapshot file a plan writes to its probe.
"""
