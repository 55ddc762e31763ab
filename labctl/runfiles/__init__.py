"""runfiles."""
