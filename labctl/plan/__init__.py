"""Planning (pure; imports: base, input, host). (inventory, scenario, facts) -> a plan of typed
actions (``actions``, ``planner``), the checks against the hosts' facts before anything changes
(``feasibility``), host preparation steps (``hostprep``), the generator's ceiling and warnings
(``generator``), and the dry-run text (``dryrun``).
"""
