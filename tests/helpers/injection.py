"""Test helpers: the shell injection corpus. Each payload would create a file called CANARY
(tests/helpers/shell_sandbox.py) if any part of it ran as shell code."""

from __future__ import annotations

PAYLOADS = [
    "x;touch CANARY",
    "x;>CANARY",
    "$(touch CANARY)",
    "$(>CANARY)",
    "`touch CANARY`",
    "`>CANARY`",
    "x\ntouch CANARY",
    "x\n>CANARY",
    "x|touch CANARY",
    "x|>CANARY",
    "x&&touch CANARY",
    "x&&>CANARY",
    "x||>CANARY",
    "x&>CANARY",
    "';>CANARY;'",
    "\";>CANARY;\"",
    "'$(>CANARY)'",
    "\"$(>CANARY)\"",
    "x;touch${IFS}CANARY",
    "x\\;>CANARY",
    "${x:-$(>CANARY)}",
    "a b CANARY",
    "a\tCANARY",
    "*CANARY*",
    "-CANARY",
    "--CANARY=$(>CANARY)",
    "x #;>CANARY",
    "~CANARY",
    "x\r\n>CANARY",
    "ü CANARY\u00a0é",
]
