"""This machine (side effects: processes, namespaces, lock files; imports: base and the pure
layers). Processes by PID (``procs``), programs inside a network namespace (``nsexec``), the lab
lock (``lock``).
"""
