"""Reports (pure; imports: base ... analysis). A run's typed summary -> report.md
(``markdown``), report.html (``html``), comparisons of runs (``compare``), flame graphs
(``flamegraph``, ``profiles``); ``access`` holds the accessors the renderers share.
"""
