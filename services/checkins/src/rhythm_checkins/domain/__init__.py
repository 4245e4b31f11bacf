"""Pure rules of check-ins and cadence: no I/O, no database, no broker."""
