"""In-process simulator venue (being built)."""
