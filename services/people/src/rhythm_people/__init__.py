"""Rhythm people: the HR gateway that owns ``rhythm.people.v1``."""
