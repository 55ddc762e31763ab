"""Analysis (pure; imports: base ... runfiles). Raw before/after snapshots -> per-CPU deltas
(``deltas``, ``perhost``), expectations judged against them (``expectations``), perf script ->
folded stacks (``fold``).
"""
