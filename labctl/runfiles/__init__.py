"""Run files (pure models + file I/O of one run directory; imports: base, input, host, plan).
``models`` types manifest.json, steps.json, restore.json and summary.json with a
``schema_version`` and migrates older files; ``rundir`` reads and writes a run directory.
"""
