"""labctl: declarative Linux receive-path tuning experiments (RSS, IRQ affinity, RPS)."""

__version__ = "0.1.0"
