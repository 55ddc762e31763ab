"""Helpers shared by the tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import bz2
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(relative: str) -> str:
    """A captured output under tests/fixtures/ (.bz2 files are decompressed)."""
    path = FIXTURES / relative
    if path.suffix == ".bz2":
        return bz2.decompress(path.read_bytes()).decode()
    return path.read_text()
