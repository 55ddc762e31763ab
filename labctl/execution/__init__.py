"""Execution (side effects over the transport; imports: everything below runner). The only code
that walks a plan (``executor``), records and undoes its changes (``restorer``), prepares hosts
(``preparer``), measures the generator's ceiling (``calibrate``); ``failpoints`` are the named
places where fault tests stop a run.
"""
