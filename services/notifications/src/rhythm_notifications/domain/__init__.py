"""Pure rules of notifications: who hears what, when, how and how often. No I/O here."""
