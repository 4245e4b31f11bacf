"""One function per command; each takes a unit of work and never commits (entrypoints do)."""
